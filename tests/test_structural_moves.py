"""Moves that change the model: train.py's structural choices really train and pass
evaluate.py; the tune agent proposes them on the real train.py; and a session whose agent
has no move left pauses for a human (a `stalled` notification) instead of ending."""
from __future__ import annotations

import ast
import math
import os
import signal
import subprocess
import sys
import threading

import pytest
from conftest import REPO_ROOT
from support import make_workspace, read_journal, run_session, wait_for
from test_notify import Receiver

from cockpit.agents import AgentContext
from cockpit.agents.moves import literal_text, read_choices, read_literals, rewrite_constant
from cockpit.agents.tune import TuneAgent
from cockpit.domain.exits import EXIT_PAUSED
from cockpit.domain.state import Experiment
from cockpit.notify.notifier import attach
from cockpit.runners.outcome import parse_summary
from cockpit.session.coordinator import Coordinator
from cockpit.session.server import serve_session
from cockpit.workspace.config import Config, NotifyConfig

TRAIN = (REPO_ROOT / "train.py").read_text()
TINY = {"DEPTH": 1, "MODEL_DIM": 32, "BATCH_SIZE": 2}
# Every alternative of every choice but the defaults, in two runs (N_KV_HEADS = 8 cannot
# divide the 4 heads; LOGIT_SOFTCAP 30 is the code of 15).
STRUCTURES = {
    "gelu-gqa1-noqknorm-softcap-bigram": {"ACTIVATION": "gelu", "N_KV_HEADS": 1,
                                          "QK_NORM": False, "LOGIT_SOFTCAP": 15,
                                          "BIGRAM_ROWS": 4096},
    "swiglu-gqa2-untied-muon-bf16": {"ACTIVATION": "swiglu", "N_KV_HEADS": 2,
                                     "TIE_EMBEDDINGS": False, "MATRIX_OPTIMIZER": "muon",
                                     "CPU_BF16": True},
}


def configured(source: str, settings: dict) -> str:
    for name, value in settings.items():
        const = read_literals(source)[name]
        source = rewrite_constant(source, const, literal_text(const, value))
    return source


def test_the_defaults_are_the_model_every_baseline_measured():
    choices = {n: c.value for n, c in read_choices(TRAIN).items()}
    assert choices == {"ACTIVATION": "relu2", "N_KV_HEADS": 4, "QK_NORM": True,
                       "TIE_EMBEDDINGS": True, "LOGIT_SOFTCAP": 0, "MATRIX_OPTIMIZER": "adamw",
                       "BIGRAM_ROWS": 0, "CPU_BF16": False}
    assert read_literals(TRAIN)["N_HEADS"].value == choices["N_KV_HEADS"]  # no grouping
    assert read_choices(TRAIN)["N_KV_HEADS"].divides == "N_HEADS"


@pytest.mark.slow
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_each_structure_trains_and_its_artifact_passes_evaluate(structure, small_data_dir,
                                                                 tmp_path):
    script = tmp_path / "train.py"
    script.write_text(configured(TRAIN, {**TINY, **STRUCTURES[structure]}))
    artifact = tmp_path / "model.pt2"
    env = dict(os.environ, COCKPIT_DATA_DIR=str(small_data_dir), COCKPIT_TIME_BUDGET="2",
               COCKPIT_ARTIFACT=str(artifact), PYTHONPATH=str(REPO_ROOT))
    trained = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO_ROOT,
                             capture_output=True, timeout=180)
    out = trained.stdout.decode()
    assert trained.returncode == 0, out[-1500:] + trained.stderr.decode()[-1500:]
    summary = parse_summary(out)
    assert isinstance(summary.get("num_steps"), float) and summary["num_steps"] >= 3
    words = STRUCTURES[structure]
    header = next(line for line in out.splitlines() if line.startswith("structure: "))
    assert f"{words['ACTIVATION']} | kv_heads: {words['N_KV_HEADS']}" in header
    assert f"bigram_rows: {words.get('BIGRAM_ROWS', 0)}" in header
    precision = "bfloat16 autocast" if words.get("CPU_BF16") else "float32"
    assert f"dtype: {precision}\n" in out
    measured = subprocess.run([sys.executable, str(REPO_ROOT / "evaluate.py"), str(artifact)],
                              env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=180)
    assert measured.returncode == 0, measured.stdout[-1500:] + measured.stderr[-1500:]
    val_bpb = parse_summary(measured.stdout)["val_bpb"]
    assert isinstance(val_bpb, float) and 0 < val_bpb < 10


