#!/usr/bin/env node
// The SCIM 2.0 test server: see README.md beside this file.
//
//   node server.js --token T --store /tmp/users.json [--port 8080] [--host 127.0.0.1]
//                  [--base-path /scim/v2] [--etag] [--exit-on-stdin-close]
//
// Each flag may be given by environment instead: SCIMTEST_TOKEN,
// SCIMTEST_STORE, SCIMTEST_PORT, SCIMTEST_HOST, SCIMTEST_BASE_PATH,
// SCIMTEST_ETAG=1. A flag wins over the environment.
import {parseArgs} from "node:util";
import {Store} from "./store.js";
import {createApp} from "./app.js";

function fail(msg) {
    process.stderr.write(`scimtest: ${msg}\n`);
    process.exit(2);
}

let values;
try {
    ({values} = parseArgs({
        options: {
            token: {type: "string"},
            store: {type: "string"},
            port: {type: "string"},
            host: {type: "string"},
            "base-path": {type: "string"},
            etag: {type: "boolean"},
            "exit-on-stdin-close": {type: "boolean"},
            quiet: {type: "boolean"},
        },
    }));
} catch (ex) {
    fail(ex.message);
}

const env = process.env;
const token = values.token ?? env.SCIMTEST_TOKEN;
const file = values.store ?? env.SCIMTEST_STORE;
const port = Number(values.port ?? env.SCIMTEST_PORT ?? 0);
const host = values.host ?? env.SCIMTEST_HOST ?? "127.0.0.1";
const basePath = (values["base-path"] ?? env.SCIMTEST_BASE_PATH ?? "/scim/v2").replace(/\/+$/, "");
const etag = values.etag ?? ["1", "true", "yes"].includes(String(env.SCIMTEST_ETAG ?? "").toLowerCase());

if (!token) fail("a bearer token is required (--token or SCIMTEST_TOKEN)");
if (!file) fail("a storage file is required (--store or SCIMTEST_STORE)");
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${values.port ?? env.SCIMTEST_PORT}`);
if (!basePath.startsWith("/")) fail(`the base path must start with "/": ${basePath}`);

let store;
try {
    store = new Store(file);
} catch (ex) {
    fail(`storage ${file}: ${ex.message}`);
}

const log = values.quiet ? () => {} : (line) => process.stdout.write(`scimtest: ${line}\n`);
const app = createApp(store, {token, basePath, etag, log});
const server = app.listen(port, host, () => {
    const {port} = server.address();
    const shown = host.includes(":") ? `[${host}]` : host;
    // The harness waits on /_test/health; this line is for people.
    process.stdout.write(`scimtest: listening on http://${shown}:${port}${basePath} (etag ${etag ? "on" : "off"}, ${store.size} users in ${file})\n`);
});
server.on("error", (ex) => fail(`listen on ${host}:${port}: ${ex.message}`));

// Every write is synchronous and already on disk, so stopping needs no flush.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));

// When the process that started us dies, our stdin closes: end with it, so
// that a crashed test run leaves no server behind.
if (values["exit-on-stdin-close"]) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
}
