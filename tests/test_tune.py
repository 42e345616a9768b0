"""The offline tune agent: reads constants with ast, one-line edits, learns, never repeats,
reads the human, remembers earlier sessions."""
from __future__ import annotations

import ast
import math

import pytest

from cockpit.agents import AgentContext, AgentExhausted
from cockpit.agents.steering import read_steering
from cockpit.agents.tune import TuneAgent, format_like, read_constants, step
from cockpit.domain.judge import KeepPolicy, NoiseFloor
from cockpit.domain.state import Experiment

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


TUNABLE = ["DEPTH", "MODEL_DIM", "LEARNING_RATE", "ADAM_BETA2", "WEIGHT_DECAY"]
BASE = {"DEPTH": 4, "MODEL_DIM": 256, "LEARNING_RATE": 3e-3, "ADAM_BETA2": 0.95,
        "WEIGHT_DECAY": 0.1, "SEED": 1337}


def ctx(history=(), source=SOURCE, notes=(), prior=(), direction="lower"):
    return AgentContext(program="", source=source, history=list(history), notes=list(notes),
                        prior=list(prior), direction=direction)


def experiment(n, proposal, status, delta, **fields):
    return Experiment(n=n, description=proposal.description, params=proposal.params,
                      move=proposal.move, status=status, delta_best=delta,
                      metric=None if status in ("crash", "rejected") else 1.0 + (delta or 0),
                      **fields)


def rejected(n, proposal, reason="no reason given"):
    return experiment(n, proposal, "rejected", None, reason=f"rejected by the human: {reason}")


def key(params):
    return tuple(sorted(params.items()))


def baseline():
    return Experiment(n=1, description="baseline", status="keep", metric=1.0)


def test_first_move_is_a_one_line_change_of_the_learning_rate():
    p = TuneAgent().propose(ctx())
    assert p.move["name"] == "LEARNING_RATE" and p.description == "LEARNING_RATE 3e-3 -> 6e-3"
    before, after = SOURCE.splitlines(), p.source.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [("LEARNING_RATE = 3e-3  # peak", "LEARNING_RATE = 6e-3  # peak")]
    ast.parse(p.source)
    assert "SEED" not in p.description


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
    assert len(seen) == 9  # the base value and one step each way at four step sizes


def test_a_steering_note_naming_a_constant_puts_it_first():
    p = TuneAgent().propose(ctx(notes=["try a deeper model: DEPTH"]))
    assert p.move["name"] == "DEPTH"


def test_the_first_pass_tries_the_other_way_after_a_bad_step():
    agent = TuneAgent()
    first = agent.propose(ctx())
    bad = experiment(2, first, "discard", +0.05)
    back = agent.propose(ctx([baseline(), bad]))
    assert back.move == {**back.move, "name": "LEARNING_RATE", "direction": -1}
    assert back.description == "LEARNING_RATE 3e-3 -> 1.5e-3"
    assert "worse by 0.0500" in back.hypothesis


def test_a_gain_within_the_noise_is_not_called_worse():
    agent = TuneAgent()
    first = agent.propose(ctx())
    small = experiment(2, first, "discard", -0.002, confidence=0.4)  # better, within the noise
    back = agent.propose(ctx([baseline(), small]))
    assert "within the noise" in back.hypothesis and "worse" not in back.hypothesis


def all_discarded(agent, history, source=SOURCE, notes=(), prior=(), limit=80):
    """Propose until the agent is exhausted, each proposal discarded as slightly worse."""
    proposals = []
    for n in range(len(history) + 1, limit):
        try:
            p = agent.propose(ctx(history, source=source, notes=notes, prior=prior))
        except AgentExhausted:
            return proposals
        proposals.append(p)
        history.append(experiment(n, p, "discard", +0.01))
    raise AssertionError("never exhausted")


def test_a_kept_move_is_pushed_on_at_once_then_every_constant_both_ways():
    agent = TuneAgent()
    first = agent.propose(ctx())
    kept = experiment(2, first, "keep", -0.05)  # LEARNING_RATE up helped
    history = [baseline(), kept]
    proposals = all_discarded(agent, history, source=first.source)
    moves = [(p.move["name"], p.move["direction"], p.move["factor"]) for p in proposals
             if "combine" not in p.move]  # combinations of measured moves come last
    # Momentum first: the kept move again, with its reason.
    assert moves[0] == ("LEARNING_RATE", +1, 2.0)
    assert proposals[0].params["LEARNING_RATE"] == 1.2e-2
    assert "improved val_bpb by 0.0500" in proposals[0].hypothesis
    # Then the first pass: every other (constant, direction), at the coarse step, before
    # anything finer (LEARNING_RATE down from the new best is where it came from).
    first_pass = {(n, d) for n in TUNABLE for d in (+1, -1)} - {("LEARNING_RATE", +1),
                                                               ("LEARNING_RATE", -1)}
    assert {(n, d) for n, d, _ in moves[1:1 + len(first_pass)]} == first_pass
    assert all(f == 2.0 for _, _, f in moves[:1 + len(first_pass)])
    assert "SEED" not in {m[0] for m in moves}


