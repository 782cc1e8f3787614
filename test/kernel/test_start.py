"""`npm start` as a class uses it (scripts/start.mjs): Ctrl-C stops the server and every kernel
it started, a busy port is detected before any URL is printed, and kernels never outlive the
server that started them (the cleanroom-ts launcher watches its parent).

Run from the repository root with the other kernel tests:

    /usr/bin/python3 -m unittest discover -s test/kernel -p "test_*.py" -v

start.mjs runs with CLEANROOM_NO_BOOTSTRAP=1 (the test runner has bootstrapped already) and
--plain (Debian's Jupyter server: the same kernels and signals, no UI bundle needed).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCHER = os.path.join(ROOT, "kernel-lib", "jupyter", "kernels", "cleanroom-ts", "launcher.js")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_pids(find):
    """SIGKILL every process `find()` names (cleanup: the test stops what it started by its own ids)."""
    for pid in find():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kernel_pids(connection_files):
    """Live processes of this checkout's launcher serving one of the given connection files."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    pids = []
    for line in out.splitlines():
        pid, stat, args = line.strip().split(None, 2)
        argv = args.split()
        if (os.path.basename(argv[0]) == "node" and LAUNCHER in argv[1:2] and not stat.startswith("Z")
                and any(c in args for c in connection_files)):
            pids.append(int(pid))
    return pids


def wait_for(pred, timeout=90, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


class StartScript:
    """node scripts/start.mjs in its own session (as a terminal runs it), output collected."""

    def __init__(self, *args):
        env = dict(os.environ, CLEANROOM_NO_BOOTSTRAP="1")
        self.proc = subprocess.Popen(["node", os.path.join(ROOT, "scripts", "start.mjs"), "--plain", *args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def url(self, timeout=90):
        m = wait_for(lambda: re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=([0-9a-f]+)", self.output()), timeout)
        if not m:
            raise AssertionError("no URL printed:\n" + self.output())
        return m.group(1), int(m.group(2)), m.group(3)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # start.mjs stops its server (own group) and kernels
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()


def api(base, token, path, body=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "token " + token}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


class StartScriptTests(unittest.TestCase):
    def test_ctrl_c_stops_the_server_and_every_kernel(self):
        start = StartScript(f"--port={free_port()}")
        self.addCleanup(start.stop)
        base, _, token = start.url()
        kernels = [api(base, token, "/api/kernels", {"name": "cleanroom-ts"}) for _ in range(2)]
        files = ["kernel-%s.json" % k["id"] for k in kernels]
        self.assertTrue(wait_for(lambda: len(kernel_pids(files)) == 2), "both kernels should be running")
        # A terminal's Ctrl-C signals the whole foreground process group.
        os.killpg(start.proc.pid, signal.SIGINT)
        self.assertEqual(start.proc.wait(60), 0, start.output())
        self.assertEqual(wait_for(lambda: not kernel_pids(files), timeout=60), True,
                         "kernels left running after Ctrl-C: %s" % kernel_pids(files))
        with self.assertRaises(OSError):
            api(base, token, "/api/kernels")

    def test_busy_port_is_detected_before_a_url_is_printed(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        busy = blocker.getsockname()[1]
        start = StartScript(f"--port={busy}")
        self.addCleanup(start.stop)
        base, port, token = start.url()
        self.assertNotEqual(port, busy)
        out = start.output()
        self.assertIn(f"port {busy} is already in use", out)
        self.assertLess(out.index(f"port {busy} is already in use"), out.index(base))
        self.assertNotIn(f"127.0.0.1:{busy}/", out, "no URL for the busy port")
        self.assertIn("cleanroom-ts", api(base, token, "/api/kernelspecs")["kernelspecs"])


class LauncherParentWatchTests(unittest.TestCase):
    def test_kernel_exits_when_its_server_dies_without_shutting_it_down(self):
        # A stand-in server process starts the kernel the way jupyter_client does (own session,
        # JPY_PARENT_PID) and is then killed with SIGKILL: nothing else would stop the kernel.
        from jupyter_client.connect import write_connection_file
        from tempfile import mkdtemp
        cf, _ = write_connection_file(os.path.join(mkdtemp(prefix="cleanroom-ts-parent-"), "kernel-parent-test.json"))
        parent = subprocess.Popen([sys.executable, "-c", (
            "import os, subprocess, sys, time\n"
            "subprocess.Popen(['node', %r, '--config-path', %r], start_new_session=True,\n"
            "                 env=dict(os.environ, JPY_PARENT_PID=str(os.getpid())))\n"
            "time.sleep(600)\n") % (LAUNCHER, cf)], start_new_session=True)
        self.addCleanup(lambda: parent.poll() is None and parent.kill())
        files = [os.path.basename(cf)]
        self.addCleanup(kill_pids, lambda: kernel_pids(files))  # a failing run leaves no kernel behind
        self.assertTrue(wait_for(lambda: kernel_pids(files)), "the kernel should start")
        parent.kill()
        parent.wait()
        self.assertEqual(wait_for(lambda: not kernel_pids(files), timeout=60), True, "the kernel outlived its server")


if __name__ == "__main__":
    unittest.main(verbosity=2)
