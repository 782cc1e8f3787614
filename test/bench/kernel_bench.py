"""Kernel bench (issue 18): the project kernel (cleanroom-ts) vs Debian's IPython kernel, same run.

Driven by test/bench/kernel.bench.mjs (`npm run bench -- kernel`); also runnable alone:

    /usr/bin/python3 test/bench/kernel_bench.py [--reps 3] [--warm 20]

Measures with jupyter_client, per kernel, REPS fresh kernels each:
  start      start_kernel → first kernel_info reply (wait_for_ready)
  first      the first cell: cleanroom-ts imports @cleanroom-lab/kernel and calls openLab;
             IPython imports json + sqlite3 and assigns (the stdlib stand-in for opening a lab)
  warm       median of WARM executions of `1+1` after the first cell (execute_request → idle)
Prints medians over the fresh kernels and the ratios next to the targets:
  start → first openLab cell ≤ 2× IPython; warm trivial cell ≤ 3× IPython.
Also, for cleanroom-ts:
  - its kernels use a V8 code cache directory of their own (CLEANROOM_KERNEL_CACHE_DIR, a
    temporary directory): one kernel first, not counted, starts with it empty and fills it, as
    any earlier kernel start would; its start→first is printed as "cold code cache";
  - where start→first goes, from the launcher's CLEANROOM_KERNEL_TRACE phases (median wall
    and CPU ms per phase);
  - "after idle": the first openLab cell sent IDLE seconds after the kernel is ready, as a
    user typing it would (the launcher builds the compiler and reads the library's types
    in that time); informational, no target.
Results go through the same row format as test/bench/targets.mjs `report()`: printed with
"met" / "missed by N×", and appended as JSON lines to $BENCH_REPORT when it is set (ids
kernel.start-first-cell, kernel.warm-trivial-cell, kernel.start-breakdown without a target).
Every kernel it starts is shut down (and killed by its own process if shutdown fails).
Takes about a minute on an idle 2-core machine with the defaults.
"""

import argparse
import json
import os
import statistics
import sys
import shutil
import tempfile
import time

from jupyter_client.manager import KernelManager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KERNELS = os.path.join(ROOT, "kernel-lib", "jupyter")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # ipykernel debugger start-up notice
os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [KERNELS, os.environ.get("JUPYTER_PATH")]))

CELLS = {
    "cleanroom-ts": (
        'import { openLab } from "@cleanroom-lab/kernel";\n'
        'const lab = openLab({ store: ":memory:", rng: { seed: "bench" }, budget: { epsilon: 1 } });\n'
        "1"
    ),
    "python3": "import json, sqlite3\nx = 1\n1",
}


def run_cell(kc, code, timeout=120):
    """Execute `code`; return seconds from request to the kernel's idle for it (raises on error)."""
    t = time.perf_counter()
    msg_id = kc.execute(code)
    status = None
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            status = "error: " + msg["content"].get("ename", "") + " " + msg["content"].get("evalue", "")[:200]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    dt = time.perf_counter() - t
    if status:
        raise RuntimeError(status)
    return dt