@pytest.mark.slow
def test_a_bigram_lookup_edited_to_read_the_next_token_is_refused(small_data_dir, tmp_path):
    """A buggy or greedy agent pairs each token with the one after it: training loss falls,
    and the evaluator's causality probe refuses the artifact instead of measuring it."""
    causal = "prev = F.pad(idx[:, :-1], (1, 0))"
    assert causal in TRAIN
    script = tmp_path / "train.py"
    script.write_text(configured(TRAIN, {**TINY, "BIGRAM_ROWS": 4096}).replace(
        causal, "prev = F.pad(idx[:, 1:], (0, 1))"))
    artifact = tmp_path / "model.pt2"
    env = dict(os.environ, COCKPIT_DATA_DIR=str(small_data_dir), COCKPIT_TIME_BUDGET="2",
               COCKPIT_ARTIFACT=str(artifact), PYTHONPATH=str(REPO_ROOT))
    trained = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO_ROOT,
                             capture_output=True, timeout=180)
    assert trained.returncode == 0, trained.stderr.decode()[-1500:]
    measured = subprocess.run([sys.executable, str(REPO_ROOT / "evaluate.py"), str(artifact)],
                              env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=180)
    assert measured.returncode == 3, measured.stdout[-1500:] + measured.stderr[-1500:]
    assert "the causality probe failed" in measured.stdout + measured.stderr
    assert "val_bpb" not in parse_summary(measured.stdout)


def propose_all(source: str, count: int, notes: tuple[str, ...] = ()) -> list:
    """`count` proposals of the tune agent on `source`, each discarded as slightly worse."""
    agent, proposals = TuneAgent(), []
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0)]
    for n in range(2, count + 2):
        p = agent.propose(AgentContext(program="", source=source, history=history,
                                       notes=list(notes)))
        proposals.append(p)
        history.append(Experiment(n=n, description=p.description, params=p.params,
                                  move=p.move, status="discard", metric=1.01, delta_best=0.01))
    return proposals


def test_the_tune_agent_proposes_every_structural_alternative_of_train_py():
    proposals = propose_all(TRAIN, 20)
    moved = {(p.move["name"], p.move["new"]) for p in proposals if p.move["direction"] == 0}
    assert moved == {("ACTIVATION", "gelu"), ("ACTIVATION", "swiglu"), ("N_KV_HEADS", 1),
                     ("N_KV_HEADS", 2), ("QK_NORM", False), ("TIE_EMBEDDINGS", False),
                     ("LOGIT_SOFTCAP", 15), ("LOGIT_SOFTCAP", 30),
                     ("MATRIX_OPTIMIZER", "muon"), ("BIGRAM_ROWS", 4096),
                     ("BIGRAM_ROWS", 16384), ("CPU_BF16", True)}
    muon = next(p for p in proposals if p.move["name"] == "MATRIX_OPTIMIZER")
    changed = [(a, b) for a, b in zip(TRAIN.splitlines(), muon.source.splitlines()) if a != b]
    assert changed == [('MATRIX_OPTIMIZER = "adamw"  # optimizer of the block matrices: adamw '
                        '| muon', 'MATRIX_OPTIMIZER = "muon"  # optimizer of the block '
                        'matrices: adamw | muon')]
    assert muon.description == 'MATRIX_OPTIMIZER "adamw" -> "muon"'
    assert muon.hypothesis.startswith('Setting MATRIX_OPTIMIZER from "adamw" to "muon": ')
    assert muon.params["MATRIX_OPTIMIZER"] == "muon" and muon.params["QK_NORM"] is True
    for p in proposals:
        ast.parse(p.source)


