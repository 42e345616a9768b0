"""The human-facing records rendered from the journal: results.tsv and experiments.md."""
from __future__ import annotations

from pathlib import Path

from cockpit.errors import CockpitError
from cockpit.history import short
from cockpit.journal import Experiment, SessionState

RESULTS_NAME = "results.tsv"


class RecordsError(CockpitError):
    """A record file cockpit keeps cannot be written where it belongs (one line)."""
REPORT_NAME = "experiments.md"


def tsv_header(metric: str) -> str:
    return f"commit\t{metric}\tmemory_gb\tstatus\tdescription\n"


def tsv_row(exp: Experiment) -> str:
    """One row in the reference's exact format (0.000000 / 0.0 for a crash)."""
    metric = exp.metric if exp.status != "crash" and exp.metric is not None else 0.0
    memory = exp.memory_gb if exp.status != "crash" else 0.0
    assert exp.status in ("keep", "discard", "crash"), exp.status  # rejected ideas never ran
    description = " ".join(exp.description.split())  # no tabs or newlines inside a cell
    if exp.early_stop:  # no metric was measured: say why the cell reads 0
        description += f" (stopped early at {exp.early_stop['progress']:.0f}%)"
    return f"{short(exp.commit or '0' * 7)}\t{metric:.6f}\t{memory:.1f}\t{exp.status}\t{description}\n"


def append_result(path: Path, metric: str, exp: Experiment) -> None:
    """One row at the end of results.tsv (its header first, in a new file); a last line a
    human or a crash left without its newline gets one, so rows are never glued."""
    if path.is_dir():
        raise RecordsError(f"{path} is a directory: cockpit writes results.tsv there; move it "
                           "away")
    if not path.exists() or path.stat().st_size == 0:
        path.write_text(tsv_header(metric))
    with open(path, "a+b") as f:
        f.seek(0, 2)
        if f.tell() > 0:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(tsv_row(exp).encode("utf-8"))


def reconcile_results(path: Path, state: SessionState) -> int:
    """Append the journal's finished experiments that results.tsv lacks (a kill between
    journaling a result and writing its row). Rows already there are never touched."""
    existing = path.read_text(encoding="utf-8", errors="replace").splitlines() \
        if path.is_file() else []
    counts: dict[str, int] = {}
    for line in existing:
        counts[line] = counts.get(line, 0) + 1
    added = 0
    for exp in state.ran:
        row = tsv_row(exp).rstrip("\n")
        if counts.get(row, 0) > 0:
            counts[row] -= 1
        else:
            append_result(path, state.metric, exp)
            added += 1
    return added


def _fmt(value: float | None, digits: int = 6, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def render_experiments_md(state: SessionState) -> str:
    """experiments.md: a summary table, then one section per experiment."""
    metric = state.metric
    base, best = state.baseline, state.best
    done = state.finished
    rejected = sum(e.status == "rejected" for e in done)
    kept = sum(e.status == "keep" for e in done)
    crashed = sum(e.status == "crash" for e in done)
    out = [f"# Experiments: {state.branch}\n"]
    out.append(
        f"{len(done) - rejected} experiments, {kept} kept, "
        f"{len(done) - kept - crashed - rejected} discarded, {crashed} crashed"
        + (f", {rejected} proposals rejected" if rejected else "")
        + f" ({state.direction} {metric} is better).\n"
    )
    if base is not None and best is not None:
        gain = best.metric - base.metric
        out.append(
            f"Baseline {_fmt(base.metric)} (#{base.n}), best {_fmt(best.metric)} "
            f"(#{best.n}, {short(best.commit)}): {_fmt(gain, signed=True)} vs baseline.\n"
        )
    out.append(f"\n| # | commit | {metric} | vs best | vs baseline | status | description |")
    out.append("\n|---|---|---|---|---|---|---|\n")
    for e in done:
        out.append(
            f"| {e.n} | {short(e.commit or '')} | {_fmt(e.metric)} | {_fmt(e.delta_best, signed=True)} "
            f"| {_fmt(e.delta_baseline, signed=True)} | {e.status} | {_cell(e.description)} |\n"
        )
    for e in done:
        out.append(f"\n## {e.n}. {e.description}\n\n")
        out.append(f"- **Hypothesis:** {e.hypothesis or '-'}\n")
        out.append(f"- **Result:** {metric} {_fmt(e.metric)}, memory {e.memory_gb:.1f} GB, "
                   f"{e.seconds:.0f} s\n")
        out.append(f"- **Delta:** {_fmt(e.delta_best, signed=True)} vs best, "
                   f"{_fmt(e.delta_baseline, signed=True)} vs baseline\n")
        why = e.reason or e.verdict  # a crash's cause, or the keep policy's numbers
        out.append(f"- **Decision:** {e.status}" + (f": {why}" if why else "") + "\n")
        if e.flagged:
            out.append(f"- **To confirm:** {e.flagged}\n")
        if e.diff:
            out.append(f"\n```diff\n{e.diff.rstrip()}\n```\n")
    return "".join(out)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def write_experiments_md(path: Path, state: SessionState) -> None:
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_experiments_md(state), encoding="utf-8")
    tmp.replace(path)