def measure(name, warm, idle=0.0, trace=None, cache_dir=None):
    km = KernelManager(kernel_name=name)
    env = dict(os.environ)
    if trace:
        env["CLEANROOM_KERNEL_TRACE"] = trace
    if cache_dir:
        env["CLEANROOM_KERNEL_CACHE_DIR"] = cache_dir
    t0 = time.perf_counter()
    km.start_kernel(cwd=ROOT, env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        start = time.perf_counter() - t0
        if idle:
            time.sleep(idle)
        first = run_cell(kc, CELLS[name])
        warms = [run_cell(kc, "1+1") for _ in range(warm)]
        return start, first, statistics.median(warms) if warms else 0.0
    finally:
        kc.stop_channels()
        try:
            km.shutdown_kernel(now=False)
        except Exception:  # noqa: BLE001 — make sure the process we started is gone
            if km.provisioner and km.provisioner.process:
                km.provisioner.process.kill()


# Launcher trace phases (kernel-lib/jupyter/kernels/cleanroom-ts/launcher.js and, for the
# worker's rows, converter-worker.js) → the steps between them. Rows whose phases a kernel did
# not trace are left out (CLEANROOM_KERNEL_WORKER=off builds the compiler when the cell arrives).
STEPS = [
    ("node start-up", None, "launcher started"),
    ("load TypeScript (typescript.js)", "launcher started", "typescript loaded"),
    ("load tslab + zeromq", "typescript loaded", "tslab loaded"),
    ("handshake until the cell arrives", "sockets bound", "first cell: received"),
    ("worker: thread start", "launcher started", "worker: started"),
    ("worker: load TypeScript", "worker: started", "worker: typescript loaded"),
    ("worker: build compiler (lib, @types/node)", "worker: typescript loaded", "converter created"),
    ("worker: parse the library's .d.ts", "converter created", "library types parsed"),
    ("build compiler (lib.*.d.ts, @types/node)", "first cell: received", "converter created"),
    ("cell: wait for compiler + type-check", "first cell: type-check start", "first cell: type-checked"),
    ("  of which after the worker was ready", "warm-up done", "first cell: type-checked"),
    ("require @cleanroom-lab/kernel", "first cell: library require start", "first cell: library loaded"),
    ("run the cell (openLab) + result", "first cell: type-checked", "first cell: executed"),
]


def report(row):
    """Print a result line and append it to $BENCH_REPORT in test/bench/targets.mjs's report() format."""
    def fmt(v):
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    t = row.get("target")
    verdict = ""
    if t:
        ok = row["value"] <= t["value"] if t["op"] == "<=" else row["value"] < t["value"]
        verdict = "met" if ok else f"missed by {row['value'] / t['value']:.2f}×"
    unit = row.get("unit", "")
    tgt = f" (target {'≤' if t['op'] == '<=' else '<'} {fmt(t['value'])}{unit}: {verdict})" if t else ""
    measured = f"{row['measured']} → " if row.get("measured") else ""
    note = f"; {row['note']}" if row.get("note") else ""
    print(f"  ▸ {row['what']}: {measured}{fmt(row['value'])}{unit}{tgt}{note}")
    path = os.environ.get("BENCH_REPORT")
    if path:
        line = dict(row, verdict=verdict, at=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    load=f"{os.getloadavg()[0]:.2f}")
        with open(path, "a") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return verdict


def read_trace(path):
    phases = {}
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            phases.setdefault(row["phase"], row)  # first occurrence
    return phases


def breakdown(traces):
    """Median wall and CPU milliseconds of each step over the traced kernels."""
    rows = []
    for label, a, b in STEPS:
        walls, cpus = [], []
        for ph in traces:
            if b not in ph or (a and a not in ph):
                continue
            if label.startswith("build compiler") and "worker: started" in ph:
                continue  # the main thread's build (CLEANROOM_KERNEL_WORKER=off) only
            walls.append(ph[b]["ms"] - (ph[a]["ms"] if a else 0))
            # the CPU of the thread that did the step (both phases traced by it), else the process's
            key = "threadCpuMs" if ph[b].get("threadCpuMs") is not None and (not a or (
                ph[a].get("threadCpuMs") is not None and ph[a].get("thread") == ph[b].get("thread"))) else "cpuMs"
            cpus.append(ph[b][key] - (ph[a][key] if a else 0))
        if walls:
            rows.append((label, statistics.median(walls), statistics.median(cpus)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds between ready and the first cell for the 'after idle' row")
    a = ap.parse_args()
    la0 = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="kernel-bench-")
    cc = os.path.join(tmp, "code-cache")
    # starts with no code cache and fills it, as any earlier kernel start would (not counted)
    cold_start, cold_first, _ = measure("cleanroom-ts", 0, trace=os.path.join(tmp, "cold.jsonl"), cache_dir=cc)
    cold = read_trace(os.path.join(tmp, "cold.jsonl"))
    cache = (cold.get("code cache flushed after the first cell") or {}).get("cache", {})
    res = {}
    # interleave the kernels so drifting machine load hits both alike
    runs = {"python3": [], "cleanroom-ts": []}
    traces, idle = [], []
    for i in range(a.reps):
        for name in runs:
            tr = os.path.join(tmp, f"run{i}.jsonl") if name == "cleanroom-ts" else None
            runs[name].append(measure(name, a.warm, trace=tr, cache_dir=cc))
            if tr:
                traces.append(read_trace(tr))
        if a.idle > 0:
            idle.append(measure("cleanroom-ts", 0, idle=a.idle, cache_dir=cc))
    for name, rs in runs.items():
        res[name] = tuple(statistics.median(r[i] for r in rs) for i in range(3))
    la = os.getloadavg()[0]
    sys.stdout.flush()
    print(f"kernel bench: {a.reps} fresh kernels each (interleaved), median; warm = median of {a.warm} × `1+1`; "
          f"load average {la0:.1f} → {la:.1f} on {os.cpu_count()} cores")
    print(f"  {'kernel':<16}{'start':>10}{'first cell':>12}{'start→first':>13}{'warm 1+1':>11}")
    for name, (s, f, w) in res.items():
        print(f"  {name:<16}{s*1000:>8.0f}ms{f*1000:>10.0f}ms{(s+f)*1000:>11.0f}ms{w*1000:>9.1f}ms")
    (ps, pf, pw), (cs, cf, cw) = res["python3"], res["cleanroom-ts"]
    r1 = (cs + cf) / (ps + pf)
    r2 = cw / pw
    report({"id": "kernel.start-first-cell", "what": "kernel start → first openLab cell vs IPython (same run)",
            "measured": f"{(cs + cf)*1000:.0f} ms vs {(ps + pf)*1000:.0f} ms", "value": round(r1, 2), "unit": "×",
            "target": {"op": "<=", "value": 2}, "note": f"median of {a.reps} fresh kernels each"})
    report({"id": "kernel.warm-trivial-cell", "what": "warm trivial cell (1+1) vs IPython (same run)",
            "measured": f"{cw*1000:.1f} ms vs {pw*1000:.1f} ms", "value": round(r2, 2), "unit": "×",
            "target": {"op": "<=", "value": 3}, "note": f"median of {a.warm} cells"})
    hits = sorted(set(cache.values())) or ["off"]
    print(f"  cleanroom-ts with a cold code cache (one kernel, before the runs): start→first {(cold_start + cold_first)*1000:.0f}ms "
          f"({len(cache)} modules: {', '.join(hits)})")
    if idle:
        ist = statistics.median(r[0] for r in idle)
        ifi = statistics.median(r[1] for r in idle)
        print(f"  cleanroom-ts, first openLab cell sent {a.idle:g} s after ready (the compiler warms up meanwhile): "
              f"start {ist*1000:.0f}ms, first cell {ifi*1000:.0f}ms (vs {cf*1000:.0f}ms sent at once; IPython {pf*1000:.0f}ms)")
    print("  where cleanroom-ts start→first goes (launcher trace, median of the runs; the worker's steps run")
    print("  beside the main thread's; cpu is the thread's own, 10 ms ticks, or the process's where a step spans both):")
    print(f"    {'step':<44}{'wall':>9}{'cpu':>9}")
    steps = breakdown(traces)
    for label, w, c in steps:
        print(f"    {label:<44}{w:>7.0f}ms{c:>7.0f}ms")
    if steps:
        report({"id": "kernel.start-breakdown", "what": "cleanroom-ts start → first cell, where the time goes (trace, wall ms)",
                "measured": "; ".join(f"{label} {w:.0f}" for label, w, _ in steps), "value": round((cs + cf) * 1000),
                "unit": " ms", "note": "no target: the steps behind kernel.start-first-cell"})
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
