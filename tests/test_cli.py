"""The command line as a user meets it: init, bad config, wrong directory."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import git
import pytest
from support import FAKE_TRAIN, cockpit, make_workspace

from cockpit.workspace.config import load_config


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("toml, expected", [
    ("[experiment\n", "not valid TOML"),
    ("[experiment]\nbudget = 60\n", "unknown key [experiment] budget; allowed: data_dir, "
                                    "editable, env, evaluator, fixed, max_log_mb, min_free_mb, "
                                    "prepare_command, share, time_budget, "
                                    "timeout, train_command"),
    ("[experiment]\ntime_budget = \"5m\"\n", "[experiment] time_budget must be an integer"),
    ("[experiment]\ntime_budget = -1\n", "time_budget must be between 1 and 604800 seconds"),
    ("[metric]\ndirection = \"down\"\n", "use one of: lower, higher"),
    ("[agent]\nkind = \"gpt\"\n", "[agent] kind = 'gpt' is not allowed; use one of: tune"),
    ("[loop]\nx = 1\n", "unknown section [loop]"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, toml, expected):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": toml})
    line = one_line_error(cockpit("run", "--headless", cwd=ws))
    assert str(ws / "cockpit.toml") in line and expected in line


def test_config_defaults_and_values(tmp_path):
    config = load_config(tmp_path)
    assert config.experiment.train_command == "python train.py"
    assert config.experiment.time_budget == 300 and config.experiment.hard_timeout == 720
    assert config.metric.name == "val_bpb" and config.metric.direction == "lower"
    assert config.agent.kind == "tune" and config.experiment.editable == "train.py"
    (tmp_path / "cockpit.toml").write_text('[experiment]\ntime_budget = 60\ntimeout = 100\n'
                                           '[metric]\nname = "test_acc"\ndirection = "higher"\n')
    config = load_config(tmp_path)
    assert config.experiment.hard_timeout == 100 and config.metric.to_metric().better(0.9, 0.8)


def test_command_line_overrides_are_checked_too(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    line = one_line_error(cockpit("run", "--headless", "--budget", "0", cwd=ws))
    assert line == ("cockpit: --budget: [experiment] time_budget must be between 1 and 604800 "
                    "seconds, got 0")


def test_not_a_workspace_says_how_to_make_one(tmp_path):
    line = one_line_error(cockpit(cwd=tmp_path))
    assert "is not a cockpit workspace" in line and "cockpit init" in line
    line = one_line_error(cockpit("-C", str(tmp_path / "nope"), "run", cwd=tmp_path))
    assert "does not exist" in line and "cockpit init" in line


def test_not_a_git_repo(tmp_path):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    line = one_line_error(cockpit("run", cwd=tmp_path))
    assert "not a git repository" in line


def test_bad_tag(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    assert "not usable in a branch name" in one_line_error(cockpit("run", "--tag", "a b", cwd=ws))


def test_init_scaffolds_a_workspace_and_is_idempotent(tmp_path):
    target = tmp_path / "research"
    result = cockpit("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("program.md", "train.py", "prepare.py", "cockpit.toml", ".gitignore"):
        assert (target / name).exists(), name
    repo = git.Repo(target)
    assert not repo.is_dirty(untracked_files=True)
    assert {b.path for b in repo.head.commit.tree.blobs} >= {"train.py", "prepare.py", "program.md"}
    load_config(target)  # the scaffolded cockpit.toml is valid
    again = cockpit("init", str(target), cwd=tmp_path)
    assert again.returncode == 0 and "already a workspace" in again.stdout
    assert len(list(repo.iter_commits())) == 1


def test_init_keeps_an_existing_checkout_files(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    cockpit("init", str(ws), cwd=tmp_path)
    assert (ws / "train.py").read_text() == FAKE_TRAIN  # never overwritten
    assert (ws / "cockpit.toml").exists()


def test_autoresearch_checkout_with_uv(tmp_path):
    """An autoresearch-style checkout run with `uv run train.py`: prepare.py runs the same
    way first, and the existing results.tsv gets rows in the exact reference format."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    uv = bin_dir / "uv"  # a stand-in for uv: `uv run X` runs X with this Python
    uv.write_text(f"#!/bin/sh\n[ \"$1\" = run ] && shift\necho \"uv $@\"\n"
                  f"exec {os.sys.executable} \"$@\"\n")
    uv.chmod(uv.stat().st_mode | stat.S_IEXEC)
    ws = make_workspace(tmp_path / "autoresearch", extra={
        "prepare.py": "print('data ready')\n",
        "pyproject.toml": "[project]\nname = 'autoresearch'\n",
    })
    (ws / "cockpit.toml").write_text('[experiment]\ntrain_command = "uv run train.py"\n')
    (ws / "results.tsv").write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                                    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = cockpit("run", "--headless", "--experiments", "2", cwd=ws, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    logs = (sorted((ws / ".cockpit").glob("*/*/*/run.log"))
            + list((ws / ".cockpit").glob("*/prepare.log")))
    calls = [line for log in logs for line in log.read_text().splitlines()
             if line.startswith("uv ")]
    # prepare once, then the baseline, its 3 noise re-runs, and experiment 2
    assert sorted(calls) == ["uv prepare.py"] + ["uv train.py"] * 5
    rows = (ws / "results.tsv").read_text().splitlines()
    assert rows[:2] == ["commit\tval_bpb\tmemory_gb\tstatus\tdescription",
                        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline"]
    assert len(rows) == 4 and rows[2].endswith("\t1.260000\t2.0\tkeep\tbaseline")
    assert "results.tsv" not in git.Repo(ws).git.ls_files()


def test_the_readme_and_the_template_show_every_key_as_declared(tmp_path):
    """cockpit.toml's keys are declared once: the README's block is the template, `cockpit
    init` writes it, and it loads back to the defaults."""
    import dataclasses
    import re

    from cockpit.workspace.config import SECTIONS, Config, template

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("## cockpit.toml", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == template(), "the README's cockpit.toml block: regenerate it from template()"
    for name, cls, _ in SECTIONS:
        for spec in dataclasses.fields(cls):
            assert re.search(rf"^{spec.name} = ", block.split(f"[{name}]", 1)[1], re.M), spec.name
    init = tmp_path / "ws"
    assert cockpit("init", str(init), cwd=tmp_path).returncode == 0
    assert (init / "cockpit.toml").read_text().endswith(template())
    assert load_config(init) == Config()


def test_run_help_shows_the_defaults_cockpit_toml_sets(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    plain = cockpit("-C", str(ws), "run", "--help", cwd=tmp_path)
    assert plain.returncode == 0 and "(default: 300 s)" in " ".join(plain.stdout.split())
    (ws / "cockpit.toml").write_text('[experiment]\ntime_budget = 60\n'
                                     'train_command = "python mine.py"\n'
                                     '[agent]\nkind = "llm"\nmodel = "openai/gpt-4o"\n')
    shown = " ".join(cockpit("-C", str(ws), "run", "--help", cwd=tmp_path).stdout.split())
    served = " ".join(cockpit("-C", str(ws), "serve", "--help", cwd=tmp_path).stdout.split())
    assert "(default: 60 s, from cockpit.toml)" in served  # the session serve starts
    for said in ("(default: 60 s, from cockpit.toml)", "2 x budget + 120 = 240 s",
                 '(default: "python mine.py", from cockpit.toml)',
                 "(default: llm, from cockpit.toml)", "(now: openai/gpt-4o, from cockpit.toml)"):
        assert said in shown, said
    (ws / "cockpit.toml").write_text("[experiment\n")  # broken: help still helps
    broken = cockpit("-C", str(ws), "run", "--help", cwd=tmp_path)
    assert broken.returncode == 0 and "(default: 300 s)" in " ".join(broken.stdout.split())
