// The Express 4 application: SCIMMY's /Users (with the enterprise
// extension) through scimmy-routers, in front of which this harness adds
// bearer authentication, request counters, fault injection and an optional
// ETag layer, and beside which it serves the /_test admin API.
//
// Express 4, not 5: scimmy-routers turns startIndex and count into numbers
// by assigning to req.query, which Express 5 makes a read-only getter, so
// SCIMMY would page every list with its defaults (startIndex 1, count 20)
// whatever the client asked.
import crypto from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";
import {versionOf} from "./store.js";

const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";
const UNCOUNTED = "x-scimtest-uncounted";

// A SCIM error body (RFC 7644 section 3.12). Built here rather than with
// SCIMMY.Messages.Error, which refuses statuses it does not know, such as 429.
export function scimError(status, scimType, detail) {
    return {schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? {scimType} : {}), ...(detail ? {detail} : {})};
}

function sendError(res, status, scimType, detail) {
    res.status(status).type("application/scim+json").send(JSON.stringify(scimError(status, scimType, detail)));
}

// What a request is, for the counters: "POST /Users", "GET /Users?filter"
// (a lookup), "GET /Users/{id}", "PATCH /Users/{id}", "GET
// /ServiceProviderConfig", and so on. A path this server has no route for
// counts as "METHOD other".
export function kindOf(method, path, query) {
    const p = path.replace(/\/+$/, "") || "/";
    if (p === "/Users") return `${method} /Users${method === "GET" && query.filter !== undefined ? "?filter" : ""}`;
    if (p === "/Users/.search") return `${method} /Users/.search`;
    if (/^\/Users\/[^/]+$/.test(p)) return `${method} /Users/{id}`;
    for (const top of ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/Bulk", "/.search", "/Me"]) {
        if (p === top) return `${method} ${top}`;
        if (p.startsWith(top + "/")) return `${method} ${top}/{id}`;
    }
    return `${method} other`;
}

function isLoopback(addr = "") {
    return addr === "::1" || addr.startsWith("127.") || addr.startsWith("::ffff:127.");
}

function tokenMatches(header, token) {
    const m = /^Bearer[ ]+(.+)$/i.exec(header ?? "");
    if (!m) return false;
    const got = Buffer.from(m[1].trim()), want = Buffer.from(token);
    return got.length === want.length && crypto.timingSafeEqual(got, want);
}

