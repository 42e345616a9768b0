import sys
from pathlib import Path

# tests import their helpers (support.py) as a plain module
sys.path.insert(0, str(Path(__file__).parent))


# --- prepared data shared by test_prepare.py and test_train.py -------------------------

import os
import random
import subprocess

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # prepare.py is a top-level script, importable from here
_WORDS = ["data", "model", "token", "value", "index", "result", "config", "parser", "buffer",
          "stream", "item", "node", "path", "name", "count", "size", "total", "state", "event",
          "queue", "cache", "table", "frame", "layer", "batch"]


def write_small_corpus(root, n_files=40, lines_per_file=120, seed=0):
    """A deterministic few-hundred-KB source of Python-like text (plus some UTF-8)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        out = [f'"""Module {i}: helpers for {rng.choice(_WORDS)} handling. Café déjà vu."""', ""]
        for _ in range(lines_per_file // 6):
            a, b, c = rng.sample(_WORDS, 3)
            out += [f"def {a}_{b}({c}, {a}=None):",
                    f"    # compute the {b} of the {c}",
                    f"    if {a} is None:",
                    f"        {a} = len({c}) * {rng.randint(1, 99)}",
                    f"    return {c}.{b}({a}) + {rng.randint(0, 9)}", ""]
        (root / f"mod_{i:03d}.py").write_text("\n".join(out) + "\n", encoding="utf-8")
    return root


def run_prepare(data_dir, *args, timeout=120):
    env = dict(os.environ, COCKPIT_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, str(REPO_ROOT / "prepare.py"), *map(str, args)], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def small_source_dir(tmp_path_factory):
    return write_small_corpus(tmp_path_factory.mktemp("small_source"))


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory, small_source_dir):
    """A data dir prepared (python prepare.py --source ...) from the small corpus."""
    data_dir = tmp_path_factory.mktemp("small_data")
    r = run_prepare(data_dir, "--source", small_source_dir)
    assert r.returncode == 0, r.stderr
    return data_dir
