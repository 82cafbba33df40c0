#!/usr/bin/env python3
"""Where the wall time of a seatsync run goes, from execution traces.

    python3 bench/ldap/phases.py DIR/noop-100k-*.trace

The traces are those `go run ./bench/ldap -profile DIR` writes. Each state
interval (running, runnable, waiting, in a syscall) of the main goroutine
and of the source's pull goroutine is put down to the innermost phase
(PHASES) in the stack of the goroutine where the interval ends; the
figures are milliseconds per run, averaged over the traces given.
"Runnable" is time a goroutine was ready and waited for a CPU: on a
loaded machine, the load's share."""
import re, subprocess, sys, collections

PHASES = [  # innermost match wins
    ("ldap.(*cursor).String", "cursor: encode known set"),
    ("ldap.parseCursor", "cursor: decode known set"),
    ("ldap.(*source).connect", "ldap: connect + bind"),
    ("ldap.(*pull).prepare", "ldap: group search"),
    ("ldap.(*change).sync", "ldap: sync refresh"),
    ("ldap.(*source).fullRead", "ldap: full read"),
    ("reconcile.(*Runner).planRead", "runner: read kept cursor (Value + JSON)"),
    ("reconcile.(*Runner).saveCursors", "runner: save cursor (JSON + SetValue)"),
    ("sqlite.(*Store).Tally", "store: Tally (seat and source counts)"),
    ("sqlite.(*Store).Select", "store: Select touched profiles"),
    ("reconcile.(*Runner).license", "runner: licence"),
    ("reconcile.(*Runner).lock", "runner: run lock"),
    ("reconcile.Lock", "runner: run lock"),
    ("reconcile.(*Runner).startRun", "runner: start run record"),
    ("reconcile.(*Runner).apply", "runner: apply"),
    ("reconcile.Calculate", "runner: plan"),
    ("reconcile.(*Runner).seats", "runner: seat history + forecast"),
    ("reconcile.(*Runner).saveRun", "runner: run record"),
    ("reconcile.(*Runner).prune", "runner: prune"),
    ("reconcile.(*Runner).rememberLimits", "runner: remember limits"),
    ("reconcile.(*Runner).notify", "runner: notify"),
    ("sqlite.(*Store).Grants", "store: Grants"),
    ("reconcile.(*Runner).pullAll", "runner: pull (waiting for the source)"),
    ("sqlite.Open", "store: open + migration check"),
    ("config.Load", "config load"),
    ("main.(*env).close", "close store"),
    ("main.(*app).writeReport", "write report"),
    ("notify.FromConfig", "notify setup"),
    ("main.", "cmd: other"),
]

def phase(stack):
    for fn in stack:  # innermost first
        for pat, name in PHASES:
            if pat in fn:
                return name
    return None

def parse(path):
    out = subprocess.run(["go", "tool", "trace", "-d=parsed", path], capture_output=True, text=True).stdout
    events, cur = [], None
    for line in out.splitlines():
        if line.startswith("M="):
            cur = {"line": line, "stack": [], "tstack": []}
            events.append(cur)
            into = None
        elif line.startswith("Stack="):
            into = "stack"
        elif line.startswith("TransitionStack="):
            into = "tstack"
        elif line.startswith("\t") and not line.startswith("\t\t") and cur is not None and into:
            cur[into].append(line.strip().split(" @ ")[0])
    return events

def analyse(path, acc):
    ev = parse(path)
    t0 = t1 = None
    state = {}      # goid -> (state, since)
    last = {}       # goid -> last phase seen
    per = collections.defaultdict(float)
    pullg = set()
    state_time = collections.defaultdict(list)
    for e in ev:
        m = re.search(r"Time=(\d+)", e["line"])
        if not m:
            continue
        t = int(m.group(1))
        t0 = t if t0 is None else t0
        t1 = t
        m = re.search(r"StateTransition Time=\d+ GoID=(\d+) (\w+)->(\w+)", e["line"])
        if not m:
            continue
        g, a, b = int(m.group(1)), m.group(2), m.group(3)
        emitter = int(re.search(r" G=(-?\d+)", e["line"]).group(1))
        st = e["tstack"] or (e["stack"] if emitter == g else [])
        p = phase(st)
        if p:
            last[g] = p
        if st and "pullAll.func1" in st[-1]:
            pullg.add(g)
        if g in state:
            s, since = state[g]
            state_time[g].append((last.get(g, "?"), s, t - since))
        state[g] = (b, t)
    for g, items in state_time.items():
        if g == 1:
            for ph, s, d in items:
                per["main: " + ph] += d
                per["main state " + s] += d
        elif g in pullg:
            for ph, s, d in items:
                key = ph
                if ph.startswith("runner: pull"):
                    key = "ldap: other"
                per["  pull goroutine: " + key + " [" + s + "]"] += d
    total = (t1 - t0)
    acc["_total"] += total
    for k, v in per.items():
        acc[k] += v

acc = collections.defaultdict(float)
files = sys.argv[1:]
for f in files:
    analyse(f, acc)
n = len(files)
print(f"{n} traces; ms per run; main: the main goroutine by phase; pull goroutine: by phase and state")
for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
    print(f"{v / n / 1e6:8.1f}  {k}")