def test_momentum_goes_on_while_it_keeps_and_stops_at_the_first_miss():
    agent = TuneAgent()
    history, source = [baseline()], SOURCE
    for n in (2, 3):  # LEARNING_RATE up kept twice in a row
        p = agent.propose(ctx(history, source=source))
        assert (p.move["name"], p.move["direction"]) == ("LEARNING_RATE", +1)
        history.append(experiment(n, p, "keep", -0.05))
        source = p.source
    third = agent.propose(ctx(history, source=source))
    assert third.params["LEARNING_RATE"] == 2.4e-2 and "further on" in third.hypothesis
    history.append(experiment(4, third, "discard", +0.05))  # too far
    after = agent.propose(ctx(history, source=source))
    assert after.move["name"] != "LEARNING_RATE" and after.move["factor"] == 2.0


def test_momentum_stopped_early_once_is_not_taken_again_on_another_line():
    """LEARNING_RATE up kept, the step further stopped early; on a line from a near-miss
    of WEIGHT_DECAY the same step is no momentum (it came out level before: it would be)."""
    agent = TuneAgent()
    up = agent.propose(ctx([baseline()]))
    history = [baseline(), experiment(2, up, "keep", -0.05)]
    further = agent.propose(ctx(history, source=up.source))
    assert "further on" in further.hypothesis
    history.append(experiment(3, further, "discard", None, early_stop={"at": 0.25}))
    decay = up.source.replace("WEIGHT_DECAY = 0.1", "WEIGHT_DECAY = 0.05")
    history.append(Experiment(n=4, description="WEIGHT_DECAY 0.1 -> 0.05",
                              params={**up.params, "WEIGHT_DECAY": 0.05}, status="discard",
                              metric=0.95, delta_best=-0.001, confidence=0.3,
                              move={"name": "WEIGHT_DECAY", "direction": -1, "factor": 2.0,
                                    "old": 0.1, "new": 0.05}))
    on_line = agent.propose(ctx(history, source=decay))
    assert "further on" not in on_line.hypothesis
    history[2].early_stop, history[2].delta_best, history[2].confidence = None, 0.001, -0.2
    history[2].metric = 0.951
    level = agent.propose(ctx(history, source=decay))
    assert "further on" in level.hypothesis and level.params["WEIGHT_DECAY"] == 0.05


def test_depth_is_reached_early():
    names = [p.move["name"] for p in all_discarded(TuneAgent(), [baseline()])[:6]]
    assert "DEPTH" in names[:4] and names[:2] == ["LEARNING_RATE", "LEARNING_RATE"]


def test_a_rejection_is_not_a_measurement_and_is_never_proposed_again():
    agent = TuneAgent()
    first = agent.propose(ctx())
    history = [baseline(), rejected(2, first)]
    after = agent.propose(ctx(history))
    assert key(after.params) != key(first.params)
    assert "0.0000" not in after.hypothesis and "worse" not in after.hypothesis
    proposals = all_discarded(agent, history)
    assert key(first.params) not in {key(p.params) for p in proposals}


def test_after_a_rejection_no_configuration_already_run_in_flight_or_rejected():
    agent = TuneAgent()
    up = agent.propose(ctx())
    kept = experiment(2, up, "keep", -0.05)  # LEARNING_RATE 3e-3 -> 6e-3 kept
    source = up.source
    again = agent.propose(ctx([baseline(), kept], source=source))
    in_flight = Experiment(n=3, description=again.description, params=again.params,
                           move=again.move)  # still running on another worker
    other = agent.propose(ctx([baseline(), kept, in_flight], source=source))
    assert key(other.params) != key(again.params)
    history = [baseline(), kept, in_flight, rejected(4, other, "too far")]
    proposals = all_discarded(agent, history, source=source)
    seen = [key(p.params) for p in proposals]
    assert key(BASE) not in seen  # the baseline (where the kept move started)
    assert key(again.params) not in seen and key(other.params) not in seen
    assert len(seen) == len(set(seen)) and key(up.params) not in seen