def test_a_head_count_move_keeps_the_key_value_heads_a_divisor():
    proposals = propose_all(TRAIN, 40)
    fewer = next(p for p in proposals if p.move["name"] == "N_HEADS"
                 and p.move["direction"] == -1)
    assert fewer.params["N_HEADS"] == 2 and fewer.params["N_KV_HEADS"] == 2  # follows it
    assert "N_KV_HEADS = 2  #" in fewer.source and "N_HEADS = 2  #" in fewer.source
    assert fewer.move["follows"] == {"N_KV_HEADS": 4}  # where it started, for the ledger
    assert all(p.params["N_HEADS"] % p.params["N_KV_HEADS"] == 0 for p in proposals)
    # The move started from the best (4 heads, 4 key/value heads), not from (4, 2): once it
    # ran, grouped-query attention on 4 heads is still to be tried.
    agent = TuneAgent()
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               Experiment(n=2, description=fewer.description, params=fewer.params,
                          move=fewer.move, status="discard", metric=1.01, delta_best=0.01)]
    kv_heads = []
    for n in (3, 4):
        grouped = agent.propose(AgentContext(program="", source=TRAIN, history=history,
                                             notes=["try N_KV_HEADS"]))
        assert grouped.move["name"] == "N_KV_HEADS" and grouped.params["N_HEADS"] == 4
        kv_heads.append(grouped.params["N_KV_HEADS"])
        history.append(Experiment(n=n, description=grouped.description, params=grouped.params,
                                  move=grouped.move, status="discard", metric=1.01))
    assert kv_heads == [1, 2]
    assert ("N_KV_HEADS", 8) not in {(p.move["name"], p.move.get("new")) for p in proposals}


def test_cheaper_steps_are_the_first_choice_tried_then_the_bigrams_then_the_optimizer():
    choices = [p.move["name"] for p in propose_all(TRAIN, 20) if p.move["direction"] == 0]
    assert choices[:4] == ["CPU_BF16", "BIGRAM_ROWS", "BIGRAM_ROWS", "MATRIX_OPTIMIZER"]


def test_a_kept_change_of_structure_tries_the_other_choices_again_on_it():
    """gelu, untied and swiglu measured on AdamW; muon kept: they are new configurations
    on muon, and come before the rest of the first pass, the closest to a gain first;
    N_KV_HEADS 1, clearly behind on AdamW, and QK_NORM off, stopped early, wait."""
    agent = TuneAgent()
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0)]
    on_adamw = {("ACTIVATION", "gelu"): (0.004, 0.8), ("TIE_EMBEDDINGS", False): (-0.002, -0.4),
                ("N_KV_HEADS", 1): (-0.02, -4.0), ("QK_NORM", False): (None, None),
                ("ACTIVATION", "swiglu"): (-0.05, None)}
    for n, ((name, new), (gain, confidence)) in enumerate(on_adamw.items(), start=2):
        old = read_literals(TRAIN)[name].value
        params = {**{k: c.value for k, c in read_literals(TRAIN).items()}, name: new}
        history.append(Experiment(n=n, description=f"{name} -> {new}", params=params,
                                  move={"name": name, "direction": 0, "old": old, "new": new},
                                  status="discard", metric=1.0 - (gain or -0.1),
                                  delta_best=None if gain is None else -gain,
                                  confidence=confidence,
                                  early_stop=None if gain is not None else {"at": 0.25}))
    muon = configured(TRAIN, {"MATRIX_OPTIMIZER": "muon"})
    params = {k: c.value for k, c in read_literals(muon).items()}
    history.append(Experiment(n=5, description="muon", params=params, status="keep",
                              metric=0.95, delta_best=-0.05,
                              move={"name": "MATRIX_OPTIMIZER", "direction": 0,
                                    "old": "adamw", "new": "muon"}))
    again = []
    for n in range(8, 11):
        p = agent.propose(AgentContext(program="", source=muon, history=history, n=n))
        again.append((p.move["name"], p.move["new"]))
        assert p.params["MATRIX_OPTIMIZER"] == "muon"
        history.append(Experiment(n=n, description=p.description, params=p.params,
                                  move=p.move, status="discard", metric=0.96, delta_best=0.01))
    # swiglu finished before the noise was known: not clearly behind
    assert again == [("ACTIVATION", "gelu"), ("TIE_EMBEDDINGS", False), ("ACTIVATION", "swiglu")]
    assert "the structure has changed since (MATRIX_OPTIMIZER 'adamw' -> 'muon')" in \
        agent.propose(AgentContext(program="", source=muon, history=history[:8],
                                   n=8)).hypothesis
    # measured on muon now: the first pass goes on, and the two behind are not first in it
    nxt = agent.propose(AgentContext(program="", source=muon, history=history, n=11))
    assert (nxt.move["name"], nxt.move.get("new")) not in {*again, ("N_KV_HEADS", 1),
                                                             ("QK_NORM", False)}


