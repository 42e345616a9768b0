"""train.py as the cockpit runs it: a subprocess with a tiny budget on the small data."""
import ast
import os
import re
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT

import prepare

SUMMARY_KEYS = ["val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                "total_tokens_M", "num_steps", "num_params_M", "depth"]
PROGRESS = re.compile(
    r"^step \d{5} \(\d+\.\d%\) \| loss: \d+\.\d{6} \| lrm: \d+\.\d{2} \| dt: \d+ms \| "
    r"tok/sec: \d{1,3}(,\d{3})* \| mfu: \d+\.\d% \| epoch: \d+ \| remaining: \d+s$")


def run_train(data_dir, budget, script=REPO_ROOT / "train.py", timeout=120):
    env = dict(os.environ, COCKPIT_DATA_DIR=str(data_dir), COCKPIT_TIME_BUDGET=str(budget),
               PYTHONPATH=str(REPO_ROOT))
    t0 = time.time()
    r = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO_ROOT, capture_output=True,
                       timeout=timeout)  # bytes: text mode would turn the \r updates into \n
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r, time.time() - t0


@pytest.fixture(scope="module")
def short_run(small_data_dir):
    r, _elapsed = run_train(small_data_dir, 3)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


@pytest.mark.slow
def test_summary_block(short_run):
    tail = short_run.split("\n---\n")[-1].strip().splitlines()
    assert [line.split(":")[0] for line in tail] == SUMMARY_KEYS
    values = {}
    for line in tail:
        key, value = line.split(":", 1)
        assert line == f"{key + ':':<18}{value.strip()}"  # values start at column 18
        values[key] = float(value)
    assert re.fullmatch(r"\d+\.\d{6}", tail[0].split()[-1])
    assert 0 < values["val_bpb"] < 10
    assert 3 <= values["training_seconds"] < 10
    assert values["total_seconds"] >= values["training_seconds"]
    assert values["num_steps"] >= 3 and values["peak_vram_mb"] > 0 and values["mfu_percent"] > 0


@pytest.mark.slow
def test_progress_lines_and_header(short_run, small_data_dir):
    assert "\r" in short_run
    steps = [s for s in re.split(r"[\r\n]", short_run) if s.startswith("step ")]
    assert len(steps) >= 3
    for s in steps:
        assert PROGRESS.match(s), s
    assert f"data_fingerprint: {prepare.data_fingerprint(small_data_dir)}\n" in short_run
    assert "device: cpu" in short_run or "device: cuda" in short_run or "device: mps" in short_run


@pytest.mark.slow
def test_exploding_loss_fails_fast(small_data_dir, tmp_path):
    src = (REPO_ROOT / "train.py").read_text()
    patched = re.sub(r"^LEARNING_RATE = \S+", "LEARNING_RATE = 1e6", src, flags=re.M)
    patched = re.sub(r"^EMBEDDING_LR = \S+", "EMBEDDING_LR = 1e6", patched, flags=re.M)
    assert patched != src
    script = tmp_path / "train.py"
    script.write_text(patched)
    r, elapsed = run_train(small_data_dir, 60, script=script)
    assert r.returncode == 1
    assert re.search(r"^FAIL: loss is \S+ at step \d+$", r.stdout, re.M), r.stdout[-500:]
    assert "---" not in r.stdout and elapsed < 40


@pytest.mark.slow
def test_missing_data_is_one_line(tmp_path):
    r, _ = run_train(tmp_path / "nothing", 3)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"no prepared data in {tmp_path / 'nothing'}: "
                                "run `python prepare.py` first")


def test_constants_are_tunable_literals():
    """The offline tuner rewrites `NAME = literal` with ast: every top-level UPPERCASE
    constant must be one int/float/bool/str literal on its own line with a comment."""
    src = (REPO_ROOT / "train.py").read_text()
    lines = src.splitlines()
    names = []
    for node in ast.parse(src).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            name = node.targets[0].id
            if name.isupper():
                names.append(name)
                assert (isinstance(node.value, ast.Constant)
                        and type(node.value.value) in (int, float, bool, str)), name
                assert node.lineno == node.end_lineno
                assert re.fullmatch(rf"{name} = \S+  # .+",
                                    lines[node.lineno - 1]), lines[node.lineno - 1]
    assert {"DEPTH", "MODEL_DIM", "LEARNING_RATE", "BATCH_SIZE", "WEIGHT_DECAY",
            "SEED"} <= set(names)
