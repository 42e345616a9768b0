"""The human-facing records rendered from the journal: results.tsv and experiments.md.

cockpit writes over a file only when it wrote it: its records start with a mark of their
own (`OWN_MARK`, or the header an earlier cockpit wrote), and a file by that name that lacks
it is the human's, refused in one line rather than replaced. results.tsv is the reference's
shared file: rows are appended, never rewritten (see `reconcile_results`).
"""
from __future__ import annotations

from pathlib import Path

from cockpit.domain.causes import NOT_THE_IDEAS_FAULT
from cockpit.domain.errors import CockpitError
from cockpit.domain.lines import line_branch
from cockpit.domain.measured import floor_kind, measured_label
from cockpit.domain.state import Experiment, SessionState
from cockpit.workspace.history import short

OWN_MARK = "<!-- written by cockpit from its journal: edits here are replaced -->\n"
OWN_PNG = b"cockpit"  # the Software text of a plot cockpit drew


class RecordsError(CockpitError):
    """A record file cockpit keeps cannot be written where it belongs (one line)."""


def written_by_cockpit(path: Path, legacy_header: str = "") -> bool:
    """Whether cockpit may write `path`: nothing is there, or cockpit wrote what is (its
    mark; an earlier cockpit's header; for a plot, its Software text)."""
    if not path.exists() and not path.is_symlink():
        return True
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            start = f.read(4096)
    except OSError:
        return False
    if path.suffix == ".png":
        return b"Software\x00" + OWN_PNG in start
    text = start.decode("utf-8", errors="replace")
    return text.startswith(OWN_MARK) or (bool(legacy_header) and text.startswith(legacy_header))


def refuse_if_not_ours(path: Path, legacy_header: str = "", way_out: str = "") -> None:
    """One line naming a file of the human's that cockpit was about to write over."""
    if not written_by_cockpit(path, legacy_header):
        raise RecordsError(f"{path} is not cockpit's (it has no mark of cockpit's): cockpit "
                           f"never writes over your files; move it away{way_out}")


LEGACY_EXPERIMENTS = "# Experiments: autoresearch/"


def tsv_header(metric: str) -> str:
    return f"commit\t{metric}\tmemory_gb\tstatus\tdescription\n"


def tsv_row(exp: Experiment) -> str:
    """One row in the reference's exact format (0.000000 / 0.0 for a crash)."""
    metric = exp.metric if exp.status != "crash" and exp.metric is not None else 0.0
    memory = exp.memory_gb if exp.status != "crash" else 0.0
    assert exp.status in ("keep", "discard", "crash"), exp.status  # rejected ideas never ran
    description = line_prefix(exp) + " ".join(exp.description.split())  # one line, no tabs
    if exp.early_stop:  # no metric was measured: say why the cell reads 0
        description += f" (stopped early at {exp.early_stop['progress']:.0f}%)"
    elif exp.status == "crash" and exp.cause in NOT_THE_IDEAS_FAULT and exp.reason:
        description += f" ({' '.join(exp.reason.split())})"  # crash in the reference's words
    commit = short(exp.commit or "0" * 7)
    return f"{commit}\t{metric:.6f}\t{memory:.1f}\t{exp.status}\t{description}\n"


def line_prefix(exp: Experiment) -> str:
    """`[line 2] ` before what an experiment off the session's own line says."""
    return f"[line {exp.line}] " if exp.line else ""


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


