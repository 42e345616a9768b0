"""The llm agent's own overhead per proposal, and the prompt's size as history grows.

Against a loopback OpenAI-compatible server that answers at once, for a session history of
10, 100 and 500 experiments, with the repository's train.py as the editable file:

- overhead: prompt build + answer parse + apply + validate (our code, no network), median;
- round trip: a whole propose() through the real litellm client to the loopback server
  (litellm's client cost on top of the overhead; a real model's latency is not included);
- prompt: characters and estimated tokens at the default prompt_tokens budget.

    python bench/bench_agent.py [--repeats 50]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from llm_server import ScriptedLLMServer

from cockpit.agents import AgentContext
from cockpit.agents.edits import apply_answer, describe, parse_answer
from cockpit.agents.llm import LLMAgent
from cockpit.agents.prompt import build_messages, prompt_tokens
from cockpit.domain.state import Experiment
from cockpit.workspace.config import AgentConfig

ANSWER = """HYPOTHESIS: a lower peak learning rate trains more stably in a short budget.
DESCRIPTION: LEARNING_RATE 1e-2 -> 6e-3

train.py
<<<<<<< SEARCH
LEARNING_RATE = 1e-2  # peak AdamW learning rate
=======
LEARNING_RATE = 6e-3  # peak AdamW learning rate
>>>>>>> REPLACE
"""


def history(count: int) -> list[Experiment]:
    out = [Experiment(n=1, description="baseline", hypothesis="the starting point", status="keep",
                      metric=1.80, commit="0" * 40, memory_gb=2.1,
                      summary={"num_params_M": 1.2, "num_steps": 900})]
    best = 1.80
    names = ("LEARNING_RATE", "BATCH_SIZE", "MODEL_DIM", "DEPTH", "WEIGHT_DECAY", "WARMUP_RATIO")
    for n in range(2, count + 1):
        name = names[n % len(names)]
        diff = (f"--- a/train.py\n+++ b/train.py\n@@ -36,3 +36,3 @@\n-{name} = 1\n+{name} = {n}\n"
                + "".join(f" context {i}\n" for i in range(6)))
        e = Experiment(n=n, description=f"{name} -> {n} (try {n}) and a short why", diff=diff,
                       hypothesis=f"{name} at {n} should help the short budget " * 2,
                       commit=f"{n:040x}", memory_gb=2.0)
        if n % 9 == 0:
            e.status, e.reason = "crash", "exit code 1: RuntimeError: CUDA out of memory"
        elif n % 4 == 0:
            best -= 0.002
            e.status, e.metric, e.delta_best = "keep", best, -0.002
        else:
            e.status, e.metric, e.delta_best = "discard", best + 0.004, 0.004
        out.append(e)
    return out


def context(count: int, source: str) -> AgentContext:
    return AgentContext(program=(ROOT / "program.md").read_text(), source=source,
                        history=history(count), time_budget=300,
                        notes=["focus on the learning rate schedule"],
                        hardware="1 x NVIDIA H100 80GB HBM3 (79.6 GiB each), 16 CPU cores")


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    source = (ROOT / "train.py").read_text()
    settings = AgentConfig(kind="llm", model="openai/gpt-4o-mini", retries=0)
    print(f"train.py: {len(source)} chars; prompt budget {settings.prompt_tokens} tokens\n")
    print(f"{'history':>8} {'prompt chars':>13} {'~tokens':>8} {'overhead ms':>12} "
          f"{'round trip ms':>14} {'litellm share ms':>17}")
    with ScriptedLLMServer() as server:
        settings.api_base = server.api_base
        agent = LLMAgent(settings)
        server.add(ANSWER)  # warm litellm up (its first call builds a client)
        agent.propose(context(10, source))
        for count in (10, 100, 500):
            ctx = context(count, source)

            def overhead(ctx=ctx):
                build_messages(ctx, settings.prompt_tokens)
                parsed = parse_answer(ANSWER, "train.py")
                apply_answer(parsed, ctx.source, "train.py")
                describe(parsed)

            def round_trip(ctx=ctx):
                server.add(ANSWER)
                agent.propose(ctx)

            messages = build_messages(ctx, settings.prompt_tokens)
            text = sum(len(m["content"]) for m in messages)
            ours = median_ms(overhead, args.repeats)
            whole = median_ms(round_trip, max(5, args.repeats // 5))
            print(f"{count:>8} {text:>13,} {prompt_tokens(messages):>8,} {ours:>12.2f} "
                  f"{whole:>14.2f} {whole - ours:>17.2f}")
    print("\noverhead = prompt build + parse + apply + validate (target: under 50 ms median)")
    tight = 8000
    print(f"\nat a tighter prompt_tokens = {tight:,}: older history condensed, never dropped")
    for count in (10, 100, 500):
        messages = build_messages(context(count, source), tight)
        listed = sum(f"{n} " in messages[1]["content"] for n in range(1, count + 1))
        print(f"{count:>8} experiments: ~{prompt_tokens(messages):,} tokens, "
              f"{listed} of {count} experiments listed")


if __name__ == "__main__":
    main()