def test_a_structural_near_miss_is_measured_again_once_the_best_moves():
    """muon just short of the bar on LEARNING_RATE 5e-3; DEPTH 4 -> 2 kept: after the step
    further, muon again on it, before the first pass goes on; measured there, it is not
    proposed a third time."""
    agent = TuneAgent()
    base = {k: c.value for k, c in read_literals(TRAIN).items()}
    lower = {**base, "LEARNING_RATE": 5e-3}

    def ran(n, params, move, status, delta):
        return Experiment(n=n, description=move["name"], params=params, move=move,
                          status=status, metric=1.0 + delta, delta_best=delta)

    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               ran(2, lower, {"name": "LEARNING_RATE", "direction": -1, "factor": 2.0,
                              "old": 1e-2, "new": 5e-3}, "keep", -0.02),
               ran(3, {**lower, "MATRIX_OPTIMIZER": "muon"},
                   {"name": "MATRIX_OPTIMIZER", "direction": 0, "old": "adamw",
                    "new": "muon"}, "discard", -0.003),
               ran(4, {**lower, "DEPTH": 2}, {"name": "DEPTH", "direction": -1,
                                              "factor": 2.0, "old": 4, "new": 2},
                   "keep", -0.03)]
    source = configured(TRAIN, {"LEARNING_RATE": 5e-3, "DEPTH": 2})
    further = agent.propose(AgentContext(program="", source=source, history=history, n=5))
    assert further.params["DEPTH"] == 1  # momentum first
    history.append(ran(5, further.params, further.move, "discard", 0.01))
    again = agent.propose(AgentContext(program="", source=source, history=history, n=6))
    assert again.move["name"] == "MATRIX_OPTIMIZER" and again.params["DEPTH"] == 2
    assert "on an earlier best it gained only 0.0030, within the noise" in again.hypothesis
    history.append(ran(6, again.params, again.move, "discard", 0.02))
    history[-1].confidence = -2.0  # clearly behind now
    nxt = agent.propose(AgentContext(program="", source=source, history=history, n=7))
    assert nxt.move["name"] != "MATRIX_OPTIMIZER"
    # level with the best (0.3 noise stds behind) comes back too; clearly behind does not
    history[2].delta_best, history[2].confidence = 0.003, -0.3
    level = agent.propose(AgentContext(program="", source=source, history=history[:5], n=6))
    assert level.move["name"] == "MATRIX_OPTIMIZER"
    assert "on an earlier best it made val_bpb worse by 0.0030" in level.hypothesis
    history[2].confidence = -1.5
    behind = agent.propose(AgentContext(program="", source=source, history=history[:5], n=6))
    assert behind.move["name"] != "MATRIX_OPTIMIZER"


def choice_run(n, params, name, old, new, delta, confidence, status="discard"):
    return Experiment(n=n, description=name, params={**params, name: new}, status=status,
                      move={"name": name, "direction": 0, "old": old, "new": new},
                      metric=1.0 + delta, delta_best=delta, confidence=confidence)


