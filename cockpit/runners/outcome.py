"""Reading what a training run printed: the summary block and the reason it failed."""
from __future__ import annotations

import math
import re
import signal

from cockpit.domain import causes
from cockpit.domain.text import printable
from cockpit.runners.sandbox import HIDDEN_IN_HOME

WORKER_LOST = "worker lost"  # how a run lost with its worker's machine is reported
VAL_HIDDEN = "validation split"  # prepare.py's words when a run reaches for it

MAX_VALUE = 200  # characters of a value read from the output (a fingerprint is 12)
SUMMARY_LINE = re.compile(r"^([A-Za-z_][\w.]*):\s+(\S.*?)\s*$")
ERROR_LINE = re.compile(r"(Error|Exception|FAIL|Traceback|Killed|nan)", re.IGNORECASE)

# What a process in the sandbox sees when it reaches past it.
NETWORK_REFUSED = re.compile(
    r"Network is unreachable|Connection refused|Temporary failure in name resolution"
    r"|Name or service not known|No address associated with hostname"
    r"|Failed to establish a new connection|Could not resolve host", re.IGNORECASE)
WRITE_REFUSED = re.compile(r"Read-only file system(?::\s*'(?P<path>[^']+)')?")
HIDDEN_PATH = re.compile(
    r"'(?P<path>[^']*/(?:" + "|".join(map(re.escape, HIDDEN_IN_HOME))
    + r")(?:/[^']*)?)'")


def parse_summary(text: str) -> dict[str, float | str]:
    """The `key: value` lines after the last `---` line (the reference's summary block).

    Numbers come back as floats, anything else as text. An empty dict means no summary.
    """
    lines = text.replace("\r", "\n").splitlines()
    try:
        start = len(lines) - 1 - lines[::-1].index("---")
    except ValueError:
        return {}
    summary: dict[str, float | str] = {}
    for line in lines[start + 1 :]:
        match = SUMMARY_LINE.match(line.strip())
        if not match:
            continue
        key, raw = match.groups()
        try:
            summary[key] = float(raw.replace(",", ""))
        except ValueError:
            summary[key] = raw
    return summary


def find_value(text: str, key: str) -> str | None:
    """The last `key: value` anywhere in the output (e.g. data_fingerprint)."""
    pattern = re.compile(rf"^{re.escape(key)}:\s*(\S+)", re.MULTILINE)
    found = pattern.findall(printable(text.replace("\r", "\n")))
    return found[-1][:MAX_VALUE] if found else None


def _lines(text: str) -> list[str]:
    """The output's lines, with nothing that could steer a terminal (it is shown, printed
    and written to experiments.md)."""
    return [line.strip() for line in printable(text.replace("\r", "\n")).splitlines()
            if line.strip()]


def failure_reason(text: str, limit: int = 200) -> str:
    """One line that best explains a failed run: the last error-looking line of its output."""
    lines = _lines(text)
    for line in reversed(lines):
        if ERROR_LINE.search(line) and not line.startswith("step "):
            return line[:limit]
    return lines[-1][:limit] if lines else "no output"


def metric_value(summary: dict, name: str) -> float | None:
    """The metric as a finite float, or None when it is missing, not a number or NaN/inf."""
    value = summary.get(name)
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def signal_name(number: int) -> str:
    """SIGKILL for 9; `signal 40` for a number without a name (a real-time signal)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def sandbox_refusal(text: str, offline: bool = True, limit: int = 200) -> str:
    """What the sandbox refused the run, in words, from the last line of its output that
    shows it ("" when none does): a hidden path, a write to a read-only one, or (when the
    sandbox had no network) a connection."""
    lines = _lines(text)
    for line in reversed(lines):
        hidden = HIDDEN_PATH.search(line)
        if VAL_HIDDEN in line:
            return f"the validation split is the evaluator's alone: {line[:limit]}"
        if hidden and ("No such file" in line or "Permission denied" in line
                       or "Read-only" in line or "Not a directory" in line):
            return f"the sandbox hides {hidden['path']}: {line[:limit]}"
        write = WRITE_REFUSED.search(line)
        if write:
            where = f" to {write['path']}" if write["path"] else ""
            return f"the sandbox refused a write{where}: {line[:limit]}"
        if offline and NETWORK_REFUSED.search(line):
            return f"the sandbox refused a network connection: {line[:limit]}"
    return ""


def crash_cause(result, text: str, summary: dict, metric: str, hard_timeout: int
                ) -> tuple[str, str]:
    """Why a finished run (a runners RunResult and the tail of its log) has no usable
    metric, as (cause, reason in words): ("", "") when it has one (with `metric` "": when
    it ended cleanly). Never raises."""
    if result.error:
        if result.error.startswith(WORKER_LOST):
            return causes.WORKER_LOST, result.error
        return (causes.CANNOT_START if result.error.startswith("cannot start")
                else causes.CRASHED), result.error
    if getattr(result, "holder_killed", False):
        return causes.HOLDER_KILLED, ("the run killed the process that holds it (the reaper; "
                                      "the sandbox is off): what it started may run on; turn "
                                      "the sandbox on")
    if getattr(result, "disk_full", ""):
        return causes.DISK_FULL, (f"the run filled the disk ({result.disk_full}): killed, its "
                                  "files removed")
    if result.stopped:
        return causes.STOPPED, "stopped by the human"
    if result.timed_out:
        return causes.TIMED_OUT, f"timed out: killed after the {hard_timeout}s hard limit"
    refused = (sandbox_refusal(text, offline=getattr(result, "offline", False))
               if getattr(result, "sandboxed", False) else "")
    if result.returncode != 0:
        code = result.returncode
        killed = code is not None and code < 0
        how = f"killed by {signal_name(-code)}" if killed else f"exit code {code}"
        return (causes.SANDBOX if refused else causes.CRASHED,
                f"{how}: {refused or failure_reason(text)}")
    if metric == "":  # its result is measured elsewhere: a clean exit is all it owes
        return "", ""
    if not summary:
        return causes.NO_RESULT, ("finished without a summary block (no `---` followed by "
                                  "key: value lines)" + (f"; {refused}" if refused else ""))
    if metric_value(summary, metric) is None:
        return causes.NO_RESULT, f"{metric} is {summary.get(metric, 'missing')!s} in the summary"
    return "", ""