@pytest.mark.parametrize("reason", ["leave DEPTH alone", "don't touch the depth",
                                    "stop changing the number of layers"])
def test_a_rejection_reason_that_names_a_constant_steers_away_from_it(reason):
    agent = TuneAgent()
    depth = agent.propose(ctx(notes=["DEPTH"]))
    assert depth.move["name"] == "DEPTH"
    proposals = all_discarded(agent, [baseline(), rejected(2, depth, reason)])
    assert proposals and all("DEPTH" not in p.move["name"] for p in proposals)


def test_a_reason_without_a_constant_speaks_of_the_rejected_move():
    agent = TuneAgent()
    first = agent.propose(ctx())  # LEARNING_RATE up
    alone = all_discarded(agent, [baseline(), rejected(2, first, "leave it alone")])
    assert all(p.move["name"] != "LEARNING_RATE" for p in alone)
    other_way = agent.propose(ctx([baseline(), rejected(2, first, "too high")]))
    assert other_way.move["name"] == "LEARNING_RATE" and other_way.move["direction"] == -1


def test_not_the_learning_rate_try_the_batch_size_instead():
    source = SOURCE.replace("ADAM_BETA2 = 0.95", "BATCH_SIZE = 16")
    agent = TuneAgent()
    first = agent.propose(ctx(source=source))
    assert first.move["name"] == "LEARNING_RATE"
    history = [baseline(), rejected(2, first, "not the learning rate, try the batch size instead")]
    proposals = all_discarded(agent, history, source=source)
    assert proposals[0].move["name"] == "BATCH_SIZE"
    assert all(p.move["name"] != "LEARNING_RATE" for p in proposals)


def test_a_note_asking_again_brings_a_rejected_idea_back():
    agent = TuneAgent()
    depth = agent.propose(ctx(notes=["DEPTH"]))
    history = [baseline(), rejected(2, depth, "not now")]
    assert key(agent.propose(ctx(history, notes=["DEPTH"])).params) != key(depth.params)
    again = agent.propose(ctx(history, notes=["try DEPTH again"]))
    assert key(again.params) == key(depth.params)


def test_an_early_stopped_run_is_a_discard_that_hurt():
    agent = TuneAgent()
    first = agent.propose(ctx())
    stopped = Experiment(n=2, description=first.description, params=first.params,
                         move=first.move, status="discard", metric=None,
                         early_stop={"progress": 50.0, "loss": 4.1, "best_loss": 3.8,
                                     "sigmas": 7.0})
    back = agent.propose(ctx([baseline(), stopped]))
    assert back.move["name"] == "LEARNING_RATE" and back.move["direction"] == -1
    assert "stopped early" in back.hypothesis and "gained" not in back.hypothesis


def test_two_near_misses_are_combined_on_top_of_the_best():
    agent = TuneAgent()
    history = [baseline()]
    gains = {("LEARNING_RATE", +1): 0.006, ("WEIGHT_DECAY", -1): 0.004}
    for n in range(2, 40):
        p = agent.propose(ctx(history))
        if len(p.move.get("combine", [])) == 2:
            break
        gain = gains.get((p.move["name"], p.move["direction"]), -0.01)
        history.append(experiment(n, p, "discard", -gain, confidence=gain / 0.005))
    else:
        raise AssertionError("no combination proposed")
    assert n == 2 + 2 * len(TUNABLE)  # right after the first pass
    assert {m["name"] for m in p.move["combine"]} == {"LEARNING_RATE", "WEIGHT_DECAY"}
    assert p.params == dict(BASE, LEARNING_RATE=6e-3, WEIGHT_DECAY=0.05)
    changed = [(a, b) for a, b in zip(SOURCE.splitlines(), p.source.splitlines()) if a != b]
    assert changed == [("LEARNING_RATE = 3e-3  # peak", "LEARNING_RATE = 6e-3  # peak"),
                       ("WEIGHT_DECAY = 0.1", "WEIGHT_DECAY = 0.05")]
    assert "near-misses" in p.hypothesis and "1.2x its std" in p.hypothesis


