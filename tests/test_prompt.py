"""The prompt: what it carries, and how it stays under its token budget as history grows."""
from __future__ import annotations

import re

from support import FAKE_TRAIN

from cockpit.agents import AgentContext
from cockpit.agents.prompt import RepairTask, build_messages, prompt_tokens
from cockpit.journal import Experiment


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
    system, user = build_messages(ctx, 24000, RepairTask(crashed, "Traceback ...\nOOM here"))
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
