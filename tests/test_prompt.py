"""The prompt: what it carries, and how it stays under its token budget as history grows."""
from __future__ import annotations

import re

from support import FAKE_TRAIN

from cockpit.agents import AgentContext
from cockpit.agents.prompt import RepairTask, build_messages, prompt_tokens
from cockpit.domain.state import Experiment


def history(count: int) -> list[Experiment]:
    """A session of `count` experiments: a baseline, then keeps, discards and crashes."""
    out = [Experiment(n=1, description="baseline", hypothesis="the starting point", status="keep",
                      metric=2.0, commit="a" * 40)]
    best = 2.0
    for n in range(2, count + 1):
        lr = f"{0.001 * n:.4f}"
        diff = "\n".join(["--- a/train.py", "+++ b/train.py", "@@ -1,3 +1,3 @@",
                          "-LEARNING_RATE = 0.01", f"+LEARNING_RATE = {lr}"] +
                         [f" context line {i}" for i in range(30)])
        e = Experiment(n=n, description=f"idea {n}: LEARNING_RATE -> {lr} with a longer note "
                       "on why this particular value", hypothesis=f"hypothesis {n} " * 8, diff=diff,
                       commit=f"{n:040x}")
        if n % 7 == 0:
            e.status, e.reason = "crash", f"exit code 1: RuntimeError: CUDA out of memory #{n}"
        elif n % 5 == 0:
            best -= 0.001
            e.status, e.metric, e.delta_best = "keep", best, -0.001
        else:
            e.status, e.metric, e.delta_best = "discard", best + 0.01, 0.01
        out.append(e)
    return out


def context(count: int, **kw) -> AgentContext:
    return AgentContext(program="# program\nMake val_bpb low. Try schedules first.\n",
                        source=FAKE_TRAIN, history=history(count), time_budget=300,
                        notes=["try a cosine schedule"], hardware="1 x NVIDIA H100 (79.6 GiB each)",
                        **kw)


def test_prompt_carries_program_facts_notes_history_and_the_file():
    system, user = build_messages(context(10), 24000)
    assert "SEARCH" in system["content"] and "300 s" in system["content"]
    text = user["content"]
    for part in ("Make val_bpb low. Try schedules first.", "try a cosine schedule",
                 "NVIDIA H100", "300 s", "val_bpb, lower is better", "LEARNING_RATE = 0.01",
                 "baseline #1 val_bpb 2.000000", "# Recent experiments in detail"):
        assert part in text, part
    assert "exit code 1: RuntimeError: CUDA out of memory #7" in text  # crash reasons
    assert "+LEARNING_RATE = 0.0100" in text  # the full diff of a recent experiment
    assert re.search(r"^\s+10 keep\s+1\.99\d+\s+-0\.001000  idea 10", text, re.M)


def test_history_of_500_stays_under_budget_and_lists_every_idea():
    for budget in (8000, 12000):
        messages = build_messages(context(500), budget)
        text = messages[1]["content"]
        assert prompt_tokens(messages) <= budget
        for n in range(1, 501):  # condensed, never dropped
            assert re.search(rf"^\s*{n} (keep|discard|crash|k|d|c)\s", text, re.M), n
        assert "baseline #1" in text and "best #500" in text


def test_small_history_keeps_detail_that_large_history_condenses():
    rich = build_messages(context(10), 24000)[1]["content"]
    lean = build_messages(context(500), 8000)[1]["content"]
    assert rich.count("```diff") >= 5
    assert lean.count("```diff") <= 1
    # Old crash reasons are shortened or dropped from the rows, recent ones kept.
    assert "CUDA out of memory #497" in lean


def test_repair_prompt_shows_the_crash_and_its_log():
    ctx = context(10)
    crashed = ctx.history[6]
    _system, user = build_messages(ctx, 24000, RepairTask(crashed, "Traceback ...\nOOM here"))
    text = user["content"]
    assert "Task: repair a crash" in text and "Experiment #7" in text
    assert "OOM here" in text and "the crashed version of #7" in text and "ABANDON:" in text


def test_prompt_build_is_fast_at_500_experiments():
    import time

    ctx = context(500)
    start = time.perf_counter()
    for _ in range(5):
        build_messages(ctx, 8000)
    assert (time.perf_counter() - start) / 5 < 0.05


def prior(count: int) -> list[Experiment]:
    """`count` finished experiments of two earlier sessions: keeps, discards, crashes,
    runs stopped early."""
    out = []
    for n in range(1, count + 1):
        e = Experiment(n=n, description=f"earlier idea {n}: DEPTH {n} -> {n + 1} and a note "
                       "on why", hypothesis="because", session="s1" if n <= count // 2 else "s2",
                       commit=f"{n:040x}", diff="-A\n+B")
        if n % 9 == 0:
            e.status, e.reason = "crash", f"exit code 1: RuntimeError: shape mismatch #{n}"
        elif n % 11 == 0:
            e.status = "discard"
            e.early_stop = {"progress": 55.0, "loss": 4.2, "best_loss": 3.9, "sigmas": 7.5}
        elif n % 4 == 0:
            e.status, e.metric, e.delta_best, e.confidence = "keep", 1.9, -0.003 * n, 0.3 * n
        else:
            e.status, e.metric, e.delta_best, e.confidence = "discard", 2.1, 0.001 * n, -0.1 * n
        out.append(e)
    return out


