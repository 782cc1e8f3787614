#!/usr/bin/python3
"""Execute notebooks with the cleanroom-ts kernel through a real Jupyter client (nbclient).

    /usr/bin/python3 scripts/run-notebooks.py [NOTEBOOK ...] [--out DIR] [--report FILE]
                                              [--timeout SECONDS] [--cell-timeout SECONDS]

Without arguments every notebooks/*.ipynb runs. Each notebook runs in its own kernel whose
working directory is the notebook's folder. Executed copies (with outputs, also of a failed
run up to the failing cell) go to --out (default .scratch/notebooks-out/) next to a JSON run
report (default <out>/report.json). A failing cell fails the run: the report and the console
name the notebook, the cell index (0-based position in the notebook's cell list), ename and
evalue. Exit status: 0 when all notebooks pass, 1 otherwise, 2 on bad usage.

Cells tagged `raises-exception` may fail without failing the notebook (nbclient convention).

Party notebooks (metadata `cleanroom.room = {"group": G, "args": [...]}`, e.g. 08-advertiser and
08-retailer) run as a group: the harness starts one room server (scripts/room-server.mjs, its own
process, a fresh store in a temp folder, killed by pid afterwards), gives every kernel of the group
CLEANROOM_ROOM_URL and CLEANROOM_ROOM_DIR, and executes the group's notebooks at the same time.
Naming one notebook of a group runs the whole group.
"""

import argparse
import asyncio
import glob
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "kernel-lib", "jupyter")
if KERNELS not in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [os.environ.get("JUPYTER_PATH"), KERNELS]))
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
# Jupyter's runtime/data/config state stays in the project's scratch space, not in $HOME.
for _var, _sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                   ("JUPYTER_CONFIG_DIR", "config"), ("IPYTHONDIR", "ipython")):
    os.environ.setdefault(_var, os.path.join(ROOT, ".scratch", "jupyter", _sub))
    os.makedirs(os.environ[_var], exist_ok=True)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: E402

KERNEL_NAME = "cleanroom-ts"


def rel(path):
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def short_traceback(lines, limit=20):
    return [line for line in (lines or [])][:limit]


async def run_one(path, out_dir, notebook_timeout, cell_timeout, env=None):
    nb = nbformat.read(path, as_version=4)
    state = {"cell_index": None, "error": None}

    def on_cell_start(cell, cell_index):
        state["cell_index"] = cell_index

    def on_cell_error(cell, cell_index, execute_reply):
        content = execute_reply.get("content", {})
        state["error"] = {
            "cell_index": cell_index,
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": short_traceback(content.get("traceback")),
        }

    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=cell_timeout,
        startup_timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        on_cell_start=on_cell_start,
        on_cell_error=on_cell_error,
    )
    started = time.monotonic()
    error = None
    try:
        # env: the kernel's environment (a party group's room URL), without touching this process's own
        await asyncio.wait_for(client.async_execute(**({"env": env} if env else {})), timeout=notebook_timeout)
    except CellExecutionError as e:
        error = state["error"] or {"cell_index": state["cell_index"], "ename": e.ename, "evalue": e.evalue, "traceback": []}
        # nbclient only calls on_cell_error for error replies; cells tagged raises-exception never get here.
        error["ename"] = error["ename"] or e.ename
        error["evalue"] = error["evalue"] or e.evalue
    except (asyncio.TimeoutError, CellTimeoutError) as e:
        which = "notebook" if isinstance(e, asyncio.TimeoutError) else "cell"
        limit = notebook_timeout if which == "notebook" else cell_timeout
        error = {"cell_index": state["cell_index"], "ename": "Timeout", "evalue": f"{which} timeout of {limit} s exceeded", "traceback": []}
    except DeadKernelError as e:
        error = {"cell_index": state["cell_index"], "ename": "DeadKernelError", "evalue": str(e), "traceback": []}
    except Exception as e:  # kernel failed to start, bad notebook, ...
        error = {"cell_index": state["cell_index"], "ename": type(e).__name__, "evalue": str(e), "traceback": []}
    finally:
        # wait_for cancellation can leave the kernel running: make sure it is gone.
        try:
            if client.km is not None and await client.km.is_alive():
                await client.km.shutdown_kernel(now=True)
        except Exception:
            pass
    seconds = round(time.monotonic() - started, 2)

    executed = os.path.join(out_dir, os.path.basename(path))
    nbformat.write(nb, executed)
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
    return {
        "notebook": rel(path),
        "status": "failed" if error else "passed",
        "seconds": seconds,
        "code_cells": code_cells,
        "executed": rel(executed),
        "error": error,
    }


