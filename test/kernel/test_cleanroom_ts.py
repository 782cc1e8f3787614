"""Jupyter protocol conformance of the cleanroom-ts kernel (tslab + launcher fixes).

Run from the repository root (scripts/test.mjs does this):

    JUPYTER_PATH=kernel-lib/jupyter /usr/bin/python3 -m unittest discover -s test/kernel -v

The first class is jupyter_kernel_test's standard suite; the second checks the defects
listed in ../shared/JUPYTER.md one by one (error content, execute_result, execution
counts, stop_on_error, kernel_info, history, comm_info).
"""

import os
import sys
import tempfile
import time
import unittest
from queue import Empty

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel
from jupyter_kernel_test.msgspec_v5 import validate_message

import kernel_env  # noqa: F401 — sets JUPYTER_PATH and the scratch dirs on import

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

# tslab compiles each cell with TypeScript: the first cell takes a few seconds.
jkt.TIMEOUT = 60

KERNEL_API = 'globalThis[Symbol.for("cleanroom-lab.kernel")]'


class CleanroomTsKernelTests(jkt.KernelTests):
    kernel_name = "cleanroom-ts"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'

    completion_samples = [
        {"text": "Math.ab", "matches": {"abs"}},
        {"text": "const someLongName = 1;\nsomeLong", "matches": {"someLongName"}},
    ]

    complete_code_samples = ["1 + 1", "const x = 2;", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "const o = {", "[1, 2,"]

    code_generate_error = 'throw new RangeError("deliberate")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'a' + 'b'", "result": "'ab'"},
        {"code": "[1, 2, 3].map((x) => x * 2)", "result": "[ 2, 4, 6 ]"},
        {"code": "10n ** 20n", "result": "100000000000000000000n"},
        {"code": "({ [Symbol.for('jupyter.mimebundle')]: () => ({ 'text/html': '<b>x</b>' }) })",
         "mime": "text/html", "result": "<b>x</b>"},
    ]
    code_history_pattern = "6 *"
    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {"code": 'import * as tslab from "tslab";\ntslab.display.html("<b>hi</b>")', "mime": "text/html"},
        {"code": 'import * as tslab from "tslab";\ntslab.display.markdown("*hi*")', "mime": "text/markdown"},
        {"code": KERNEL_API + '.display({"text/plain": "p", "application/json": {"a": 1}})',
         "mime": "application/json"},
    ]

    code_inspect_sample = "Math.max"
    code_clear_output = KERNEL_API + ".clearOutput()"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # jupyter_kernel_test's helpers wait 15 s per reply (their default binds the module's
        # TIMEOUT at import): let the kernel finish building its compiler first, as a user's first
        # cell does, so that a loaded machine does not fail whichever standard test runs first.
        msg_id = cls.kc.execute("0", store_history=False)
        deadline = time.time() + jkt.TIMEOUT * 2
        while time.time() < deadline:
            reply = cls.kc.get_shell_msg(timeout=jkt.TIMEOUT * 2)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        while True:  # its iopub messages are not part of any test
            try:
                cls.kc.get_iopub_msg(timeout=0.5)
            except Empty:
                break


