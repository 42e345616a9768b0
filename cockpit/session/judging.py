"""Judging a finished run: what it measured (or why nothing), and what follows from it.

It reads the session's state and settings and returns decisions: the result to journal
(keep, discard, crash, with the verdict's numbers), or a second look first; the noise floor
to record once a commit's noise runs are in; the keeps that today's floor no longer backs.
The loop journals them and moves the branches. See domain.judge for the policy itself.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from cockpit.domain import causes
from cockpit.domain.clock import over_budget
from cockpit.domain.diffs import edit_key, lines_delta, seed_only
from cockpit.domain.earlystop import StopDecision
from cockpit.domain.judge import (
    POOLED_MEASUREMENTS,
    Evidence,
    KeepPolicy,
    Noise,
    NoiseFloor,
    Verdict,
    pooled,
)
from cockpit.domain.measured import (
    BUSY_STREAK,
    MEASURED_BY_COCKPIT,
    REDRAWS,
    REPORTED_BY_TRAIN,
    disturbed,
)
from cockpit.domain.state import Experiment, SessionState
from cockpit.runners.local import RunResult
from cockpit.runners.outcome import (
    crash_cause,
    failure_reason,
    find_value,
    metric_value,
    parse_summary,
)
from cockpit.runners.pool import Finished, Job
from cockpit.session import measuring
from cockpit.workspace.config import Config
from cockpit.workspace.logs import read_head, read_tail


@dataclass
class Outcome:
    """What a finished run measured, or why nothing: the loop's reading of it."""

    summary: dict[str, Any]
    value: float | None
    cause: str = ""  # causes.CAUSES; "" when it measured its metric
    reason: str = ""
    text: str = ""  # its log's head and tail (its fingerprint, its last words)
    measured: str = ""  # measured.MEASURED_BY_COCKPIT or REPORTED_BY_TRAIN (with a value)


def read_run(finished: Finished, config: Config, fingerprint: str | None,
             stop_cause: str = "", trust: str = "reported") -> Outcome:
    """A finished run's outcome, from its result, its log and its evaluator's (read once,
    kept on it). A run the session measures is judged on the evaluator's value alone; what
    it printed must agree or it is a crash."""
    if finished.outcome is not None:
        # runners.pool types its slot loosely: it cannot import the session's Outcome
        return cast(Outcome, finished.outcome)
    job, result = finished.job, finished.result
    text = read_tail(job.log_path)  # the summary is at the end; a flood stays on disk
    summary = parse_summary(text)
    metric = config.metric.to_metric()
    measuring = job.evaluation is not None and (result.handed_over or trust == "measured")
    cause, reason = crash_cause(result, text, summary, "" if measuring else metric.name,
                                config.experiment.hard_timeout)
    if cause == causes.TIMED_OUT and job.allowance is not None:
        cause, reason = causes.OVER_BUDGET, over_budget(
            result.seconds, config.experiment.time_budget, job.allowance)
    value, measured = None, ""
    if not cause and measuring:
        value, cause, reason = _measured(job, result, summary, metric.name, trust)
        measured = MEASURED_BY_COCKPIT
    elif not cause:
        value, measured = metric_value(summary, metric.name), REPORTED_BY_TRAIN
    if cause == causes.STOPPED and stop_cause:  # in training or in its measurement
        cause, reason = causes.SESSION_ENDED, f"ended with the session: {stop_cause}"
    if not cause and metric.implausible(value):
        cause, reason, value = causes.IMPLAUSIBLE, metric.implausible(value), None
    printed = find_value(read_head(job.log_path), "data_fingerprint")
    if not cause and printed and fingerprint and printed != fingerprint:
        cause, value = causes.OTHER_DATA, None
        reason = (f"the run read other data (fingerprint {printed}; the session's is "
                  f"{fingerprint})")
    if value is not None:
        summary[metric.name] = value
    outcome = Outcome(summary, value, cause, reason, read_head(job.log_path) + "\n" + text[-4096:],
                      measured if value is not None else "")
    finished.outcome = cast(Any, outcome)  # runners.pool types its slot loosely (see above)
    return outcome