def reconcile_results(path: Path, state: SessionState, written: set[int] | None) -> list[int]:
    """Append the rows of finished experiments that results.tsv never got (a kill between
    journaling a result and writing its row); the experiments appended. A row once written
    is the human's to edit or delete: `written` (the experiments the journal marks as
    written) are never written again. A row whose commit cell is there counts as written
    too (a kill between the row and its mark; a journal from before the marks)."""
    existing = path.read_text(encoding="utf-8", errors="replace").splitlines() \
        if path.is_file() else []
    counts: dict[str, int] = {}
    for line in existing[1:]:
        commit = line.split("\t", 1)[0]
        counts[commit] = counts.get(commit, 0) + 1
    added = []
    for exp in state.ran:
        commit = short(exp.commit or "0" * 7)
        if written is not None and exp.n in written:
            counts[commit] = counts.get(commit, 0) - 1
            continue
        if counts.get(commit, 0) > 0:
            counts[commit] -= 1
        else:
            append_result(path, state.metric, exp)
            added.append(exp.n)
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
    out = [OWN_MARK, f"# Experiments: {state.branch}\n"]
    out.append(
        f"{len(done) - rejected} experiments, {kept} kept, "
        f"{len(done) - kept - crashed - rejected} discarded, {crashed} crashed"
        + (f", {rejected} proposals rejected" if rejected else "")
        + f" ({state.direction} {metric} is better).\n"
    )
    if (base is not None and best is not None  # both measured: each has its metric
            and base.metric is not None and best.metric is not None):
        gain = best.metric - base.metric
        out.append(
            f"Baseline {_fmt(base.metric)} (#{base.n}), best {_fmt(best.metric)} "
            f"(#{best.n}, {short(best.commit)}): {_fmt(gain, signed=True)} vs baseline.\n"
        )
    if state.measuring:
        kind = floor_kind(state.seeds)
        out.append(f"Results are {state.measuring}" + (f"; the noise floor: {kind}" if kind
                                                       else "") + ".\n")
    out.append(lines_summary(state))
    out.append(f"\n| # | commit | {metric} | vs best | vs baseline | status | description |")
    out.append("\n|---|---|---|---|---|---|---|\n")
    for e in done:
        out.append(
            f"| {e.n} | {short(e.commit or '')} | {_fmt(e.metric)} "
            f"| {_fmt(e.delta_best, signed=True)} | {_fmt(e.delta_baseline, signed=True)} "
            f"| {e.status} | {_cell(line_prefix(e) + e.description)} |\n"
        )
    for e in done:
        out.append(f"\n## {e.n}. {line_prefix(e)}{e.description}\n\n")
        if e.line:
            out.append(f"- **Line:** {e.line} ({line_branch(state.branch, e.line)}), judged "
                       "against the line's best\n")
        out.append(f"- **Hypothesis:** {e.hypothesis or '-'}\n")
        if e.edited:  # the change below is the human's, not the one the agent proposed
            out.append(f"- **Edited by the human** before it ran; the agent proposed: "
                       f"{e.proposed or '-'}\n")
        how = measured_label(e.measured)
        out.append(f"- **Result:** {metric} {_fmt(e.metric)}" + (f" ({how})" if how else "")
                   + f", memory {e.memory_gb:.1f} GB, {e.seconds:.0f} s\n")
        out.append(f"- **Delta:** {_fmt(e.delta_best, signed=True)} vs best, "
                   f"{_fmt(e.delta_baseline, signed=True)} vs baseline\n")
        why = e.reason or e.verdict  # a crash's cause, or the keep policy's numbers
        out.append(f"- **Decision:** {e.status}" + (f": {why}" if why else "") + "\n")
        if e.flagged:
            out.append(f"- **To confirm:** {e.flagged}\n")
        if e.diff:
            out.append(f"\n```diff\n{e.diff.rstrip()}\n```\n")
    return "".join(out)


def lines_summary(state: SessionState) -> str:
    """The search tree's lines, one a row ("" while the session has one line)."""
    if len(state.lines) < 2:
        return ""
    out = ["\n| line | branch | from | best | " + state.metric + " | state |\n",
           "|---|---|---|---|---|---|\n"]
    for k, line in state.lines.items():
        best = line.best
        origin = f"#{line.origin.n}" if line.origin else "the start"
        why = f" ({_cell(line.why)})" if line.why and line.why != "human" else ""
        out.append(f"| {k} | {line_branch(state.branch, k)} | {origin}{why} "
                   f"| {f'#{best.n}' if best else '-'} "
                   f"| {_fmt(state.mean_of(best)) if best and best.metric is not None else '-'} "
                   f"| {'open' if line.open else 'left'} |\n")
    return "".join(out)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def write_experiments_md(path: Path, state: SessionState) -> bool:
    """Render experiments.md whole, by rename; False (nothing written) when a file of the
    human's has taken its place."""
    if not written_by_cockpit(path, LEGACY_EXPERIMENTS):
        return False
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_experiments_md(state), encoding="utf-8")
    tmp.replace(path)
    return True