def room_of(path):
    """The `cleanroom.room` metadata of a party notebook, or None."""
    try:
        return nbformat.read(path, as_version=4).metadata.get("cleanroom", {}).get("room")
    except Exception:
        return None


async def run_group(paths, room, out_dir, notebook_timeout, cell_timeout):
    """Start a room server, run the group's notebooks concurrently against it, stop it."""
    tmp = tempfile.mkdtemp(prefix=f"room-{room['group']}-")
    node = os.environ.get("NODE") or shutil.which("node") or "node"
    proc = await asyncio.create_subprocess_exec(
        node, os.path.join(ROOT, "scripts", "room-server.mjs"), "--store", os.path.join(tmp, "room.db"), "--port", "0",
        *room.get("args", []), stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        event = json.loads(line or b"{}")
        if event.get("event") != "listening":
            raise RuntimeError(f"room server did not start: {event}")
        env = {**os.environ, "CLEANROOM_ROOM_URL": event["url"], "CLEANROOM_ROOM_DIR": tmp}
        # a party that fails leaves its peers waiting for it: cancel them (their kernels are shut down)
        tasks = {asyncio.ensure_future(run_one(p, out_dir, notebook_timeout, cell_timeout, env)): p for p in paths}
        done = {}
        pending = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in finished:
                done[tasks[t]] = t.result()
            failed = [r for r in done.values() if r["status"] == "failed"]
            if failed and pending:
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for t in pending:
                    error = {"cell_index": None, "ename": "Cancelled", "evalue": f"its peer {failed[0]['notebook']} failed", "traceback": []}
                    done[tasks[t]] = {"notebook": rel(tasks[t]), "status": "failed", "seconds": 0, "code_cells": 0, "executed": "", "error": error}
                pending = set()
        return [done[p] for p in paths]
    except Exception as e:
        error = {"cell_index": None, "ename": type(e).__name__, "evalue": str(e), "traceback": []}
        return [{"notebook": rel(p), "status": "failed", "seconds": 0, "code_cells": 0, "executed": "", "error": error} for p in paths]
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--out", default=os.path.join(ROOT, ".scratch", "notebooks-out"), help="folder for executed copies and the report")
    parser.add_argument("--report", default=None, help="JSON report path (default: <out>/report.json)")
    parser.add_argument("--timeout", type=float, default=600, help="per-notebook timeout in seconds (default 600)")
    parser.add_argument("--cell-timeout", type=int, default=300, help="per-cell timeout in seconds (default 300)")
    parser.add_argument(
        "--jobs", type=int, default=int(os.environ.get("CLEANROOM_NOTEBOOK_JOBS", "2")),
        help="notebooks (or party groups) run at the same time, each in its own kernel (default 2: one per core)",
    )
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        print("run-notebooks: no such notebook: " + ", ".join(missing), file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    report_path = args.report or os.path.join(args.out, "report.json")

    # party notebooks run as groups (all of a group, at the same time, against one room server)
    every = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    units, grouped = [], set()
    for path in paths:
        room = room_of(path)
        if room is None:
            units.append(([path], None))
        elif room["group"] not in grouped:
            grouped.add(room["group"])
            same = [p for p in every if (room_of(p) or {}).get("group") == room["group"]]
            units.append((same or [path], room))

    def show(result):
        if result["status"] == "passed":
            print(f"  ✓ {result['notebook']} ({result['code_cells']} code cells, {result['seconds']} s)", flush=True)
        else:
            e = result["error"]
            print(f"  ✗ {result['notebook']}: cell {e['cell_index']}: {e['ename']}: {e['evalue']}", flush=True)
            for line in e["traceback"][:8]:
                print(f"      {line}", flush=True)
            print(f"      executed copy: {result['executed']}", flush=True)

    async def run_all():
        # each unit in its own kernel(s); at most --jobs units at once; the report keeps the notebook order
        gate = asyncio.Semaphore(max(1, args.jobs))

        async def run_unit(unit, room):
            async with gate:
                if room is None:
                    batch = [await run_one(unit[0], args.out, args.timeout, args.cell_timeout)]
                else:
                    batch = await run_group(unit, room, args.out, args.timeout, args.cell_timeout)
            for result in batch:
                show(result)
            return batch

        batches = await asyncio.gather(*(run_unit(unit, room) for unit, room in units))
        return [r for b in batches for r in b]

    results = asyncio.run(run_all())

    passed = sum(1 for r in results if r["status"] == "passed")
    failed = len(results) - passed
    report = {
        "kernel": KERNEL_NAME,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": passed,
        "failed": failed,
        "notebooks": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    with open(report_path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"notebooks: {passed} passed, {failed} failed (report: {rel(report_path)})", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
