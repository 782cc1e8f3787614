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
Every kernel it starts is shut down (and killed by its own process if shutdown fails).
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


# Launcher trace phases (kernel-lib/jupyter/kernels/cleanroom-ts/launcher.js) → the steps between them.
STEPS = [
    ("node start-up", None, "launcher started"),
    ("load TypeScript (typescript.js)", "launcher started", "typescript loaded"),
    ("load tslab + zeromq", "typescript loaded", "tslab loaded"),
    ("handshake until the cell arrives", "sockets bound", "first cell: received"),
    ("build compiler (lib.*.d.ts, @types/node)", "first cell: received", "converter created"),
    ("type-check cell (library .d.ts)", "first cell: type-check start", "first cell: type-checked"),
    ("require @cleanroom-lab/kernel", "first cell: library require start", "first cell: library loaded"),
    ("openLab + result", "first cell: library loaded", "first cell: executed"),
]


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
            walls.append(ph[b]["ms"] - (ph[a]["ms"] if a else 0))
            cpus.append(ph[b]["cpuMs"] - (ph[a]["cpuMs"] if a else 0))
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
    v = lambda r, t: "met" if r <= t else f"missed by {r / t:.2f}×"
    print(f"  target: start → first openLab cell ≤ 2× IPython → {r1:.2f}× ({v(r1, 2)})")
    print(f"  target: warm trivial cell ≤ 3× IPython → {r2:.2f}× ({v(r2, 3)})")
    hits = sorted(set(cache.values())) or ["off"]
    print(f"  cleanroom-ts with a cold code cache (one kernel, before the runs): start→first {(cold_start + cold_first)*1000:.0f}ms "
          f"({len(cache)} modules: {', '.join(hits)})")
    if idle:
        ist = statistics.median(r[0] for r in idle)
        ifi = statistics.median(r[1] for r in idle)
        print(f"  cleanroom-ts, first openLab cell sent {a.idle:g} s after ready (the compiler warms up meanwhile): "
              f"start {ist*1000:.0f}ms, first cell {ifi*1000:.0f}ms (vs {cf*1000:.0f}ms sent at once; IPython {pf*1000:.0f}ms)")
    print("  where cleanroom-ts start→first goes (launcher trace, median of the runs):")
    print(f"    {'step':<44}{'wall':>9}{'cpu':>9}")
    for label, w, c in breakdown(traces):
        print(f"    {label:<44}{w:>7.0f}ms{c:>7.0f}ms")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