def test_one_choice_is_measured_again_per_best_that_moved_by_numbers():
    """Three choices level on the baseline; DEPTH 4 -> 2 kept, the step further missed:
    the closest of the three comes back on the new best, the other two wait for the next
    best instead of holding the first pass back."""
    agent = TuneAgent()
    base = {k: c.value for k, c in read_literals(TRAIN).items()}
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               choice_run(2, base, "TIE_EMBEDDINGS", True, False, 0.001, -0.2),
               choice_run(3, base, "QK_NORM", True, False, -0.002, 0.4),
               choice_run(4, base, "ACTIVATION", "relu2", "gelu", 0.003, -0.6),
               Experiment(n=5, description="DEPTH", params={**base, "DEPTH": 2},
                          status="keep", metric=0.97, delta_best=-0.03, confidence=5.0,
                          move={"name": "DEPTH", "direction": -1, "factor": 2.0, "old": 4,
                                "new": 2}),
               Experiment(n=6, description="DEPTH", params={**base, "DEPTH": 1},
                          status="discard", metric=0.98, delta_best=0.01, confidence=-3.0,
                          move={"name": "DEPTH", "direction": -1, "factor": 2.0, "old": 2,
                                "new": 1})]
    source = configured(TRAIN, {"DEPTH": 2})
    again = agent.propose(AgentContext(program="", source=source, history=history, n=7))
    assert (again.move["name"], again.params["DEPTH"]) == ("QK_NORM", 2)
    assert "on an earlier best it gained only 0.0020" in again.hypothesis
    history.append(Experiment(n=7, description="QK_NORM", params=again.params,
                              move=again.move, status="discard", metric=0.975,
                              delta_best=0.005, confidence=-0.5))
    nxt = agent.propose(AgentContext(program="", source=source, history=history, n=8))
    assert nxt.move["name"] not in ("TIE_EMBEDDINGS", "ACTIVATION")
    assert "first pass" in nxt.hypothesis
    # the next best moved by numbers brings the next closest
    history.append(Experiment(n=8, description="WEIGHT_DECAY", status="keep", metric=0.95,
                              params={**base, "DEPTH": 2, "WEIGHT_DECAY": 0.2},
                              delta_best=-0.02, confidence=4.0,
                              move={"name": "WEIGHT_DECAY", "direction": 1, "factor": 2.0,
                                    "old": 0.1, "new": 0.2}))
    history.append(Experiment(n=9, description="WEIGHT_DECAY", status="discard", metric=0.96,
                              params={**base, "DEPTH": 2, "WEIGHT_DECAY": 0.4},
                              delta_best=0.01, confidence=-3.0,
                              move={"name": "WEIGHT_DECAY", "direction": 1, "factor": 2.0,
                                    "old": 0.2, "new": 0.4}))
    source = configured(source, {"WEIGHT_DECAY": 0.2})
    following = agent.propose(AgentContext(program="", source=source, history=history, n=10))
    assert following.move["name"] == "TIE_EMBEDDINGS"
    # one the human asked to leave alone gives its turn to the next
    steered = agent.propose(AgentContext(program="", source=source, history=history, n=10,
                                         notes=["leave TIE_EMBEDDINGS alone"]))
    assert steered.move["name"] == "ACTIVATION"


def test_every_choice_comes_back_once_on_a_model_a_quarter_the_size():
    """QK_NORM off level, untied clearly behind and gelu stopped early on DEPTH 4; DEPTH 2
    kept (half the size): only the level one comes back there. DEPTH 1 kept (a quarter):
    all three come back on it, the closest first; measured there, none comes back again."""
    agent = TuneAgent()
    base = {k: c.value for k, c in read_literals(TRAIN).items()}

    def depth(n, old, new, delta):
        return Experiment(n=n, description="DEPTH", params={**base, "DEPTH": new},
                          status="keep", metric=1.0 + delta, delta_best=delta, confidence=5.0,
                          move={"name": "DEPTH", "direction": -1, "factor": 2.0, "old": old,
                                "new": new})

    gelu = choice_run(4, base, "ACTIVATION", "relu2", "gelu", 0.05, None)
    gelu.early_stop = {"at": 0.25}
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               choice_run(2, base, "QK_NORM", True, False, 0.001, -0.2),
               choice_run(3, base, "TIE_EMBEDDINGS", True, False, 0.02, -4.0), gelu,
               depth(5, 4, 2, -0.03)]

    half = history[:5]  # DEPTH 2 kept, and the step further behind
    stepped = Experiment(n=6, description="DEPTH", params={**base, "DEPTH": 1},
                         status="discard", metric=0.98, delta_best=0.01, confidence=-3.0,
                         move={"name": "DEPTH", "direction": -1, "factor": 2.0, "old": 2,
                               "new": 1})
    again = agent.propose(AgentContext(program="", source=configured(TRAIN, {"DEPTH": 2}),
                                       history=[*half, stepped], n=7))
    assert (again.move["name"], again.move["new"], again.params["DEPTH"]) == \
        ("QK_NORM", False, 2)
    assert "the model has become" not in again.hypothesis

    history = [*half, depth(6, 2, 1, -0.06)]
    quarter = configured(TRAIN, {"DEPTH": 1})
    back = []
    for n in range(7, 10):
        p = agent.propose(AgentContext(program="", source=quarter, history=history, n=n))
        back.append((p.move["name"], p.move["new"], p.params["DEPTH"]))
        if n == 8:
            assert "on another model it made val_bpb worse by 0.0200" in p.hypothesis
            assert "the model has become 1/4 the size since (DEPTH 4 -> 1)" in p.hypothesis
        history.append(Experiment(n=n, description=p.description, params=p.params,
                                  move=p.move, status="discard", metric=0.95, delta_best=0.01,
                                  confidence=-0.5))
    assert back == [("QK_NORM", False, 1), ("TIE_EMBEDDINGS", False, 1),
                    ("ACTIVATION", "gelu", 1)]
    nxt = agent.propose(AgentContext(program="", source=quarter, history=history, n=10))
    assert (nxt.move["name"], nxt.move.get("new")) not in {b[:2] for b in back}


