"""The session survives what goes wrong around it: a resume after any stop, an observer or
a loop that fails, a damaged journal, a full disk. Real sessions, real processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    live_journal,
    make_workspace,
    read_journal,
    results_rows,
    run_session,
    wait_for,
)

from cockpit.workspace.config import Config
from cockpit.workspace.lock import read_session

SLOW = FAKE_TRAIN.replace("SEED = 42", "SEED = 42\ntime.sleep(0.3)")
QUICK = "[judge]\nbaseline_runs = 0\n[sandbox]\nmode = \"off\"\n"


def kinds(ws: Path, tag: str, kind: str) -> list[dict]:
    return [e for e in live_journal(ws, tag) if e["event"] == kind]


# -- a resume never hangs -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "sigkill"])
def test_a_resume_runs_the_proposal_the_last_session_left(tmp_path, how):
    """A proposal awaiting approval (a clean stop), or one made ahead (SIGKILL), is offered
    again and runs: the headless printer knows it from the journal (it raised on it)."""
    ws = make_workspace(tmp_path / "ws", train=SLOW, extra={"cockpit.toml": QUICK})
    started = cockpit("run", "--detach", "--review", "--tag", "r", cwd=ws)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: kinds(ws, "r", "proposal")[1:], what="a proposal awaiting approval")
    if how == "stop":
        assert cockpit("stop", cwd=ws).returncode == 0
        wait_for(lambda: read_session(ws) is None, what="the session to end")
    else:
        os.kill(read_session(ws).pid, signal.SIGKILL)
        wait_for(lambda: not read_session(ws).alive, what="the session to die")
    start = time.monotonic()
    # the session had auto-approve off: a resume keeps it off unless told otherwise
    resumed = cockpit("run", "--headless", "--auto-approve", "--experiments", "2", cwd=ws,
                      timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert time.monotonic() - start < 30
    assert "Traceback" not in resumed.stderr
    assert "resuming session r on autoresearch/r (1 experiments so far)" in resumed.stdout
    assert "#2 LEARNING_RATE" in resumed.stdout  # the printer names the old proposal
    results = {e["n"]: e["status"] for e in read_journal(ws, "r") if e["event"] == "result"}
    assert results[2] in ("keep", "discard") and len(results) == 3
    assert read_session(ws) is None  # a clean end leaves the lock free


def test_an_observer_that_raises_never_stops_the_loop(tmp_path, capfd):
    ws = make_workspace(tmp_path / "ws")
    config = Config()
    config.judge.baseline_runs = 0
    config.sandbox.mode = "off"
    from cockpit.session.coordinator import Coordinator

    coordinator = Coordinator(ws, config, "o")
    seen = []

    def broken(message):
        raise RuntimeError("an observer's bug")

    coordinator.observers += [broken, seen.append]
    ending = coordinator.run(3)
    assert ending.code == 0, ending.why
    assert [e.status for e in coordinator.state.ran].count(None) == 0
    assert len(coordinator.state.ran) == 3
    assert broken not in coordinator.observers and seen  # dropped; the others go on
    err = capfd.readouterr().err
    assert err.count("failed and no longer sees the session") == 1
    assert "an observer's bug" in err


class BrokenAgent:
    """An agent whose answer is not a proposal at all: a bug inside the loop."""

    name = "broken"

    def propose(self, ctx):
        return object()


def test_a_loop_that_dies_ends_at_once_says_why_and_frees_the_workspace(tmp_path):
    from cockpit.session.coordinator import Coordinator
    from cockpit.session.server import serve_session

    ws = make_workspace(tmp_path / "ws")
    config = Config()
    config.judge.baseline_runs = 0
    config.sandbox.mode = "off"
    coordinator = Coordinator(ws, config, "x", agent=BrokenAgent())
    start = time.monotonic()
    with pytest.raises(AttributeError):
        serve_session(coordinator, None, background=False)
    assert time.monotonic() - start < 20
    assert read_session(ws) is None  # the lock is free: `cockpit run` resumes
    end = read_journal(ws, "x")[-1]
    assert end["event"] == "session_end" and end["code"] == 4
    assert end["why"].startswith("cockpit failed: AttributeError")


@pytest.mark.slow
def test_a_dying_loop_in_a_detached_session_leaves_its_traceback_in_the_log(tmp_path):
    """The real process: an exception inside the loop ends it within seconds, the traceback
    in session.log, the lock released; `cockpit run` resumes the session."""
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    hook = tmp_path / "sitecustomize.py"  # a bug planted in the session process only
    hook.write_text("import os\nif os.environ.get('COCKPIT_TEST_BUG'):\n"
                    "    import cockpit.session.coordinator as c\n"
                    "    def boom(self, slot, ticket):\n"
                    "        raise ZeroDivisionError('a planted bug')\n"
                    "    c.Coordinator._start_experiment = boom\n")
    env = {"PYTHONPATH": str(tmp_path), "COCKPIT_TEST_BUG": "1"}
    started = cockpit("run", "--detach", "--tag", "b", cwd=ws, env=env)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: read_session(ws) is None, timeout=20, what="the session to end")
    log = (ws / ".cockpit" / "b" / "session.log").read_text()
    assert "Traceback" in log and "ZeroDivisionError: a planted bug" in log
    assert read_journal(ws, "b")[-1]["why"].startswith("cockpit failed: ZeroDivisionError")
    again = cockpit("run", "--headless", "--experiments", "2", cwd=ws)
    assert again.returncode == 0, again.stderr
    statuses = [e["status"] for e in read_journal(ws, "b") if e["event"] == "result"]
    assert len(statuses) == 2 and "crash" not in statuses and len(results_rows(ws)) == 2


# -- a damaged or hostile journal line never stops a resume ---------------------------------
WRONG = [None, "x", -1, 1.5, True, [], {}, {"a": 1}, ["x"], 1e308]


def hostile_variants(events: list[dict]):
    """Every event of a real journal with each field dropped, and with each field set to
    each value of the wrong kind."""
    for event in events:
        for name in event:
            if name == "event":
                continue
            yield {k: v for k, v in event.items() if k != name}
            for value in WRONG:
                yield {**event, name: value}
        yield {"event": event["event"]}


@pytest.fixture(scope="module")
def real_journal(tmp_path_factory) -> list[dict]:
    """A session with a baseline, noise runs, keeps, a discard, a crash, a note, a stop."""
    ws = make_workspace(tmp_path_factory.mktemp("journal") / "ws")
    noisy = FAKE_TRAIN.replace('print("---")', "import random\nval += random.gauss(0, 0.001)\n"
                               'print("---")')
    (ws / "train.py").write_text(noisy)
    import git

    git.Repo(ws).git.commit("-qam", "noisy")
    config = Config()
    config.judge.baseline_runs = 2
    config.sandbox.mode = "off"
    crash = noisy.replace("SEED = 42", "SEED = 42\nraise SystemExit('boom')")
    agent = ScriptedAgent(noisy.replace("0.01", "0.003"), crash, noisy.replace("0.01", "0.5"))
    coordinator, ending = run_session(ws, 4, agent=agent, config=config)
    assert ending.code == 0, ending.why
    coordinator.journal.append({"event": "note", "id": 1, "text": "a note"})
    return read_journal(ws, "t")


def fold_everywhere(events: list[dict]) -> None:
    """Every reader of a journal that folds it without the session: the state, the screen's
    view, the notifier, the reports, the noise floor, the pace."""
    from cockpit.notify.watcher import Watcher
    from cockpit.tui.view import SessionView
    from cockpit.workspace.config import NotifyConfig
    from cockpit.workspace.records import render_experiments_md
    from cockpit.workspace.report import SessionFacts, render_markdown

    view = SessionView()
    for event in events:
        view.apply(event)
    view.rows()
    Watcher(NotifyConfig(), "t", 0.0).history(events)
    render_experiments_md(view.state)
    render_markdown(SessionFacts.from_events(events))
    view.state.floor()


@pytest.mark.slow
def test_every_damaged_field_of_every_event_is_skipped_or_read(real_journal):
    from cockpit.domain.reading import parse_lines

    tried = 0
    for variant in hostile_variants(real_journal):
        lines = [json.dumps(e).encode() for e in real_journal] + [json.dumps(variant).encode()]
        damaged: list[str] = []
        events = parse_lines(lines, damaged)
        try:
            fold_everywhere(events)
        except Exception as exc:
            raise AssertionError(f"{variant} broke a reader: {exc!r}") from exc
        tried += 1
    assert tried > 1000


@pytest.mark.slow
def test_a_session_resumes_over_hostile_journal_lines(tmp_path):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    first = cockpit("run", "--headless", "--experiments", "2", "--tag", "h", cwd=ws)
    assert first.returncode == 0, first.stderr
    journal = ws / ".cockpit" / "h" / "journal.jsonl"
    events = read_journal(ws, "h")
    hostile = ['{"event": "proposal"}', '{"event": "session"}', "42", "not json at all",
               '{"event": "result", "n": "2", "status": "keep"}',
               '{"event": "measure", "commit": "abc", "metric": "low"}',
               '{"event": "noise", "commit": "abc", "values": ["a", 1]}',
               '{"event": "second_look", "n": 2, "result": {}}',
               '{"event": "run_pid", "n": 2}', '{"event": "note"}',
               '{"event": "session", "tag": "h", "branch": "autoresearch/h", "base": 7}',
               '{"event": "measure_start", "k": null, "commit": "abc"}',
               '{"event": "run_start", "n": 99, "commit": "abc"}',
               # a proposal and a keep that pass each field's check, with no commit: a best
               # the branch could not stand on
               '{"event": "proposal", "n": 50}',
               '{"event": "result", "n": 50, "status": "keep", "metric": 0.5}']
    hostile += [json.dumps(v) for v in hostile_variants(events[:6])]
    with open(journal, "a") as f:
        f.write("\n".join(hostile) + "\n")
    again = cockpit("run", "--headless", "--experiments", "2", cwd=ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    said = [line for line in again.stdout.splitlines() if "damaged line" in line]
    assert len(said) == 1 and "a proposal event without n" in said[0], again.stdout
    assert len(results_rows(ws)) == 4


# -- a full disk loses nothing ----------------------------------------------------------------
DISK_SESSION = """\
import json, sys, pathlib
sys.path.insert(0, {tests!r})
from support import FAKE_TRAIN, ScriptedAgent, make_workspace, results_rows, run_session
from cockpit.workspace.config import Config
import git

