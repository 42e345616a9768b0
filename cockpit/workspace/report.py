"""The morning report, rendered from the journal: progress.png and report.md."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cockpit.domain.judge import Noise
from cockpit.domain.measured import floor_kind
from cockpit.domain.state import Experiment, SessionState
from cockpit.workspace.history import short
from cockpit.workspace.paths import PLOT_NAME, REPORT_NAME
from cockpit.workspace.records import (
    OWN_MARK,
    OWN_PNG,
    line_prefix,
    lines_summary,
    refuse_if_not_ours,
)

LEGACY_REPORT = "# Report: autoresearch/"


@dataclass
class SessionFacts:
    """The numbers a report tells, computed once from the journal."""

    state: SessionState
    noise: Noise | None
    cost_usd: float
    started: float
    ended: float

    @classmethod
    def from_state(cls, state: SessionState) -> SessionFacts:
        noise = Noise(state.noise["values"]) if state.noise else None
        return cls(state=state, noise=noise, cost_usd=state.cost_usd,
                   started=state.first_time, ended=state.last_time)

    @classmethod
    def from_events(cls, events: list[dict]) -> SessionFacts:
        return cls.from_state(SessionState.from_events(events))

    @property
    def kept_changes(self):
        """Kept experiments after the baseline, biggest measured gain first."""
        base = self.state.baseline
        kept = [e for e in self.state.experiments if e.status == "keep" and e is not base]
        return sorted(kept, key=lambda e: -abs(e.delta_best or 0.0))


def _measured(e: Experiment) -> float:
    """The metric of an experiment known to have one (a scored one, the baseline)."""
    assert e.metric is not None
    return e.metric


def render_plot(facts: SessionFacts, path: Path) -> None:
    """progress.png in the reference's style: grey discarded, green kept, a running-best step."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a GPU box over SSH
    import matplotlib.pyplot as plt

    state = facts.state
    lower = state.judged_by.lower_is_better
    scored = [e for e in state.ran if e.metric is not None]
    kept = [e for e in scored if e.status == "keep"]
    discarded = [e for e in scored if e.status != "keep"]
    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    ax.scatter([e.n for e in discarded], [_measured(e) for e in discarded], c="#bbbbbb", s=14,
               alpha=0.6, zorder=2, label="Discarded")
    ax.scatter([e.n for e in kept], [_measured(e) for e in kept], c="#2ecc71", s=48, zorder=4,
               edgecolors="black", linewidths=0.5, label="Kept")
    if kept:
        xs, best, ys = [], None, []
        for e in kept:
            best = _measured(e) if best is None else state.judged_by.best([best, _measured(e)])
            xs.append(e.n)
            ys.append(best)
        last_n = max(e.n for e in state.ran)
        ax.step(xs + [last_n], ys + [ys[-1]], where="post", color="#27ae60", linewidth=2,
                alpha=0.8, zorder=3, label="Running best")
        for e in kept[1:]:
            ax.annotate(e.description[:40], (e.n, e.metric), textcoords="offset points",
                        xytext=(4, 6), fontsize=7, rotation=20, color="#1e8449")
    if facts.noise is not None and state.baseline is not None:
        base = _measured(state.baseline)
        ax.axhspan(base - facts.noise.spread, base + facts.noise.spread, color="#3498db",
                   alpha=0.08, label="Baseline ± noise")
    if scored:  # zoom on the interesting band, like the reference: outliers do not squash it
        values = sorted(_measured(e) for e in scored)
        lo, hi = values[0], values[min(len(values) - 1, int(0.95 * len(values)))]
        if state.baseline is not None:
            hi = max(hi, _measured(state.baseline)) if lower else hi
        pad = (hi - lo) * 0.08 or 0.01
        ax.set_ylim(lo - pad, hi + pad)
    n_runs = len(state.ran)
    ax.set_title(f"{n_runs} Experiments, {len(kept) - (1 if kept else 0)} Kept Improvements")
    ax.set_xlabel("Experiment #")
    ax.set_ylabel(f"{state.metric} ({'lower' if lower else 'higher'} is better)")
    ax.grid(True, alpha=0.2)
    ax.legend(loc="upper right" if lower else "lower right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": OWN_PNG.decode()})  # how cockpit knows its own
    plt.close(fig)