def _measured(job: Job, result: RunResult, summary: dict[str, Any], name: str,
              trust: str) -> tuple[float | None, str, str]:
    """(value, cause, reason) of a run the evaluator measures."""
    assert job.evaluation is not None  # only a measured run is read here
    if not result.handed_over:
        return None, causes.NO_ARTIFACT, measuring.NO_ARTIFACT
    evaluated = result.evaluation
    log = job.evaluation.log_path
    said = read_tail(log) if log.exists() else ""
    if evaluated is None:
        return None, causes.NOT_MEASURED, "its artifact was not measured (stopped first)"
    if evaluated.stopped:  # the human, or the session's end: not the idea's fault
        return None, causes.STOPPED, "stopped while cockpit measured what it handed over"
    if evaluated.error:
        return None, causes.NOT_MEASURED, f"the evaluator could not start: {evaluated.error}"
    if evaluated.timed_out:
        return None, causes.NOT_MEASURED, (f"the evaluation took over {job.evaluation.timeout:.0f}"
                                           " s: stopped")
    refusal = next((ln[len("error:"):].strip() for ln in reversed(said.splitlines())
                    if ln.startswith("error:")), "")
    if evaluated.returncode != 0 or refusal:
        return None, causes.NOT_MEASURED, f"not measured: {refusal or failure_reason(said)}"
    value = metric_value(parse_summary(said), name)
    if value is None:
        return None, causes.NOT_MEASURED, f"the evaluator printed no {name}"
    summary.update({k: v for k, v in parse_summary(said).items() if k != name})
    printed = metric_value(summary, name)
    if printed is not None and measuring.disagrees(printed, value):
        return None, causes.MISREPORTED, measuring.misreported(name, printed, value)
    return value, "", ""


def broken(reason: str, cause: str) -> Outcome:
    """The outcome of a run that broke the rules (no reading of its log changes it)."""
    return Outcome({}, None, cause, reason)


@dataclass(frozen=True)
class EditRuns:
    """Every measurement of one edit, as a near-miss of it is judged on them."""

    here: Evidence  # on the best it is judged against: its runs and earlier ones there
    elsewhere: list[tuple[str, Evidence]]  # on each other best: ("#8 #12", evidence)
    others: list[int]  # the other experiments whose runs these are


@dataclass
class Judgement:
    """A finished experiment's result to journal, or a second look it runs first."""

    result: dict[str, Any]
    second_look: str = ""  # why it runs once more before it is judged ("": judged now)

    @property
    def status(self) -> str:
        status: str = self.result["status"]
        return status