out = pathlib.Path({out!r})
ws = make_workspace(pathlib.Path({mount!r}) / "ws")
better = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
fill = better.replace("0.003", "0.0031").replace("SEED = 42", '''SEED = 42
blocks = 0
try:
    while True:  # a checkpoint that never ends: the disk fills
        with open(f"ckpt{{blocks}}.bin", "wb") as f:
            f.write(b"\\\\0" * (1 << 20))
        blocks += 1
except OSError as exc:
    print("the disk is full:", exc, flush=True)
time.sleep(30)''')
flood = better.replace("0.003", "0.0029").replace("SEED = 42", '''SEED = 42
print("FIRST LINE", flush=True)
chunk = "x" * 1023 + "\\\\n"
for _ in range(60 * 1024):  # 60 MB of output
    sys.stdout.write(chunk)''')
config = Config()
config.judge.baseline_runs = 0
config.sandbox.mode = {sandbox!r}
config.experiment.min_free_mb = 10
config.experiment.max_log_mb = 4
config.experiment.timeout = 120
first, ending = run_session(ws, 4, agent=ScriptedAgent(flood, fill, better), config=config)
repo = git.Repo(ws)
facts = {{"ending": [ending.code, ending.why],
          "first": [[e.n, e.status, e.reason] for e in first.state.experiments],
          "branch": repo.commit("autoresearch/t").hexsha, "best": first.best_commit(),
          "rows": results_rows(ws),
          "worktree": sorted(p.name for p in (ws / ".cockpit/t/worktrees/w0").iterdir())
          if (ws / ".cockpit/t/worktrees/w0").exists() else [],
          "log2": (ws / ".cockpit/t/runs/0002/run.log").stat().st_size}}
