"""Reading what a training run printed: the summary block and the reason it failed."""
from __future__ import annotations

import math
import re
import signal

SUMMARY_LINE = re.compile(r"^([A-Za-z_][\w.]*):\s+(\S.*?)\s*$")
ERROR_LINE = re.compile(r"(Error|Exception|FAIL|Traceback|Killed|nan)", re.IGNORECASE)


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
    found = pattern.findall(text.replace("\r", "\n"))
    return found[-1] if found else None


def failure_reason(text: str, limit: int = 200) -> str:
    """One line that best explains a failed run: the last error-looking line of its output."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
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


def crash_reason(result, text: str, summary: dict, metric: str, hard_timeout: int) -> str:
    """Why a finished run (a runners RunResult and its log text) has no usable metric;
    "" when it has one."""
    if result.error:
        return result.error
    if result.stopped:
        return "stopped by the human"
    if result.timed_out:
        return f"timed out: killed after the {hard_timeout}s hard limit"
    if result.returncode != 0:
        code = result.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"{how}: {failure_reason(text)}"
    if not summary:
        return "finished without a summary block (no `---` followed by key: value lines)"
    if metric_value(summary, metric) is None:
        return f"{metric} is {summary.get(metric, 'missing')!s} in the summary"
    return ""