class Judge:
    def __init__(self, state: SessionState, config: Config) -> None:
        self.state = state
        self.config = config

    @property
    def policy(self) -> KeepPolicy:
        judge = self.config.judge
        return KeepPolicy(self.config.metric.direction, judge.min_delta, judge.noise_multiple)

    def decide(self, finished: Finished, outcome: Outcome, early: StopDecision | None,
               may_look: bool) -> Judgement:
        """The result of a finished experiment (or a second look first, when its gain came
        close to its bar and `may_look`)."""
        job, result = finished.job, finished.result
        if early is not None and not self.config.early_stop.shadow and result.stopped:
            return Judgement({
                "n": job.n, "commit": job.commit, "status": "discard", "metric": None,
                "worker": job.worker,
                "cause": causes.EARLY_STOP, "memory_gb": 0.0, "summary": {},
                "seconds": round(result.seconds, 1), "reason": early.why, "verdict": early.why,
                "early_stop": early.to_dict(), "sandboxed": bool(job.sandbox)})
        state, value = self.state, outcome.value
        exp = state.get(job.n)
        # judged against its line's best (line 0 is the session's own: its last keep)
        best, baseline = state.line_best(exp.line if exp else 0), state.baseline
        looked = job.n in state.looks
        second = state.second_values(job.commit)
        busy = self.disturbed(result, job.commit) if value is not None else ""
        pooled_runs: EditRuns | None = None
        if busy and looked and not second:
            busy = ""  # its re-run measured nothing: judged on this run after all
        if busy and looked:  # judged on its re-runs alone: they are its value
            runs = second
            busy += f"; it measured {value:.6f}, and is judged on its re-run"
            value = sum(runs) / len(runs)
        else:
            runs = [value, *second] if value is not None else []
        seeded = exp is not None and seed_only(exp.diff)
        # a run the busy machine slowed runs again, and is judged on that (the baseline's
        # place in the noise floor is taken by one more noise run instead)
        redraw = bool(busy) and best is not None and not looked and may_look and not seeded
        verdict: Verdict | None = None
        if outcome.cause:
            status = "crash"
        elif best is None:
            status = "keep"  # the baseline: the first measurement is the best so far
        elif seeded:
            status = "discard"  # a seed moves the result by noise: never a gain
        elif redraw:
            status = "discard"  # the record of its first run, shown while it runs again
        else:
            best_runs = len(state.values_of(best.commit))
            verdict = self.policy.decide(sum(runs) / len(runs), state.mean_of(best),
                                         state.floor(), lines_delta(exp.diff if exp else ""),
                                         best_runs=best_runs, runs=len(runs))
            looking = may_look and not looked and self.policy.second_look_due(
                verdict, self.config.judge.second_look)
            if verdict.near_miss and not looking and exp is not None \
                    and exp.built_on == best.commit:  # its edit's effect on the best it beat
                verdict, pooled_runs = self.pool_near_miss(exp, verdict, runs)
            status = verdict.status
        memory = outcome.summary.get("peak_vram_mb")
        bar = state.mean_of(best) if best is not None and value is not None else None
        delta_baseline: float | None = None
        if value is not None and baseline is not None:
            assert baseline.metric is not None  # the baseline is a run that measured
            delta_baseline = value - baseline.metric
        record = {
            "n": job.n, "commit": job.commit, "status": status,
            "metric": value,
            "worker": job.worker,
            "cause": outcome.cause, "confidence": verdict.confidence if verdict else None,
            "verdict": verdict.why if verdict else "",
            "threshold": verdict.threshold if verdict else None, "bar": bar,
            "bar_runs": len(state.values_of(best.commit)) if bar is not None and best else 0,
            "runs": len(runs),
            "memory_gb": round(memory / 1024, 1) if isinstance(memory, float) else 0.0,
            "summary": outcome.summary, "seconds": round(result.seconds, 1),
            "reason": outcome.reason,
            "delta_best": None if bar is None else sum(runs) / len(runs) - bar,
            "delta_baseline": delta_baseline,
            "data_fingerprint": find_value(outcome.text, "data_fingerprint"),
            "sandboxed": bool(job.sandbox), "ended": round(finished.ended, 3),
            "measured": outcome.measured, "disturbed": busy,
            "stalled": result.stalled, "others": result.others,
        }
        if pooled_runs is not None and verdict is not None:
            record.update(pooled_with=pooled_runs.others, pooled_gain=verdict.gain)
        if seeded and status == "discard" and verdict is None and not outcome.cause:
            record.update(cause=causes.SEED_CHANGE, verdict=(
                "a seed change: only the seed differs, and a seed moves the result by noise, "
                "never by an idea (never kept)"))
        if redraw:
            return Judgement(record, second_look=f"{busy}: measured again, and judged on that")
        if verdict is not None and may_look and not looked \
                and self.policy.second_look_due(verdict, self.config.judge.second_look):
            share = verdict.gain / verdict.threshold
            return Judgement(record, second_look=(
                f"a near-miss at {share:.0%} of the bar ({verdict.gain:.6f} of "
                f"{verdict.threshold:.6f}): one more run, then judged on the mean of both"))
        return Judgement(record)

    def pool_near_miss(self, exp: Experiment, verdict: Verdict, runs: list[float]
                       ) -> tuple[Verdict, EditRuns | None]:
        """A near-miss judged on every measurement of its edit: (the pooled keep, the runs it
        pooled) when together they clear the bar, else (the near-miss, None)."""
        found = self.same_edit(exp, runs)
        if found is None or not found.others:
            return verdict, None  # measured nowhere else: the near-miss stands
        pooled_verdict = self.policy.pool(found.here, found.elsewhere, self.state.floor())
        return (verdict, None) if pooled_verdict is None else (pooled_verdict, found)

    def same_edit(self, exp: Experiment, runs: list[float],
                  only: Collection[int] | None = None) -> EditRuns | None:
        """Every measurement of exp's edit (the same lines out and in): on its best, its
        `runs` with those of the same edit made there before; on each other best, the runs
        made there; each against that best's runs, as both read today. `only`: those
        experiments alone (a pooled keep's, read again). None when one of them stopped early
        or crashed (behind, or broken, with no value), or when the edit was measured
        POOLED_MEASUREMENTS times before (every pooled judgement is one more look)."""
        key, state = edit_key(exp.diff), self.state
        if key is None:
            return None
        others = [o for o in self.edits_like(exp, key) if only is None or o.n in only]
        if any(o.early_stop is not None or o.the_ideas_fault for o in others):
            return None
        others = [o for o in others if state.values_of(o.commit)]
        if only is None and len(others) >= POOLED_MEASUREMENTS:
            return None
        values: dict[str, list[float]] = {exp.built_on: list(runs)}
        names: dict[str, list[int]] = {exp.built_on: []}
        for other in others:
            values.setdefault(other.built_on, []).extend(state.values_of(other.commit))
            names.setdefault(other.built_on, []).append(other.n)
        evidence = {}
        for on, measured in values.items():
            bar = state.values_of(on)
            if measured and bar:
                evidence[on] = Evidence(
                    self.policy.gain(sum(measured) / len(measured), sum(bar) / len(bar)),
                    len(measured), len(bar))
        here = evidence.pop(exp.built_on, None)
        if here is None:
            return None
        return EditRuns(
            here, [(" ".join(f"#{n}" for n in names[on]), e) for on, e in evidence.items()],
            sorted(n for on, ns in names.items() if on == exp.built_on or on in evidence
                   for n in ns))

    def edits_like(self, exp: Experiment, key: object) -> list[Experiment]:
        """The other finished experiments that made exp's edit (`key`, see edit_key)."""
        return [other for other in self.state.experiments
                if other.n != exp.n and other.built_on
                and other.status in ("keep", "discard", "crash")
                and edit_key(other.diff) == key]

    def rests_on(self, exp: Experiment) -> tuple[float, float | None] | None:
        """(gain, weight) a keep rests on: its own runs (weight None: the bar from its runs),
        or for a pooled keep the runs it pooled, as they read today. None: nothing to read
        (no gain)."""
        gain = self.config.metric.to_metric().gain_of(exp.delta_best)
        if gain is None or not exp.pooled_with:
            return None if gain is None else (gain, None)
        found = self.same_edit(exp, self.state.values_of(exp.commit), only=exp.pooled_with)
        if found is None:
            return None
        floor = self.state.floor()
        return pooled([found.here, *(e for _, e in found.elsewhere)],
                      floor.std if floor is not None else 0.0)

    def disturbed(self, result: RunResult, commit: str) -> str:
        """Why a run's value is the busy machine's and is measured again ("": it counts):
        while its commit has had fewer than REDRAWS such runs, and the runs before it were
        not all busy (BUSY_STREAK of them: the machine stays busy, and runs count as they
        are rather than each running three times)."""
        why = disturbed(result.stalled, result.others, self.config.judge.disturbed)
        if self.state.disturbed_runs(commit) >= REDRAWS or self.state.busy_streak >= BUSY_STREAK:
            return ""  # the machine stays busy: what it measures is what there is
        return why

    def noise_due(self, commit: str | None, measuring: bool) -> dict[str, Any] | None:
        """The noise of a commit to record, once its noise runs are all in (`measuring`:
        some are still queued or running) and not yet recorded for this round."""
        state = self.state
        if commit is None or measuring:
            return None
        at = state.noise_rounds.get(commit, 0)
        values = state.values_of(commit)
        if (commit, at) in state.noise_recorded or len(values) < 2:
            return None
        floor = NoiseFloor.from_groups(state.measured)
        return dict(commit=commit, **Noise(values).to_dict(), at=at,
                    floor=floor.describe() if floor is not None else "")

    def flags(self) -> list[tuple[int, str]]:
        """Keeps judged under an older, smaller estimate of the noise that today's floor no
        longer backs, not flagged yet: (n, why), for `cockpit confirm`."""
        floor = self.state.floor()
        if floor is None:
            return []
        found = []
        for exp in self.state.experiments:
            if exp.status != "keep" or exp.flagged or exp.threshold is None or exp.is_baseline:
                continue
            rests = self.rests_on(exp)
            if rests is None:
                continue
            gain, weight = rests
            if not self.policy.needs_confirm(gain, exp.threshold, floor, max(1, exp.bar_runs),
                                             exp.runs, weight):
                continue
            now = (self.policy.bar_for(floor, weight) if weight is not None
                   else self.policy.threshold(floor, max(1, exp.bar_runs), exp.runs))
            found.append((exp.n, (
                f"kept with a gain of {gain:.6f} over a bar of {exp.threshold:.6f}; the noise "
                f"floor measured since ({floor.describe().removeprefix('noise floor: ')}) asks "
                f"{now:.6f}: check it with `cockpit confirm`")))
        return found


def interrupted(exp: Experiment) -> dict[str, Any]:
    """The result of a run a killed cockpit left behind (recorded at the resume)."""
    return {"n": exp.n, "commit": exp.commit, "status": "crash", "metric": None, "memory_gb": 0.0,
                "summary": {}, "seconds": 0.0, "cause": causes.INTERRUPTED,
                "reason": "interrupted: cockpit stopped during this experiment",
                "worker": exp.worker}