def test_pairs_of_the_strongest_near_misses_come_first_the_rest_after():
    """Five near-misses make ten pairs: the six among the strongest four come first, then
    the pairs with the weakest, though (strongest + weakest) adds up to more than some of
    the six."""
    agent = TuneAgent()
    history = [baseline()]
    gains = {"LEARNING_RATE": 0.009, "DEPTH": 0.008, "MODEL_DIM": 0.003,
             "WEIGHT_DECAY": 0.0028, "ADAM_BETA2": 0.0015}
    combined = []
    for n in range(2, 40):
        p = agent.propose(ctx(history))
        if p.move.get("combine"):
            combined.append({m["name"] for m in p.move["combine"]})
        gain = gains[p.move["name"]] if p.move.get("direction") == +1 else -0.01
        history.append(experiment(n, p, "discard", -gain, confidence=gain / 0.005))
        if len(combined) == 10:
            break
    assert all("ADAM_BETA2" not in pair for pair in combined[:6])
    assert all("ADAM_BETA2" in pair for pair in combined[6:])
    assert combined[6] == {"LEARNING_RATE", "ADAM_BETA2"}  # 0.0105 > 0.0058 of #6


def test_steering_reads_clauses_levers_and_directions():
    s = read_steering(["try depth and leave the learning rate alone", "a smaller batch"],
                      [], ["DEPTH", "LEARNING_RATE", "EMBEDDING_LR", "BATCH_SIZE"])
    assert s.prefer == ["DEPTH", "BATCH_SIZE"]
    assert s.avoid == {"LEARNING_RATE", "EMBEDDING_LR"}
    assert s.direction == {"BATCH_SIZE": -1}
    s = read_steering(["the learning rate is too high", "DEPTH is fine"], [],
                      ["DEPTH", "LEARNING_RATE"])
    assert s.direction == {"LEARNING_RATE": -1} and s.avoid == {"DEPTH"}


# -- memory across sessions ----------------------------------------------------------
def objective(params):
    """A synthetic val_bpb: shallower is better down to 1 layer, the learning rate wants
    a little more, the rest sits at its optimum."""
    return (1.0 + 0.02 * math.log2(params["DEPTH"]) ** 2
            + 0.01 * math.log2(params["LEARNING_RATE"] / 6e-3) ** 2
            + 0.01 * math.log2(params["MODEL_DIM"] / 256) ** 2
            + 0.2 * abs(params["ADAM_BETA2"] - 0.95)
            + 0.01 * math.log2(params["WEIGHT_DECAY"] / 0.1) ** 2)


def session(name, count, prior=()):
    """`count` experiments of the tune agent judged by the real keep policy on `objective`."""
    agent, policy = TuneAgent(), KeepPolicy("lower")
    floor = NoiseFloor.from_groups([[1.0, 1.005, 0.995]] * 5)
    best, source = objective(BASE), SOURCE
    history = [Experiment(n=1, description="baseline", status="keep", metric=best,
                          session=name)]
    for n in range(2, count + 1):
        p = agent.propose(ctx(history, source=source, prior=prior))
        value = objective(p.params)
        verdict = policy.decide(value, best, floor)
        history.append(Experiment(n=n, description=p.description, hypothesis=p.hypothesis,
                                  params=p.params, move=p.move, status=verdict.status, metric=value,
                                  delta_best=value - best, confidence=verdict.confidence,
                                  session=name))
        if verdict.status == "keep":
            best, source = value, p.source
    return history


def test_a_second_session_never_repeats_what_the_first_measured():
    first = session("s1", 21)  # the baseline and 20 proposals
    assert any(e.status == "keep" and e.move["name"] == "DEPTH" for e in first[1:])
    measured = {key(e.params) for e in first[1:]} | {key(BASE)}
    remembered = session("s2", 21, prior=first)
    repeats = [e.description for e in remembered[1:] if key(e.params) in measured]
    assert repeats == []
    forgetful = session("s2", 21)
    would_repeat = sum(key(e.params) in measured for e in forgetful[1:])
    assert would_repeat >= 15, would_repeat
    # What helped before comes first (its coarse steps are measured: a finer one).
    assert remembered[1].move["name"] == "DEPTH" and remembered[1].move["direction"] == -1
    assert "in session s1" in remembered[1].hypothesis


def test_gains_follow_the_metric_direction():
    agent = TuneAgent()
    first = agent.propose(ctx(direction="higher"))
    higher = experiment(2, first, "discard", +0.004, confidence=0.8)  # accuracy went up a bit
    back = agent.propose(ctx([baseline(), higher], direction="higher"))
    assert "gained only 0.0040, within the noise" in back.hypothesis
    lower = agent.propose(ctx([baseline(), higher], direction="lower"))
    assert "worse by 0.0040" in lower.hypothesis