log2 = (ws / ".cockpit/t/runs/0002/run.log").read_text(errors="replace")
facts["log2_head"], facts["log2_tail"] = log2[:40], log2[-200:]
again, ending = run_session(ws, 1, agent=ScriptedAgent(better.replace("0.003", "0.0032")),
                            config=config)
facts["again"] = [ending.code, [[e.n, e.status] for e in again.state.experiments]]
facts["rows_after"] = results_rows(ws)
(out / "facts.json").write_text(json.dumps(facts))
"""


@pytest.mark.parametrize("sandbox", ["off"] + (["auto"] if __import__(
    "cockpit.runners.sandbox", fromlist=["available"]).available()[0] else []))
def test_a_run_that_fills_the_disk_is_a_crash_and_nothing_is_lost(tmp_path, sandbox):
    """On a real 48 MB filesystem (a tmpfs in a namespace of the test's own): a run that
    prints 60 MB leaves a capped log with its start and end; a run that writes files until
    the disk is full is stopped at the floor, its files removed, its crash row written, the
    branch on the best, and the session pauses (exit 3); the next `run` goes on."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    mount = tmp_path / "disk"
    mount.mkdir()
    script = tmp_path / "session.py"
    script.write_text(DISK_SESSION.format(tests=str(Path(__file__).parent), out=str(tmp_path),
                                          mount=str(mount), sandbox=sandbox))
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=48m tmpfs "
                           f"{mount} && exec {sys.executable} {script}"],
                          capture_output=True, text=True, timeout=300)
    if "mount" in done.stderr and "facts" not in os.listdir(tmp_path):
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads((tmp_path / "facts.json").read_text())
    code, why = facts["ending"]
    assert code == 3 and "a run filled the disk" in why and "make room" in why, why
    statuses = {n: (status, reason) for n, status, reason in facts["first"]}
    assert statuses[2][0] == "keep"  # the flood: its log kept within bounds
    assert facts["log2"] < 9 * 1024 * 1024
    assert facts["log2_head"].startswith("FIRST LINE") and "val_bpb" in facts["log2_tail"]
    assert statuses[3][0] == "crash" and statuses[3][1].startswith("the run filled the disk")
    assert facts["branch"] == facts["best"]
    assert [row[3] for row in facts["rows"]] == ["keep", "keep", "crash"]
    assert not any(name.startswith("ckpt") for name in facts["worktree"])
    again_code, again = facts["again"]
    assert again_code == 0 and again[-1][1] in ("keep", "discard")
    assert facts["rows_after"][:3] == facts["rows"] and len(facts["rows_after"]) == 4
