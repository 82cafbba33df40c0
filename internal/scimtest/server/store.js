// The users of the test server, kept in memory and written to one JSON file
// after every change, so that a restarted server (or a killed one) finds
// them again.
//
// The file is written atomically: the whole store goes to a temporary file
// beside it, which is synced and then renamed over the old one. A server
// killed half-way through a write leaves the previous file whole. Writes are
// synchronous: Node runs one handler at a time, so a write and the checks
// before it (such as userName uniqueness) cannot interleave with another
// request's.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const FORMAT = 1;

export class Store {
    #file;
    #users = new Map(); // id → stored user, in creation order

    constructor(file) {
        this.#file = file;
        this.#load();
    }

    get file() {
        return this.#file;
    }

    #load() {
        let text;
        try {
            text = fs.readFileSync(this.#file, "utf8");
        } catch (ex) {
            if (ex.code === "ENOENT") return; // a new store
            throw ex;
        }
        const data = JSON.parse(text);
        if (data?.format !== FORMAT || !Array.isArray(data.users))
            throw new Error(`${this.#file}: not a scimtest store (format ${FORMAT})`);
        for (const user of data.users) this.#users.set(user.id, user);
    }

    #save() {
        const tmp = `${this.#file}.tmp`;
        const body = JSON.stringify({format: FORMAT, users: [...this.#users.values()]});
        const fd = fs.openSync(tmp, "w", 0o600);
        try {
            fs.writeSync(fd, body);
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        fs.renameSync(tmp, this.#file);
        // The rename itself is durable once the directory is synced.
        try {
            const dir = fs.openSync(path.dirname(this.#file), "r");
            try { fs.fsyncSync(dir); } finally { fs.closeSync(dir); }
        } catch {
            // Some file systems cannot sync a directory; the rename is still atomic.
        }
    }

    // A deep copy, so that nothing outside can change a stored user.
    get(id) {
        const user = this.#users.get(id);
        return user === undefined ? undefined : structuredClone(user);
    }

    list() {
        return [...this.#users.values()].map(u => structuredClone(u));
    }

    get size() {
        return this.#users.size;
    }

    // The user other than exceptId whose userName equals userName, ignoring
    // case (RFC 7643 section 4.1.1: userName is caseExact false, uniqueness
    // server).
    holderOf(userName, exceptId) {
        const folded = String(userName).toLowerCase();
        for (const user of this.#users.values()) {
            if (user.id !== exceptId && String(user.userName).toLowerCase() === folded) return user;
        }
        return undefined;
    }

    put(user) {
        this.#users.set(user.id, structuredClone(user));
        this.#save();
    }

    delete(id) {
        const had = this.#users.delete(id);
        if (had) this.#save();
        return had;
    }

    // Users that hold a seat: every user whose active is not false. A user
    // created without "active" counts, as most applications let such a user
    // log in.
    activeCount() {
        let n = 0;
        for (const user of this.#users.values()) if (user.active !== false) n++;
        return n;
    }
}

// A weak entity tag over what a client can change: the same attributes
// give the same version.
export function versionOf(attributes) {
    const hash = crypto.createHash("sha256").update(JSON.stringify(attributes)).digest("hex");
    return `W/"${hash.slice(0, 16)}"`;
}