def sizes(source: str):
    """`resized` on a train.py's constants, from its own values to `changed` ones."""
    from cockpit.agents.ideas import Known, resized
    from cockpit.agents.ledger import Ledger
    from cockpit.agents.steering import read_steering
    ctx = AgentContext(program="", source=source, history=[], n=2)
    tunable = read_literals(source)
    k = Known(ctx, tunable, Ledger(ctx), read_steering([], [], list(tunable)))
    return lambda **changed: resized(k, k.current(), {**k.current(), **changed})


def test_a_model_four_times_as_wide_is_another_model_too():
    resized = sizes(TRAIN)
    assert resized(MODEL_DIM=256) == "4x the size"
    assert resized(DEPTH=1) == "1/4 the size"
    assert resized(DEPTH=2) == ""  # half: the same model to a choice
    assert resized(N_HEADS=16, MLP_RATIO=16) == ""  # a head's width; a ratio
    # the reference's train.py: the width is DEPTH x ASPECT_RATIO, so DEPTH 8 -> 4 is 1/8
    reference = sizes("ASPECT_RATIO = 64\nHEAD_DIM = 128\nDEPTH = 8\nMLP_DIM = 512\n"
                      "LAYER_SCALE = 0.1\n")
    assert reference(DEPTH=4) == "1/8 the size"
    assert reference(HEAD_DIM=512, LAYER_SCALE=0.4) == ""
    assert reference(MLP_DIM=2048) == "4x the size"  # an MLP's width counts once
    assert reference(MLP_DIM=1024) == ""
    assert sizes("LEARNING_RATE = 0.01\n")(LEARNING_RATE=1.0) == ""  # nothing says


def test_an_optimizer_level_on_a_tuned_learning_rate_is_tried_on_the_rate_before():
    """LEARNING_RATE 1e-2 -> 5e-3 kept on AdamW; muon level on 5e-3: muon with 1e-2 next,
    once; an optimizer clearly behind is not."""
    agent = TuneAgent()
    base = {k: c.value for k, c in read_literals(TRAIN).items()}
    lower = {**base, "LEARNING_RATE": 5e-3}
    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               Experiment(n=2, description="LR", params=lower, status="keep", metric=0.97,
                          delta_best=-0.03, confidence=5.0,
                          move={"name": "LEARNING_RATE", "direction": -1, "factor": 2.0,
                                "old": 1e-2, "new": 5e-3}),
               Experiment(n=3, description="LR", params={**base, "LEARNING_RATE": 2.5e-3},
                          status="discard", metric=0.98, delta_best=0.01, confidence=-3.0,
                          move={"name": "LEARNING_RATE", "direction": -1, "factor": 2.0,
                                "old": 5e-3, "new": 2.5e-3}),
               choice_run(4, lower, "MATRIX_OPTIMIZER", "adamw", "muon", 0.001, -0.3)]
    source = configured(TRAIN, {"LEARNING_RATE": 5e-3})
    paired = agent.propose(AgentContext(program="", source=source, history=history, n=5))
    assert paired.params["MATRIX_OPTIMIZER"] == "muon" and paired.params["LEARNING_RATE"] == 1e-2
    assert paired.description == 'MATRIX_OPTIMIZER "adamw" -> "muon", LEARNING_RATE 5e-3 -> 1e-2'
    assert "was tuned to 'adamw'" in paired.hypothesis
    history.append(Experiment(n=5, description=paired.description, params=paired.params,
                              move=paired.move, status="discard", metric=0.975,
                              delta_best=0.005, confidence=-0.5))
    nxt = agent.propose(AgentContext(program="", source=source, history=history, n=6))
    assert nxt.params["MATRIX_OPTIMIZER"] == "adamw"
    history[3].confidence = -2.5
    behind = agent.propose(AgentContext(program="", source=source, history=history[:4], n=5))
    assert behind.params["MATRIX_OPTIMIZER"] == "adamw"