def render_markdown(facts: SessionFacts) -> str:
    state = facts.state
    base, best = state.baseline, state.best
    ran = state.ran
    crashes = [e for e in ran if e.status == "crash"]
    kept = facts.kept_changes
    metric = state.metric
    out = [f"# Report: {state.branch}\n\n"]
    out.append(f"{len(ran)} experiments: {len(kept)} kept improvements, "
               f"{sum(e.status == 'discard' for e in ran)} discarded, {len(crashes)} crashed"
               + (f", {len(state.finished) - len(ran)} proposals rejected"
                  if len(state.finished) > len(ran) else "") + ".\n\n")
    if (base is not None and best is not None  # both measured: each has its metric
            and base.metric is not None and best.metric is not None):
        gain = best.metric - base.metric
        pct = 100 * gain / base.metric if base.metric else 0.0
        out.append(f"- **Baseline:** {metric} {base.metric:.6f} (#{base.n}, "
                   f"{short(base.commit)})\n")
        out.append(f"- **Best:** {metric} {best.metric:.6f} (#{best.n}, {short(best.commit)}: "
                   f"{line_prefix(best)}{best.description})\n")
        out.append(f"- **Total gain:** {gain:+.6f} ({pct:+.2f}%)\n")
    if state.measuring:
        kind = floor_kind(state.seeds)
        out.append(f"- **Measured:** {state.measuring}" + (f"; noise floor from {kind}"
                                                          if kind else "") + "\n")
    if facts.noise is not None:
        n = facts.noise
        out.append(f"- **Noise floor:** std {n.std:.6f}, MAD {n.mad:.6f} over "
                   f"{len(n.values)} runs of the same commit\n")
    else:
        out.append("- **Noise floor:** not measured (gains are not checked against noise)\n")
    left_out = (sum(1 for m in state.measures if m.disturbed)
                + sum(1 for e in state.experiments if e.disturbed))
    if left_out:
        out.append(f"- **Left out:** {left_out} run{'s' if left_out > 1 else ''} the busy "
                   "machine slowed (other work waited for its CPUs), each run again\n")
    train_s = sum(e.seconds for e in ran)
    out.append(f"- **Time:** {train_s / 3600:.2f} h in runs, "
               f"{(facts.ended - facts.started) / 3600:.2f} h of session "
               f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(facts.started))} to "
               f"{time.strftime('%H:%M', time.localtime(facts.ended))})\n")
    out.append(f"- **Cost:** ${facts.cost_usd:.4f} of model calls\n")
    if len(state.lines) > 1:
        out.append("\n## Lines\n" + lines_summary(state))
    out.append("\n## Kept changes, by gain\n\n| rank | # | commit | change | gain | confidence |\n"
               "|---|---|---|---|---|---|\n")
    for rank, e in enumerate(kept, 1):
        conf = f"{e.confidence:.1f}x noise" if e.confidence is not None else "-"
        out.append(f"| {rank} | {e.n} | {short(e.commit)} | "
                   f"{_cell(line_prefix(e) + e.description)} | "
                   f"{state.judged_by.gain_of(e.delta_best or 0.0):+.6f}"
                   f" | {conf} |\n")
    if not kept:
        out.append("| - | - | - | no change beat the baseline | - | - |\n")
    if crashes:
        out.append("\n## Crashes\n\n| # | change | reason |\n|---|---|---|\n")
        for e in crashes:
            out.append(f"| {e.n} | {_cell(e.description)} | {_cell(e.reason)} |\n")
    out.append(f"\n![progress]({PLOT_NAME})\n")
    return "".join(out)


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def write_report(events: list[dict], directory: Path) -> tuple[Path, Path]:
    """progress.png and report.md in `directory`; a file of the human's by either name is
    refused in one line, never replaced."""
    facts = SessionFacts.from_events(events)
    plot, md = directory / PLOT_NAME, directory / REPORT_NAME
    way_out = ", or write the report elsewhere (`cockpit report --out DIR`)"
    refuse_if_not_ours(md, LEGACY_REPORT, way_out)
    refuse_if_not_ours(plot, way_out=way_out)
    render_plot(facts, plot)
    md.write_text(OWN_MARK + render_markdown(facts), encoding="utf-8")
    return plot, md
