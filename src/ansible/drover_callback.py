# drover's stdout callback for ansible-playbook (ansible-core 2.19 ships no JSON
# callback; ansible.posix's is a separate collection). Written next to the generated
# inventory for each run and selected with ANSIBLE_STDOUT_CALLBACK=drover.
#
# Every task result becomes one JSON line in the file named by DROVER_ANSIBLE_EVENTS
# (what drover parses: host, task, status) and one readable line on stdout (what the
# run log shows). Results of `no_log` tasks carry neither message nor diff.
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: drover
    type: stdout
    short_description: task results as JSON lines for drover
    description: one JSON object per task result in $DROVER_ANSIBLE_EVENTS
"""

MAX_TEXT = 4000


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "drover"

    def __init__(self):
        super().__init__()
        self._events = open(os.environ["DROVER_ANSIBLE_EVENTS"], "a", encoding="utf-8")

    def _emit(self, event):
        self._events.write(json.dumps(event) + "\n")
        self._events.flush()

    def _text(self, r):
        parts = []
        for key in ("msg", "stderr", "stdout"):
            v = r.get(key)
            if v:
                parts.append(str(v))
        for item in r.get("results", []) or []:
            if isinstance(item, dict) and item.get("failed") and item.get("msg"):
                parts.append(str(item["msg"]))
        return "\n".join(parts)[:MAX_TEXT]

    def _result(self, status, result):
        r = result.result
        hidden = bool(r.get("_ansible_no_log"))
        event = {
            "host": result.host.get_name(),
            "task": result.task.get_name(),
            "action": result.task.action,
            "status": status,
        }
        line = "%s: [%s] %s" % (status, event["host"], event["task"])
        if status in ("failed", "unreachable") and not hidden:
            event["msg"] = self._text(r)
            line += " => " + event["msg"].replace("\n", " | ")
        if status == "changed" and not hidden and r.get("diff"):
            diff = self._get_diff(r["diff"])
            if diff:
                event["diff"] = diff[:MAX_TEXT]
                line += "\n" + event["diff"].rstrip("\n")
        self._emit(event)
        self._display.display(line)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._display.display("TASK [%s]" % task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._display.display("HANDLER [%s]" % task.get_name())

    def v2_runner_on_ok(self, result):
        self._result("changed" if result.result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_playbook_on_no_hosts_matched(self):
        self._emit({"host": "", "task": "", "action": "", "status": "no_hosts"})
        self._display.display("no hosts matched")

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            self._display.display(
                "RECAP [%s] ok=%d changed=%d failed=%d unreachable=%d skipped=%d"
                % (host, s["ok"], s["changed"], s["failures"], s["unreachable"], s["skipped"])
            )
        self._events.close()