def test_a_learning_rate_tuned_on_another_optimizer_is_not_undone_for_this_one():
    """LEARNING_RATE 5e-3 kept on AdamW, then muon, then DEPTH 2: AdamW level on that best
    is no reason to go back to 1e-2 (the step was tuned to AdamW, not to muon)."""
    agent = TuneAgent()
    base = {k: c.value for k, c in read_literals(TRAIN).items()}
    lower = {**base, "LEARNING_RATE": 5e-3}
    muon = {**lower, "MATRIX_OPTIMIZER": "muon"}

    def depth(n, old, new, status, delta, confidence):
        return Experiment(n=n, description="DEPTH", params={**muon, "DEPTH": new},
                          status=status, metric=1.0 + delta, delta_best=delta,
                          confidence=confidence, move={"name": "DEPTH", "direction": -1,
                                                       "factor": 2.0, "old": old, "new": new})

    history = [Experiment(n=1, description="baseline", status="keep", metric=1.0),
               Experiment(n=2, description="LR", params=lower, status="keep", metric=0.97,
                          delta_best=-0.03, confidence=5.0,
                          move={"name": "LEARNING_RATE", "direction": -1, "factor": 2.0,
                                "old": 1e-2, "new": 5e-3}),
               choice_run(3, lower, "MATRIX_OPTIMIZER", "adamw", "muon", -0.03, 5.0, "keep"),
               depth(4, 4, 2, "keep", -0.03, 5.0), depth(5, 2, 1, "discard", 0.03, -3.0),
               choice_run(6, {**muon, "DEPTH": 2}, "MATRIX_OPTIMIZER", "muon", "adamw", 0.001,
                          -0.3)]
    source = configured(TRAIN, {"LEARNING_RATE": 5e-3, "MATRIX_OPTIMIZER": "muon", "DEPTH": 2})
    nxt = agent.propose(AgentContext(program="", source=source, history=history, n=7))
    assert "first pass" in nxt.hypothesis and nxt.params["MATRIX_OPTIMIZER"] == "muon"


def test_a_note_steers_structural_choices_by_name_and_in_words():
    assert propose_all(TRAIN, 1, ("try muon",))[0].move["name"] == "MATRIX_OPTIMIZER"
    assert propose_all(TRAIN, 1, ("QK_NORM",))[0].move["name"] == "QK_NORM"
    assert propose_all(TRAIN, 1, ("the bigrams",))[0].move["name"] == "BIGRAM_ROWS"
    plain = propose_all(TRAIN, 40, ("no bf16: this CPU has no bfloat16 units",))
    assert all("CPU_BF16" not in p.move["name"] for p in plain)
    left = propose_all(TRAIN, 40, ("leave the activation alone",))
    assert all("ACTIVATION" not in p.move["name"] for p in left)


# -- no idle night ---------------------------------------------------------------------
# One lever that can only go up, and up is worse: the agent has one move, then none.
SHORT = '''\
DEPTH = 1  # layers
SEED = 42
print("data_fingerprint: short001", flush=True)
print("---")
print(f"val_bpb:          {1.0 + 0.1 * (DEPTH - 1):.6f}")
print("training_seconds: 0.1")
print("peak_vram_mb:     1.0")
'''


def short_config(urls=()) -> Config:
    config = Config()
    config.judge.baseline_runs = 1
    config.judge.min_delta = 0.0
    config.notify = NotifyConfig(urls=list(urls), min_interval=0.0, summary_at="", retries=1,
                                 backoff=0.05)
    return config


@pytest.mark.slow
def test_an_exhausted_agent_pauses_the_session_and_says_it_stalled(tmp_path):
    receiver = Receiver("200")
    try:
        ws = make_workspace(tmp_path / "ws", train=SHORT)
        config = short_config([receiver.url()])
        coordinator = Coordinator(ws, config, "t", agent=TuneAgent())
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            ending = serve_session(coordinator, None, background=False, companions=[
                lambda since: attach(ws, config.notify, "t", since)])
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
        wait_for(lambda: any("stalled" in t for t in receiver.titles()), what="the message")
    finally:
        receiver.close()
    # headless, no one to resume it: a paused session's exit, as for any other pause
    assert ending.code == EXIT_PAUSED
    paused = [e for e in read_journal(ws, "t") if e["event"] == "paused"]
    assert [p["kind"] for p in paused] == ["exhausted"]
    assert paused[0]["reason"].startswith("the tune agent has tried every move it knows")
    assert paused[0]["reason"].endswith(": steer it with a note (n) or edit program.md, "
                                        "then resume (p)")
    assert len(coordinator.state.ran) == 2  # the baseline and DEPTH 1 -> 2
    post = next(p for p in receiver.posts if "stalled" in p["title"])
    assert "tried every move it knows" in post["message"] and "cockpit steer" in post["message"]


