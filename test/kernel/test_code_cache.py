"""The cleanroom-ts kernel with its V8 code cache (issue 18): what a user sees does not depend on it.

Each test starts real kernels with their own cache directory (CLEANROOM_KERNEL_CACHE_DIR) and
start-up trace (CLEANROOM_KERNEL_TRACE):
  - two kernels started at once on an empty cache both run cells (a type error is still a
    CompileError), and leave whole entries only (magic + SHA-256 of the payload, no temporary
    files); the next kernel hits them;
  - every entry corrupted on disk: the next kernel reports them corrupt in its trace, compiles
    from source, still type-checks cells, and rewrites valid entries.
The cache's own cases (content keys, V8 rejection, unwritable directory) are in code-cache.test.ts.
"""

import hashlib
import json
import os
import shutil
import tempfile
import threading
import unittest

from jupyter_client.manager import KernelManager

from kernel_env import ROOT  # on import: JUPYTER_PATH and the scratch dirs

MAGIC = b"CRTSV8C1"
TYPESCRIPT_JS = os.path.join("@tslab", "typescript-for-tslab", "lib", "typescript.js")


def run_cell(kc, code, timeout=120):
    """Execute; return (status, ename, evalue) from the reply."""
    msg_id = kc.execute(code)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            c = reply["content"]
            return c["status"], c.get("ename"), c.get("evalue", "")


def kernel_session(cache_dir, trace, results, key):
    """Start a kernel, run a good cell and a type error, shut it down; store what it answered."""
    km = KernelManager(kernel_name="cleanroom-ts")
    env = dict(os.environ, CLEANROOM_KERNEL_CACHE_DIR=cache_dir, CLEANROOM_KERNEL_TRACE=trace)
    km.start_kernel(cwd=ROOT, env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        results[key] = [run_cell(kc, "const m: number = 41;\nm + 1"), run_cell(kc, 'const n: number = "text";')]
    except Exception as e:  # noqa: BLE001 — reported by the test that reads results
        results[key] = e
    finally:
        kc.stop_channels()
        try:
            km.shutdown_kernel(now=False)
        except Exception:  # noqa: BLE001 — the process we started must be gone
            if km.provisioner and km.provisioner.process:
                km.provisioner.process.kill()


def cache_states(trace):
    """file → hit/miss/rejected/corrupt as the kernel traced it after its first cell."""
    with open(trace) as f:
        for line in f:
            row = json.loads(line)
            if row["phase"].startswith("code cache flushed"):
                return row["cache"]
    return {}


def entry_valid(path):
    with open(path, "rb") as f:
        buf = f.read()
    return buf[:8] == MAGIC and len(buf) > 40 and hashlib.sha256(buf[40:]).digest() == buf[8:40]


class CodeCacheKernelTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="crts-kernel-cache-")
        self.cache = os.path.join(self.dir, "cache")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, results):
        trace = os.path.join(self.dir, name + ".jsonl")
        t = threading.Thread(target=kernel_session, args=(self.cache, trace, results, name))
        t.start()
        return t, trace

    def assert_cells_behave(self, answers):
        self.assertNotIsInstance(answers, Exception, answers)
        (s1, _, _), (s2, e2, v2) = answers
        self.assertEqual(s1, "ok")
        self.assertEqual((s2, e2), ("error", "CompileError"))
        self.assertIn("not assignable", v2)

    def ts_state(self, trace):
        states = cache_states(trace)
        ts = [v for k, v in states.items() if k.endswith(TYPESCRIPT_JS)]
        self.assertEqual(len(ts), 1, states)
        return ts[0]

    def test_two_kernels_at_once_fill_the_cache_and_the_next_kernel_hits_it(self):
        results = {}
        started = [self.start("a", results), self.start("b", results)]
        for t, _ in started:
            t.join()
        for name, (_, trace) in zip("ab", started):
            self.assert_cells_behave(results[name])
            self.assertIn(self.ts_state(trace), ("miss", "hit"))
        files = os.listdir(self.cache)
        self.assertEqual([f for f in files if f.endswith(".tmp")], [])
        entries = [f for f in files if f.endswith(".v8cache")]
        self.assertGreaterEqual(len(entries), 2)  # typescript.js and tslab's modules
        for f in entries:
            self.assertTrue(entry_valid(os.path.join(self.cache, f)), f)

        t, trace = self.start("c", results)
        t.join()
        self.assert_cells_behave(results["c"])
        self.assertEqual(self.ts_state(trace), "hit")

    def test_a_corrupt_cache_falls_back_to_source_and_is_rewritten(self):
        results = {}
        t, _ = self.start("fill", results)
        t.join()
        self.assert_cells_behave(results["fill"])
        entries = [os.path.join(self.cache, f) for f in os.listdir(self.cache) if f.endswith(".v8cache")]
        self.assertTrue(entries)
        for path in entries:  # one byte flipped in the middle of each payload
            with open(path, "r+b") as f:
                f.seek(40 + (os.path.getsize(path) - 40) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
            self.assertFalse(entry_valid(path))

        t, trace = self.start("corrupt", results)
        t.join()
        self.assert_cells_behave(results["corrupt"])
        self.assertEqual(self.ts_state(trace), "corrupt: checksum mismatch")
        for f in os.listdir(self.cache):
            self.assertTrue(f.endswith(".v8cache") and entry_valid(os.path.join(self.cache, f)), f)


if __name__ == "__main__":
    unittest.main()