class CleanroomTsProtocolTests(unittest.TestCase):
    """The tslab defects, each pinned by a test that fails on unpatched tslab 1.0.22."""

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="cleanroom-ts", startup_timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()

    def setUp(self):
        self.drain()

    def drain(self):
        for get in (self.kc.get_shell_msg, self.kc.get_iopub_msg):
            while True:
                try:
                    get(timeout=0.1)
                except Empty:
                    break

    def iopub_for(self, msg_id, timeout=60):
        """All iopub messages of one request, up to its idle status."""
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            validate_message(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
            out.append(msg)
        self.fail("no idle status for %s" % msg_id)

    def shell_reply(self, msg_id, timeout=60):
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def run_cell(self, code, **kw):
        msg_id = self.kc.execute(code, **kw)
        reply = self.shell_reply(msg_id)
        return reply, self.iopub_for(msg_id)

    def test_runtime_error_has_ename_evalue_traceback_and_iopub_error(self):
        reply, out = self.run_cell('throw new TypeError("bad input")')
        validate_message(reply, "execute_reply")
        c = reply["content"]
        self.assertEqual((c["status"], c["ename"], c["evalue"]), ("error", "TypeError", "bad input"))
        self.assertTrue(any("bad input" in line for line in c["traceback"]))
        errors = [m for m in out if m["msg_type"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["content"]["ename"], "TypeError")
        self.assertEqual(errors[0]["content"]["evalue"], "bad input")
        self.assertFalse([m for m in out if m["msg_type"] == "stream"], "error must not also go to a stream")

    def test_compile_error_names_the_diagnostic(self):
        reply, out = self.run_cell('const n: number = "text";')
        c = reply["content"]
        self.assertEqual((c["status"], c["ename"]), ("error", "CompileError"))
        self.assertIn("not assignable", c["evalue"])
        self.assertEqual([m["msg_type"] for m in out if m["msg_type"] == "error"], ["error"])

    def test_failing_mimebundle_hook_is_a_cell_error_not_a_hang(self):
        reply, out = self.run_cell(
            '({ [Symbol.for("jupyter.mimebundle")]: () => { throw new Error("bad bundle"); } })')
        self.assertEqual((reply["content"]["status"], reply["content"]["evalue"]), ("error", "bad bundle"))
        self.assertFalse([m for m in out if m["msg_type"] == "execute_result"])

    def test_async_rejection_is_an_error(self):
        reply, _ = self.run_cell('await Promise.reject(new Error("later"))')
        self.assertEqual((reply["content"]["status"], reply["content"]["evalue"]), ("error", "later"))

    def test_last_expression_is_execute_result_with_count_not_stdout(self):
        reply, out = self.run_cell("const answer = 40;\nanswer + 2")
        count = reply["content"]["execution_count"]
        results = [m for m in out if m["msg_type"] == "execute_result"]
        self.assertEqual(len(results), 1)
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")
        self.assertEqual(results[0]["content"]["execution_count"], count)
        self.assertFalse([m for m in out if m["msg_type"] == "stream"])

    def test_object_shorthand_sees_an_earlier_cells_variable(self):
        # tslab 1.0.22 alone raises "ReferenceError: shorthandLab is not defined" here
        self.run_cell("const shorthandLab = { room: 41 };")
        reply, out = self.run_cell("const wrapped = { shorthandLab };\nconst { room } = wrapped.shorthandLab;\nroom + 1")
        self.assertEqual(reply["content"]["status"], "ok", reply["content"].get("evalue"))
        results = [m for m in out if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")

    def test_execute_input_publishes_increasing_counts(self):
        r1, o1 = self.run_cell("1")
        r2, o2 = self.run_cell("2")
        n1, n2 = r1["content"]["execution_count"], r2["content"]["execution_count"]
        self.assertEqual(n2, n1 + 1)
        inputs = [m for m in o2 if m["msg_type"] == "execute_input"]
        self.assertEqual([(m["content"]["code"], m["content"]["execution_count"]) for m in inputs], [("2", n2)])

    def test_silent_execution_publishes_nothing_and_keeps_count(self):
        r1, _ = self.run_cell("1")
        _, out = self.run_cell("5 + 5", silent=True)
        self.assertEqual([m["msg_type"] for m in out if m["msg_type"] != "status"], [])
        r3, _ = self.run_cell("3")
        self.assertEqual(r3["content"]["execution_count"], r1["content"]["execution_count"] + 1)

    def send_batch(self, first, rest, stop_on_error):
        ids = [self.kc.execute(first, stop_on_error=stop_on_error)]
        ids += [self.kc.execute(code) for code in rest]
        return [self.shell_reply(i)["content"]["status"] for i in ids]

    def test_stop_on_error_aborts_queued_requests(self):
        statuses = self.send_batch('throw new Error("stop")', ["1", "2"], stop_on_error=True)
        self.assertEqual(statuses, ["error", "aborted", "aborted"])
        time.sleep(0.2)
        reply, _ = self.run_cell("3")
        self.assertEqual(reply["content"]["status"], "ok", "aborting must end after the queue drains")

    def test_stop_on_error_false_runs_the_following_requests(self):
        statuses = self.send_batch('throw new Error("go on")', ["1", "2"], stop_on_error=False)
        self.assertEqual(statuses, ["error", "ok", "ok"])

    def test_request_right_after_an_error_is_not_aborted(self):
        reply, _ = self.run_cell('throw new Error("once")', stop_on_error=False)
        self.assertEqual(reply["content"]["status"], "error")
        reply, _ = self.run_cell("1 + 1")
        self.assertEqual(reply["content"]["status"], "ok")

    def test_kernel_info_reply_is_complete(self):
        msg_id = self.kc.kernel_info()
        reply = self.shell_reply(msg_id)
        validate_message(reply, "kernel_info_reply", msg_id)
        c = reply["content"]
        self.assertEqual(c["status"], "ok")
        self.assertEqual(c["language_info"]["name"], "typescript")
        self.assertRegex(c["language_info"]["version"], r"^\d+\.\d+")
        self.assertIn("implementation_version", c)

    def test_history_request_is_answered(self):
        self.run_cell("const historyMarker = 7; historyMarker")
        msg_id = self.kc.history(hist_access_type="tail", n=1, output=True, raw=True)
        reply = self.shell_reply(msg_id)
        validate_message(reply, "history_reply", msg_id)
        (session, line, (source, output)), = reply["content"]["history"]
        self.assertIn("historyMarker", source)
        self.assertEqual(output, "7")

    def test_comm_info_request_gets_comm_info_reply(self):
        msg_id = self.kc.comm_info()
        reply = self.shell_reply(msg_id)
        validate_message(reply, "comm_info_reply", msg_id)
        self.assertEqual(reply["content"], {"status": "ok", "comms": {}})

    def interrupt_while_running(self, code):
        msg_id = self.kc.execute(code, stop_on_error=False)
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until the cell has started
            msg = self.kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
                break
        time.sleep(0.5)
        self.km.interrupt_kernel()
        reply = self.shell_reply(msg_id, timeout=30)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertIn("nterrupt", reply["content"]["evalue"])
        after, _ = self.run_cell("21 * 2")
        self.assertEqual(after["content"]["status"], "ok", "the kernel must survive an interrupt")

    def test_interrupt_stops_an_awaiting_cell(self):
        self.interrupt_while_running("await new Promise(() => {})")

    def test_interrupt_stops_a_busy_loop(self):
        self.interrupt_while_running("while (true) {}")

    def wait_for_file_cell(self, path):
        """A cell that runs until the test creates `path` (no sleeps, no timing)."""
        return (
            'import * as fs from "fs";\n'
            "await new Promise<void>((done) => { const t = setInterval(() => {"
            " if (fs.existsSync(%r)) { clearInterval(t); done(); } }, 20); });\n"
            '"released"' % path
        )

    def test_status_stays_busy_while_a_cell_runs_whatever_else_is_asked(self):
        # The lab sends kernel_info/comm_info/complete requests while a cell runs; tslab
        # published `idle` for each and the lab showed the kernel Idle during a long cell.
        gate = os.path.join(tempfile.mkdtemp(prefix="cleanroom-ts-status-"), "release")
        slow = self.kc.execute(self.wait_for_file_cell(gate))
        statuses = []  # (execution_state, parent msg_id) in publication order

        def read_iopub_until(pred):
            deadline = time.time() + 60
            while time.time() < deadline:
                msg = self.kc.get_iopub_msg(timeout=60)
                if msg["msg_type"] == "status":
                    statuses.append((msg["content"]["execution_state"], msg["parent_header"].get("msg_id")))
                if pred(msg):
                    return msg
            self.fail("timed out waiting on iopub")

        read_iopub_until(lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == slow)
        others = {
            "kernel_info_reply": self.kc.kernel_info(),
            "comm_info_reply": self.kc.comm_info(),
            "complete_reply": self.kc.complete("Math.ab", 7),
        }
        queued = self.kc.execute("20 + 22")
        # All three are answered while the slow cell still runs (it waits for the gate file).
        replies = {}
        while len(replies) < len(others):
            reply = self.kc.get_shell_msg(timeout=60)
            self.assertNotIn(reply["parent_header"].get("msg_id"), (slow, queued), "the slow cell cannot end yet")
            replies[reply["msg_type"]] = reply
        for msg_type, msg_id in others.items():
            validate_message(replies[msg_type], msg_type, msg_id)
        self.assertIn("abs", replies["complete_reply"]["content"]["matches"])
        open(gate, "w").close()
        self.assertEqual(self.shell_reply(slow)["content"]["status"], "ok")
        self.assertEqual(self.shell_reply(queued)["content"]["status"], "ok")
        pending = set(others.values())
        read_iopub_until(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                         and pending.discard(m["parent_header"].get("msg_id")) is None and not pending)
        idles = [parent for state, parent in statuses if state == "idle"]
        # No idle until the slow cell has ended; the queued cell is busy only while it runs.
        self.assertEqual(idles[:2], [slow, queued], statuses)
        self.assertEqual(set(idles[2:]), set(others.values()), statuses)
        busy_queued = statuses.index(("busy", queued))
        self.assertGreater(busy_queued, statuses.index(("idle", slow)), "a queued cell is not busy before it starts")
        self.assertEqual(statuses.count(("busy", queued)), 1)

    REFUSED_QUERY = (
        'import { openLab, addParty, liftTemplate, cleanRoomQuery, attempt } from "@cleanroom-lab/kernel";\n'
        'const refusalLab = openLab({ store: ":memory:", rng: { seed: "kernel-test" } });\n'
        'addParty(refusalLab, { party: "advertiser" }); addParty(refusalLab, { party: "retailer" });\n'
        'const refusalReq = { template: liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5" }),\n'
        '  params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "research" };\n'
    )
    MIME = "application/vnd.cleanroom-lab.v1+json"

    def test_uncaught_refusal_renders_why_blocked_with_a_one_line_error(self):
        self.run_cell(self.REFUSED_QUERY)
        reply, out = self.run_cell("await cleanRoomQuery(refusalLab, refusalReq)", stop_on_error=False)
        c = reply["content"]
        self.assertEqual((c["status"], c["ename"]), ("error", "CleanRoomError"))
        line = c["traceback"]
        self.assertEqual(len(line), 1, line)
        self.assertRegex(line[0], r'^GRANT_INVALID: no unexpired purpose grant .*"research"')
        self.assertNotRegex(line[0], r"dist|\bat |\[GRANT_INVALID\]")
        errors = [m for m in out if m["msg_type"] == "error"]
        self.assertEqual([e["content"]["traceback"] for e in errors], [line])
        views = [m for m in out if m["msg_type"] == "display_data"]
        self.assertEqual(len(views), 1)
        self.assertLess(out.index(views[0]), out.index(errors[0]), "the view comes before the error line")
        data = views[0]["content"]["data"]
        payload = data[self.MIME]
        self.assertEqual(payload["refused"]["code"], "GRANT_INVALID")
        self.assertEqual([s["step"] for s in payload["trace"] if s["status"] == "refused"], ["purpose"])
        self.assertIn("Why blocked", data["text/plain"])
        # exactly what attempt() shows for the same refusal
        _, out2 = self.run_cell("await attempt(() => cleanRoomQuery(refusalLab, refusalReq))")
        result = [m for m in out2 if m["msg_type"] == "execute_result"][0]["content"]["data"]
        self.assertEqual(result[self.MIME], payload)
        self.assertEqual(result["text/html"], data["text/html"])

    def test_uncaught_refusal_without_trace_renders_an_error_card(self):
        reply, out = self.run_cell('import { openLab } from "@cleanroom-lab/kernel";\nopenLab({ store: ":memory:", budget: { epsilon: -1 } })')
        self.assertEqual(reply["content"]["traceback"], ['DP_PARAM_INVALID: "options.budget.epsilon" expected rational in [1e-9, 1e4], got number -1'])
        payload = [m for m in out if m["msg_type"] == "display_data"][0]["content"]["data"][self.MIME]
        self.assertEqual((payload["kind"], payload["code"], payload["field"]), ("error", "DP_PARAM_INVALID", "options.budget.epsilon"))

    def test_an_error_that_only_claims_the_name_keeps_its_stack(self):
        reply, out = self.run_cell(
            'const fake = new Error("not ours"); fake.name = "CleanRoomError"; (fake as any).code = "NO_SUCH_CODE";\nthrow fake')
        self.assertEqual(reply["content"]["ename"], "CleanRoomError")
        self.assertFalse([m for m in out if m["msg_type"] == "display_data"])
        self.assertNotEqual(reply["content"]["traceback"], ["NO_SUCH_CODE: not ours"])

    PSI_CELL = (
        'import {{ openLab, addParty, psiMatch }} from "@cleanroom-lab/kernel";\n'
        'const progLab{0} = openLab({{ store: ":memory:", rng: {{ seed: "kernel-progress" }} }});\n'
        'addParty(progLab{0}, {{ party: "advertiser" }}); addParty(progLab{0}, {{ party: "retailer" }});\n'
        'const progIds{0} = (n: number, from: number) => Array.from({{ length: n }}, (_, i) => `user${{i + from}}@example.com`);\n'
    )

    def progress_messages(self, out):
        return [m for m in out if m["msg_type"] in ("display_data", "update_display_data")
                and m["content"]["data"].get(self.MIME, {}).get("kind") == "progress"]

    def test_psi_shows_a_progress_bar_updated_in_place_until_100_percent(self):
        self.run_cell(self.PSI_CELL.format("A"))
        reply, out = self.run_cell(
            'const progMatch = await psiMatch(progLabA, { a: { party: "advertiser", rows: progIdsA(1500, 0) },'
            ' b: { party: "retailer", rows: progIdsA(1500, 1000) } });\nprogMatch.matchReport.intersectionSize')
        self.assertEqual(reply["content"]["status"], "ok", reply["content"].get("evalue"))
        bars = self.progress_messages(out)
        self.assertEqual(bars[0]["msg_type"], "display_data", [m["msg_type"] for m in bars])
        display_id = bars[0]["content"]["transient"]["display_id"]
        self.assertRegex(display_id, r"^cleanroom-progress:")
        updates = bars[1:]
        self.assertGreaterEqual(len(updates), 2, "the bar advances in place")
        for m in updates:
            self.assertEqual(m["msg_type"], "update_display_data")
            self.assertEqual(m["content"]["transient"], {"display_id": display_id})
        payloads = [m["content"]["data"][self.MIME] for m in bars]
        dones = [p["done"] for p in payloads]
        self.assertEqual(dones, sorted(dones), "done never goes back")
        self.assertTrue(any(p["state"] == "running" and 0 < p["done"] < p["total"] for p in payloads), payloads)
        final = payloads[-1]
        self.assertEqual((final["state"], final["done"]), ("done", final["total"]))
        self.assertIn("100%", bars[-1]["content"]["data"]["text/plain"])
        self.assertIn("client: hash and blind own set", [p["name"] for p in final["phases"]])
        # the bar is published before the result, and the result is still the PSI's
        result = [m for m in out if m["msg_type"] == "execute_result"][0]
        self.assertLess(out.index(bars[-1]), out.index(result))
        self.assertEqual(result["content"]["data"]["text/plain"], "500")

    def test_psi_progress_false_shows_no_bar(self):
        self.run_cell(self.PSI_CELL.format("B"))
        reply, out = self.run_cell(
            'await psiMatch(progLabB, { a: { party: "advertiser", rows: progIdsB(50, 0) },'
            ' b: { party: "retailer", rows: progIdsB(50, 10) }, progress: false }); 1')
        self.assertEqual(reply["content"]["status"], "ok", reply["content"].get("evalue"))
        self.assertEqual(self.progress_messages(out), [])

    def live_budgets(self, out):
        return [m for m in out if m["msg_type"] == "update_display_data"
                and m["content"]["transient"].get("display_id", "").startswith("cleanroom-budget:")]

    def test_every_execution_publishes_the_live_budget_of_open_labs(self):
        reply, out = self.run_cell(
            'import { openLab, addParty } from "@cleanroom-lab/kernel";\n'
            'const liveLab = openLab({ store: ":memory:", room: "live-kernel", rng: { seed: "live" }, budget: { epsilon: 2 } });\n'
            'addParty(liveLab, { party: "advertiser" });')
        self.assertEqual(reply["content"]["status"], "ok", reply["content"].get("evalue"))
        live = [m for m in self.live_budgets(out) if m["content"]["transient"]["display_id"] == "cleanroom-budget:live-kernel"]
        self.assertEqual(len(live), 1)
        payload = live[0]["content"]["data"][self.MIME]
        self.assertEqual(payload["kind"], "budget")
        self.assertEqual(sorted((b["scope"], b["subject"], b["total"], b["spent"]) for b in payload["budgets"]),
                         [("collaboration", "live-kernel", 2, 0), ("party", "advertiser", 2, 0)])
        self.assertFalse([m for m in out if m["msg_type"] == "display_data"], "no output is added to the cell")
        # any later cell publishes it again, with the ledger as it is now
        _, out = self.run_cell("1 + 1")
        ids = [m["content"]["transient"]["display_id"] for m in self.live_budgets(out)]
        self.assertIn("cleanroom-budget:live-kernel", ids)
        _, out = self.run_cell("2 + 2", silent=True)
        self.assertEqual(self.live_budgets(out), [], "a silent execution publishes nothing")

    def test_library_error_keeps_its_name_and_code(self):
        reply, _ = self.run_cell(
            'import { CleanRoomError } from "@cleanroom-lab/kernel/dist/errors.js";\n'
            'throw new CleanRoomError("PARAM_INVALID", "\\"epsilon\\" expected > 0, got number 0")'
        )
        c = reply["content"]
        self.assertEqual(c["ename"], "CleanRoomError")
        self.assertTrue(c["evalue"].startswith("[PARAM_INVALID]"), c["evalue"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