@pytest.mark.slow
def test_an_exhausted_agent_waits_for_a_human_and_never_ends_the_session(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=SHORT)
    coordinator = Coordinator(ws, short_config(), "t", agent=TuneAgent(),
                              wait_when_paused=True)
    thread = threading.Thread(target=coordinator.run, args=(50,), daemon=True)
    thread.start()
    wait_for(lambda: coordinator.live()["paused"], what="the pause")
    assert "tried every move it knows" in coordinator.live()["pause_reason"]
    thread.join(2.0)
    assert thread.is_alive() and coordinator.ending is None  # it waits: not ended
    assert coordinator.command("resume")["ok"]  # nothing new: it pauses again, still alive
    wait_for(lambda: [e["kind"] for e in coordinator.events if e.get("event") == "paused"]
             == ["exhausted", "exhausted"], what="the second pause")
    assert thread.is_alive() and coordinator.ending is None
    assert coordinator.command("stop")["ok"]
    thread.join(30)
    assert not thread.is_alive()


# -- never idle while moves remain -------------------------------------------------------
# A train.py whose val_bpb is a fixed function of its numbers and structural literals; the
# hidden optimum (1.0) needs every lever moved, structure included.
SHIM = '''\
import math
LEARNING_RATE = 0.01  # step size
EMBEDDING_LR = 0.01  # embedding step size
DEPTH = 4  # layers
MODEL_DIM = 128  # width
WEIGHT_DECAY = 0.1  # decay
WARMDOWN_RATIO = 0.4  # schedule
ACTIVATION = "relu2"  # MLP nonlinearity: relu2 | gelu | swiglu
QK_NORM = True  # True | False
MATRIX_OPTIMIZER = "adamw"  # adamw | muon
SEED = 42
print("data_fingerprint: shim0001", flush=True)
val = (1.0 + OPTIMUM_DISTANCE)
print("---")
print(f"val_bpb:          {val:.6f}")
print("training_seconds: 0.1")
print("peak_vram_mb:     1.0")
'''
DISTANCE = (
    "0.02 * math.log2(LEARNING_RATE / 0.013) ** 2 + 0.01 * math.log2(EMBEDDING_LR / 0.03) ** 2"
    " + 0.015 * math.log2(DEPTH / 2) ** 2 + 0.01 * math.log2(MODEL_DIM / 192) ** 2"
    " + 0.005 * math.log2(WEIGHT_DECAY / 0.05) ** 2 + 0.04 * (WARMDOWN_RATIO - 0.6) ** 2"
    ' + {"relu2": 0.02, "gelu": 0.03, "swiglu": 0.0}[ACTIVATION] + (0.0 if QK_NORM else 0.01)'
    ' + {"adamw": 0.03, "muon": 0.0}[MATRIX_OPTIMIZER]')
EXPERIMENTS = 200


@pytest.mark.slow
def test_two_hundred_experiments_never_run_out_of_moves_and_close_in_on_the_optimum(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=SHIM.replace("OPTIMUM_DISTANCE", DISTANCE))
    coordinator, ending = run_session(ws, EXPERIMENTS, agent=TuneAgent(),
                                      config=short_config())
    assert ending.why == f"ran {EXPERIMENTS} experiments as asked" and ending.code == 0
    assert not [e for e in coordinator.events if e.get("event") == "paused"]
    assert len(coordinator.state.ran) == EXPERIMENTS
    best = coordinator.state.best
    gap = best.metric - 1.0
    print(f"\nthe best after {EXPERIMENTS} experiments: {best.metric:.6f} (gap {gap:.6f} to "
          f"the optimum 1.0); {best.params}")
    assert best.params["MATRIX_OPTIMIZER"] == "muon" and best.params["ACTIVATION"] == "swiglu"
    assert gap < 0.002, gap
    assert math.isclose(coordinator.state.baseline.metric, 1.0 + 0.02 * math.log2(
        0.01 / 0.013) ** 2 + 0.01 * math.log2(1 / 3) ** 2 + 0.015 + 0.01 * math.log2(
        128 / 192) ** 2 + 0.005 + 0.04 * 0.04 + 0.02 + 0.03, abs_tol=1e-6)