// If-Match / If-None-Match against one version, compared weakly: SCIM's
// versions are weak tags (RFC 7644 section 3.14), which a strong comparison
// would never match.
function etagListMatches(header, version) {
    const opaque = t => t.trim().replace(/^W\//, "");
    return header.split(",").some(t => t.trim() === "*" || opaque(t) === opaque(version));
}

const FAULT_KEYS = ["fail_every", "fail_methods", "fail_after_apply", "rate_limit", "retry_after", "invalid", "latency_ms"];

function noFaults() {
    return {fail_every: 0, fail_methods: [], fail_after_apply: false, rate_limit: 0, retry_after: 1, invalid: {}, latency_ms: 0};
}

// parseFaults checks an admin request's fault set; it throws on anything
// it does not know, so that a misspelt key is not silently ignored.
function parseFaults(body) {
    if (Object(body) !== body || Array.isArray(body)) throw new Error("expected a JSON object");
    for (const k of Object.keys(body)) if (!FAULT_KEYS.includes(k)) throw new Error(`unknown fault "${k}" (known: ${FAULT_KEYS.join(", ")})`);
    const f = noFaults();
    const count = (k) => {
        if (body[k] === undefined || body[k] === null) return;
        if (!Number.isInteger(body[k]) || body[k] < 0) throw new Error(`${k}: expected a non-negative integer`);
        f[k] = body[k];
    };
    count("fail_every"); count("rate_limit"); count("retry_after"); count("latency_ms");
    if (body.fail_methods != null) {
        if (!Array.isArray(body.fail_methods) || !body.fail_methods.every(m => typeof m === "string"))
            throw new Error("fail_methods: expected a list of HTTP methods");
        f.fail_methods = body.fail_methods.map(m => m.toUpperCase());
    }
    if (body.fail_after_apply != null) {
        if (typeof body.fail_after_apply !== "boolean") throw new Error("fail_after_apply: expected true or false");
        f.fail_after_apply = body.fail_after_apply;
    }
    if (body.invalid != null) {
        if (Object(body.invalid) !== body.invalid || Array.isArray(body.invalid) || !Object.values(body.invalid).every(v => typeof v === "string"))
            throw new Error("invalid: expected an object of userName: message");
        for (const [name, msg] of Object.entries(body.invalid)) f.invalid[name.toLowerCase()] = msg;
    }
    return f;
}

function newCounters(store) {
    return {total: 0, requests: {}, statuses: {}, faults: {}, active: store.activeCount(), max_active: store.activeCount(), active_log: []};
}

const bump = (obj, key) => { obj[key] = (obj[key] ?? 0) + 1; };
const sleep = ms => new Promise(r => setTimeout(r, ms));

// createApp builds the application around a Store. Options: token (the
// bearer token SCIM requests must carry), basePath ("/scim/v2"), etag
// (the ETag layer on or off), log (a function given one line per request).
export function createApp(store, {token, basePath = "/scim/v2", etag = false, log = () => {}}) {
    const state = {faults: noFaults(), failSeen: 0, counters: newCounters(store), seq: 0};

    // After every write, how many users hold a seat: the log a test reads
    // to assert "never more than N active at once". Node runs one handler
    // at a time and the store writes synchronously, so the highest count
    // after a write is the highest count there ever was.
    function recordWrite(op, userName) {
        const c = state.counters, active = store.activeCount();
        c.active = active;
        c.max_active = Math.max(c.max_active, active);
        c.active_log.push({seq: ++state.seq, op, userName, active});
        if (c.active_log.length > 100000) c.active_log.shift();
    }

    function checkIfMatch(ctx, user) {
        if (!etag || !ctx?.ifMatch || !user) return;
        if (!etagListMatches(ctx.ifMatch, user.meta.version))
            throw new SCIMMY.Types.Error(412, null, `If-Match ${ctx.ifMatch} does not match the current version ${user.meta.version}`);
    }

    function checkUnique(userName, exceptId) {
        const holder = store.holderOf(userName, exceptId);
        if (holder)
            throw new SCIMMY.Types.Error(409, "uniqueness", `userName "${userName}" is already taken by user ${holder.id} ("${holder.userName}"), ignoring case`);
    }

    const User = SCIMMY.Resources.User;
    // SCIMMY keeps its declarations in module-level state: one app per process.
    if (!SCIMMY.Resources.declared(User)) SCIMMY.Resources.declare(User.extend(SCIMMY.Schemas.EnterpriseUser, false));

    // ingress: create (no id) or replace (id) a user. PUT and PATCH both
    // end here: SCIMMY applies a PATCH to the user it read, then writes the
    // result whole.
    User.ingress((resource, instance, ctx) => {
        const attrs = JSON.parse(JSON.stringify(instance));
        delete attrs.id;
        delete attrs.meta;
        const now = new Date().toISOString();
        let created = now;
        if (resource.id !== undefined) {
            const old = store.get(resource.id);
            if (!old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            checkIfMatch(ctx, old);
            created = old.meta.created;
        }
        checkUnique(attrs.userName, resource.id);
        const id = resource.id ?? crypto.randomUUID();
        const user = {id, ...attrs, meta: {resourceType: "User", created, lastModified: now, version: versionOf(attrs)}};
        store.put(user);
        recordWrite(resource.id === undefined ? "create" : (ctx?.method === "PATCH" ? "patch" : "replace"), user.userName);
        return user;
    });

    User.egress((resource) => {
        if (resource.id !== undefined) {
            const user = store.get(resource.id);
            if (!user) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            return user;
        }
        const users = store.list();
        return resource.filter ? resource.filter.match(users) : users;
    });

    User.degress((resource, ctx) => {
        const user = store.get(resource.id);
        if (!user) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
        checkIfMatch(ctx, user);
        store.delete(resource.id);
        recordWrite("delete", user.userName);
    });

    const scim = new SCIMMYRouters({
        type: "bearer",
        // Authentication is done before the routers (so that a 401 carries
        // WWW-Authenticate); here every request is already authenticated.
        handler: () => undefined,
        context: (req) => ({method: req.method, ifMatch: req.get("If-Match")}),
        baseUri: (req) => `${req.protocol}://${req.get("host")}`,
    });
    // The routers set patch, filter, sort and bulk to supported; etag is ours.
    SCIMMY.Config.set("etag", etag);

    const app = express();
    app.disable("x-powered-by");
    app.set("etag", false); // Express's own body-hash ETags would confuse the ETag layer

    // ---- the admin API: loopback only, no token ----
    const admin = express.Router();
    admin.use((req, res, next) => {
        if (!isLoopback(req.socket.remoteAddress)) return res.status(403).json({error: "the /_test API answers loopback clients only"});
        next();
    });
    admin.use(express.json());
    admin.get("/health", (req, res) => res.json({ok: true, users: store.size, etag, basePath}));
    admin.get("/faults", (req, res) => res.json(state.faults));
    admin.put("/faults", (req, res) => {
        try {
            state.faults = parseFaults(req.body);
        } catch (ex) {
            return res.status(400).json({error: ex.message});
        }
        state.failSeen = 0;
        res.json(state.faults);
    });
    admin.delete("/faults", (req, res) => {
        state.faults = noFaults();
        state.failSeen = 0;
        res.json(state.faults);
    });
    admin.get("/counters", (req, res) => res.json(state.counters));
    admin.delete("/counters", (req, res) => {
        state.counters = newCounters(store);
        res.json(state.counters);
    });
    admin.use((req, res) => res.status(404).json({error: `no admin endpoint ${req.method} ${req.path}`}));
    admin.use((err, req, res, next) => res.status(err.status ?? 500).json({error: err.message}));
    app.use("/_test", admin);

    // ---- SCIM: counters, latency, auth, faults, ETags, then SCIMMY ----
    app.use(basePath, (req, res, next) => {
        const start = Date.now();
        const uncounted = req.get(UNCOUNTED) !== undefined;
        req.scimtest = {uncounted};
        if (!uncounted) {
            const c = state.counters;
            c.total++;
            bump(c.requests, kindOf(req.method, req.path, req.query));
            res.on("finish", () => bump(c.statuses, String(res.statusCode)));
        }
        res.on("finish", () => log(`${req.method} ${req.originalUrl} ${res.statusCode} ${Date.now() - start}ms${uncounted ? " (harness)" : ""}`));
        next();
    });

    app.use(basePath, (req, res, next) => {
        const ms = req.scimtest.uncounted ? 0 : state.faults.latency_ms;
        if (ms > 0) sleep(ms).then(() => next());
        else next();
    });

    app.use(basePath, (req, res, next) => {
        if (tokenMatches(req.get("Authorization"), token)) return next();
        res.set("WWW-Authenticate", 'Bearer realm="scimtest"');
        sendError(res, 401, null, req.get("Authorization") ? "The bearer token is not valid" : "Authorization: Bearer <token> is required");
    });

    app.use(basePath, express.json({type: ["application/scim+json", "application/json"], limit: "1mb"}));

    app.use(basePath, (req, res, next) => {
        const f = state.faults;
        if (req.scimtest.uncounted) return next();
        if (f.rate_limit > 0) {
            f.rate_limit--;
            bump(state.counters.faults, "429");
            res.set("Retry-After", String(f.retry_after));
            return sendError(res, 429, null, `Too many requests (injected fault); retry after ${f.retry_after}s`);
        }
        if (f.fail_every > 0 && (f.fail_methods.length === 0 || f.fail_methods.includes(req.method))) {
            state.failSeen++;
            if (state.failSeen % f.fail_every === 0) {
                bump(state.counters.faults, "500");
                if (!f.fail_after_apply) return sendError(res, 500, null, `Internal server error (injected fault: request ${state.failSeen} of every ${f.fail_every} fails)`);
                // Carried out, then answered 500: the answer is "lost".
                const send = res.send;
                let replaced = false;
                res.send = function (body) {
                    if (replaced || this.statusCode >= 300) return send.call(this, body);
                    replaced = true;
                    this.status(500).type("application/scim+json");
                    return send.call(this, JSON.stringify(scimError(500, null, `Internal server error (injected fault after the request was carried out: request ${state.failSeen} of every ${f.fail_every})`)));
                };
            }
        }
        const m = /^\/Users\/([^/]+)\/?$/.exec(req.path);
        if (["POST", "PUT", "PATCH"].includes(req.method) && /^\/Users(\/|$)/.test(req.path) && Object.keys(f.invalid).length) {
            const names = [];
            if (req.body?.userName !== undefined) names.push(req.body.userName);
            if (m) { const u = store.get(m[1]); if (u) names.push(u.userName); }
            for (const op of Array.isArray(req.body?.Operations) ? req.body.Operations : []) {
                if (String(op?.path ?? "").toLowerCase() === "username") names.push(op.value);
                if (op?.value?.userName !== undefined) names.push(op.value.userName);
            }
            const hit = names.map(n => String(n).toLowerCase()).find(n => f.invalid[n] !== undefined);
            if (hit !== undefined) {
                bump(state.counters.faults, "400");
                return sendError(res, 400, "invalidValue", f.invalid[hit]);
            }
        }
        next();
    });

    if (etag) {
        app.use(basePath, (req, res, next) => {
            const m = /^\/Users\/([^/]+)\/?$/.exec(req.path);
            const user = m ? store.get(m[1]) : undefined;
            if (user && ["PUT", "PATCH", "DELETE"].includes(req.method) && req.get("If-Match") !== undefined
                && !etagListMatches(req.get("If-Match"), user.meta.version)) {
                return sendError(res, 412, null, `If-Match ${req.get("If-Match")} does not match the current version ${user.meta.version}`);
            }
            if (user && req.method === "GET" && req.get("If-None-Match") !== undefined
                && etagListMatches(req.get("If-None-Match"), user.meta.version)) {
                res.set("ETag", user.meta.version);
                return res.status(304).end();
            }
            // Every single resource answered gets its version as ETag.
            const json = res.json;
            res.json = function (body) {
                const version = body?.meta?.version;
                if (typeof version === "string" && !Array.isArray(body?.Resources) && this.statusCode < 300) this.set("ETag", version);
                return json.call(this, body);
            };
            next();
        });
    }

    app.use(basePath, scim);

    // SCIMMY's routers answer their own errors and pass on only those of
    // status 500 or more, already answered; Express's default handler would
    // then destroy the socket under the answer.
    app.use((err, req, res, next) => {
        if (err.type === "entity.parse.failed") return sendError(res, 400, "invalidSyntax", `The request body is not valid JSON: ${err.message}`);
        log(`error: ${req.method} ${req.originalUrl}: ${err.stack ?? err}`);
        if (res.headersSent) return;
        sendError(res, err.status ?? 500, null, err.message);
    });
    app.use((req, res) => sendError(res, 404, null, `Endpoint Not Found: ${req.method} ${req.path}`));
    return app;
}
