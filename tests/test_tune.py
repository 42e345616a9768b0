"""The offline tune agent: reads constants with ast, one-line edits, learns, never repeats."""
from __future__ import annotations

import ast

import pytest

from cockpit.agents import AgentContext, AgentExhausted
from cockpit.agents.tune import TuneAgent, format_like, read_constants, step
from cockpit.journal import Experiment

SOURCE = '''\
"""A model."""
import torch
DEPTH = 4  # layers
MODEL_DIM = 256
LEARNING_RATE = 3e-3  # peak
ADAM_BETA2 = 0.95
WEIGHT_DECAY = 0.1
SEED = 1337
TOTAL = 2**19  # an expression: not a literal, left alone
NAME = "gpt"
lower_case = 5
def f():
    INNER = 3
'''


def test_reads_only_top_level_numeric_literals():
    constants = read_constants(SOURCE)
    assert list(constants) == ["DEPTH", "MODEL_DIM", "LEARNING_RATE", "ADAM_BETA2",
                               "WEIGHT_DECAY", "SEED"]
    assert constants["LEARNING_RATE"].text == "3e-3"


def test_steps_and_formatting():
    assert step(256, +1, 2.0) == 512 and step(256, -1, 2.0) == 128
    assert step(256, +1, 2 ** 0.5) == 384  # stays on its multiple of 64
    assert step(1, -1, 2.0) is None
    assert step(0.95, +1, 2.0) == 0.975 and step(0.95, -1, 2.0) == 0.9
    assert format_like("3e-3", 6e-3) == "6e-3"
    assert format_like("0.1", 0.05) == "0.05" and format_like("4", 8) == "8"


def ctx(history=(), source=SOURCE, notes=()):
    return AgentContext(program="", source=source, history=list(history), notes=list(notes))


def experiment(n, proposal, status, delta):
    return Experiment(n=n, description=proposal.description, params=proposal.params,
                      move=proposal.move, status=status, delta_best=delta)


def test_first_move_is_a_one_line_change_of_the_learning_rate():
    p = TuneAgent().propose(ctx())
    assert p.move["name"] == "LEARNING_RATE" and p.description == "LEARNING_RATE 3e-3 -> 6e-3"
    before, after = SOURCE.splitlines(), p.source.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [("LEARNING_RATE = 3e-3  # peak", "LEARNING_RATE = 6e-3  # peak")]
    ast.parse(p.source)
    assert "SEED" not in p.description


def test_momentum_after_a_kept_move_and_backoff_after_a_bad_one():
    agent = TuneAgent()
    first = agent.propose(ctx())
    good = experiment(2, first, "keep", -0.05)
    again = agent.propose(ctx([good], source=first.source))
    assert again.move["name"] == first.move["name"] and again.move["direction"] == +1
    assert "improved" in again.hypothesis

    bad = experiment(2, first, "discard", +0.05)
    back = agent.propose(ctx([bad]))
    assert back.move == {**back.move, "name": "LEARNING_RATE", "direction": -1}
    assert back.description == "LEARNING_RATE 3e-3 -> 1.5e-3" and "worse" in back.hypothesis


def test_never_repeats_a_configuration_and_ends_when_exhausted():
    agent = TuneAgent()
    src = "A_LR = 0.1\n"
    history, seen = [], {("A_LR", 0.1)}
    with pytest.raises(AgentExhausted):
        for n in range(2, 40):
            p = agent.propose(ctx(history, source=src))
            key = tuple(sorted(p.params.items()))
            assert key not in seen
            seen.add(key)
            history.append(experiment(n, p, "discard", +0.01))
    assert len(seen) == 7  # the base value and two steps each way at three step sizes


def test_a_steering_note_naming_a_constant_puts_it_first():
    p = TuneAgent().propose(ctx(notes=["try a deeper model: DEPTH"]))
    assert p.move["name"] == "DEPTH"


def test_a_gain_within_the_noise_is_not_called_worse():
    agent = TuneAgent()
    first = agent.propose(ctx())
    small = experiment(2, first, "discard", -0.002)  # better, but not beyond the noise
    back = agent.propose(ctx([small]))
    assert "within the noise" in back.hypothesis and "worse" not in back.hypothesis
