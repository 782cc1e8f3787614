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
Every kernel it starts is shut down (and killed by its own process if shutdown fails).
"""

import argparse
import os
import statistics
import sys
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


def measure(name, warm):
    km = KernelManager(kernel_name=name)
    t0 = time.perf_counter()
    km.start_kernel(cwd=ROOT)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        start = time.perf_counter() - t0
        first = run_cell(kc, CELLS[name])
        warms = [run_cell(kc, "1+1") for _ in range(warm)]
        return start, first, statistics.median(warms)
    finally:
        kc.stop_channels()
        try:
            km.shutdown_kernel(now=False)
        except Exception:  # noqa: BLE001 — make sure the process we started is gone
            if km.provisioner and km.provisioner.process:
                km.provisioner.process.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warm", type=int, default=20)
    a = ap.parse_args()
    res = {}
    # interleave the kernels so drifting machine load hits both alike
    runs = {"python3": [], "cleanroom-ts": []}
    for _ in range(a.reps):
        for name in runs:
            runs[name].append(measure(name, a.warm))
    for name, rs in runs.items():
        res[name] = tuple(statistics.median(r[i] for r in rs) for i in range(3))
    la = os.getloadavg()[0]
    sys.stdout.flush()
    print(f"kernel bench: {a.reps} fresh kernels each (interleaved), median; warm = median of {a.warm} × `1+1`; "
          f"load average {la:.1f} on {os.cpu_count()} cores")
    print(f"  {'kernel':<16}{'start':>10}{'first cell':>12}{'start→first':>13}{'warm 1+1':>11}")
    for name, (s, f, w) in res.items():
        print(f"  {name:<16}{s*1000:>8.0f}ms{f*1000:>10.0f}ms{(s+f)*1000:>11.0f}ms{w*1000:>9.1f}ms")
    (ps, pf, pw), (cs, cf, cw) = res["python3"], res["cleanroom-ts"]
    r1 = (cs + cf) / (ps + pf)
    r2 = cw / pw
    v = lambda r, t: "met" if r <= t else f"missed by {r / t:.2f}×"
    print(f"  target: start → first openLab cell ≤ 2× IPython → {r1:.2f}× ({v(r1, 2)})")
    print(f"  target: warm trivial cell ≤ 3× IPython → {r2:.2f}× ({v(r2, 3)})")


if __name__ == "__main__":
    sys.exit(main())