def test_near_misses_rejections_and_early_stops_are_told_apart():
    ctx = context(12)
    near = Experiment(n=13, description="LEARNING_RATE 0.01 -> 0.02", status="discard",
                      metric=1.995, delta_best=-0.004, confidence=1.3)
    rejected = Experiment(n=14, description="DEPTH 4 -> 8", status="rejected",
                          reason="rejected by the human: leave DEPTH alone")
    stopped = Experiment(n=15, description="BATCH_SIZE 4 -> 1", status="discard",
                         early_stop={"progress": 52.0, "loss": 4.31, "best_loss": 3.72,
                                     "sigmas": 9.4})
    ctx.history += [near, rejected, stopped]
    text = build_messages(ctx, 24000)[1]["content"]
    assert "# Near-misses" in text
    assert "- #13 LEARNING_RATE 0.01 -> 0.02: gain 0.004000 = 1.3x the noise" in text
    assert "# Ideas the human rejected" in text
    assert '- #14 DEPTH 4 -> 8: "leave DEPTH alone"' in text
    assert not re.search(r"^\s+14 rejected", text, re.M)  # not a row of results
    assert "1 ideas rejected by the human, listed apart" in text
    assert re.search(r"^\s+15 stopped\s+-\s+-\s+BATCH_SIZE 4 -> 1 \(stopped at 52%: loss 4.31 "
                     r"vs 3.72 for the best at the same point, 9.4x the noise\)", text, re.M)
    assert "Result: discarded, stopped at 52%" in text
    # In the condensed form too.
    big = context(300)
    big.history += [near, rejected, stopped]
    for e, n in zip((near, rejected, stopped), (301, 302, 303)):
        e.n = n
    lean = build_messages(big, 8000)
    assert prompt_tokens(lean) <= 8000
    text = lean[1]["content"]
    assert '- #302 DEPTH 4 -> 8: "leave DEPTH alone"' in text and "#301 LEARNING_RATE" in text


def test_lessons_from_earlier_sessions():
    ctx = context(10, prior=prior(40))
    text = build_messages(ctx, 24000)[1]["content"]
    assert "# Lessons from earlier sessions (40 experiments in 2 sessions" in text
    lessons = text[text.index("# Lessons"):text.index("# History")]
    helped = lessons[lessons.index("Helped (kept): 9"):lessons.index("Hurt:")]
    # the largest gain first, with its measured effect and where it was measured
    assert helped.splitlines()[1] == ("- earlier idea 40: DEPTH 40 -> 41 and a note on why "
                                      "(s2 #40): val_bpb -0.1200, +12.0x the noise")
    assert "Hurt: 24" in lessons and "(s2 #39): val_bpb +0.0390, -3.9x the noise" in lessons
    assert "Crashed: 4" in lessons and "RuntimeError: shape mismatch #9" in lessons
    assert "Stopped early, behind the best: 3" in lessons
    assert "stopped at 55%: loss 4.20 vs 3.90" in lessons


def test_budget_is_honoured_with_prior_of_10_100_500():
    for count in (10, 100, 500):
        for budget in (8000, 12000, 24000):
            ctx = context(100, prior=prior(count))
            messages = build_messages(ctx, budget)
            assert prompt_tokens(messages) <= budget, (count, budget)
            text = messages[1]["content"]
            for n in range(1, 101):  # the current session's history is all there
                assert re.search(rf"^\s*{n} (keep|discard|crash|k|d|c)\s", text, re.M), n


def test_lessons_give_way_before_the_sessions_history():
    ctx = context(30, prior=prior(500))
    without = build_messages(context(30), 24000)
    rich_history = prompt_tokens(without)
    full = build_messages(ctx, 24000)[1]["content"]
    assert "Helped (kept): " in full and "- ... " in full
    # Room for the richest history and only a condensed block of lessons:
    tight = build_messages(ctx, rich_history + 800)
    text = tight[1]["content"]
    assert text.count("```diff") == without[1]["content"].count("```diff")
    lessons = text[text.index("# Lessons"):text.index("# History")]
    assert len(lessons) < len(full[full.index("# Lessons"):full.index("# History")])
    # No room at all: the lessons go, the history stays as rich as before.
    text = build_messages(ctx, rich_history)[1]["content"]
    assert "# Lessons" not in text
    assert text.count("```diff") == without[1]["content"].count("```diff")


def test_a_line_of_the_tree_is_told_its_own_best():
    """On line 2, whose best (#5) is not the session's last keep (#10), the prompt names
    #5 as the best the file is and the result is judged against."""
    ctx = context(12)
    line_best = ctx.history[4]
    assert line_best.n == 5 and line_best.status == "keep"
    ctx.best, ctx.line = line_best, 2
    text = build_messages(ctx, 24000)[1]["content"]
    assert "you work on line 2" in text
    assert "The best run (#5)" in text and f"best on line 2 #5 {line_best.metric:.6f}" in text
    assert "The best run (#10)" not in text
    assert "The best run (#10)" in build_messages(context(12), 24000)[1]["content"]
