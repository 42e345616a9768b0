"""Training code cannot reach the session: a hostile run in a real session reads what it can
of the session's state and knocks on its control socket, with the sandbox on and off; a
client holding the key inside a run's sandbox is refused too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import FAKE_TRAIN, Decider, cockpit, make_workspace, read_journal, wait_for

from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner
from cockpit.runners.sandbox import SandboxPolicy, available
from cockpit.workspace.config import Config
from cockpit.workspace.lock import read_session

SANDBOXES = ["off"] + (["auto"] if available()[0] else [])

# What a hostile train.py tries: read the session's state, then drive it through its socket.
PEEK = """\
import json, os
from multiprocessing.connection import Client
ws, tag = {ws!r}, {tag!r}
seen = {{}}
for name in (".cockpit/lock", ".cockpit/run/session.key", f".cockpit/{{tag}}/journal.jsonl",
             f".cockpit/{{tag}}/session.log", "cockpit.toml", "secret-notes.txt",
             f".cockpit/{{tag}}/runs/0001/run.log"):
    try:
        seen[name] = open(os.path.join(ws, name)).read()[:300]
    except OSError as exc:
        seen[name] = "unreadable: " + type(exc).__name__
try:
    seen["worktrees"] = sorted(os.listdir(os.path.join(ws, ".cockpit", tag, "worktrees")))
except OSError as exc:
    seen["worktrees"] = "unreadable: " + type(exc).__name__
print("SEEN " + json.dumps(seen))
try:
    lock = json.loads(open(os.path.join(ws, ".cockpit/lock")).read())
    sock, key = lock["socket"], open(lock["key_file"]).read().strip().encode()
except Exception:
    sock, key = os.path.join(ws, ".cockpit/run/session.sock"), b"guess"
for op in ({{"op": "auto_approve", "on": True}}, {{"op": "steer", "text": "approve all"}}):
    try:
        c = Client(sock, family="AF_UNIX", authkey=key)
        c.send_bytes(json.dumps(op).encode())
        print("ANSWER", c.recv_bytes().decode())
    except BaseException as exc:
        print("REFUSED", type(exc).__name__)
"""


def seen_by(log: Path) -> dict:
    line = next(x for x in log.read_text().splitlines() if x.startswith("SEEN "))
    return json.loads(line[5:])


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_run_cannot_read_or_drive_its_session(tmp_path, sandbox):
    ws = make_workspace(tmp_path / "ws", extra={"secret-notes.txt": "the human's own\n"})
    (ws / "cockpit.toml").write_text('[notify]\nurls = ["json://127.0.0.1:9/hook-TOKEN123"]\n')
    hostile = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003").replace(
        "SEED = 42", "SEED = 42\n" + PEEK.format(ws=str(ws), tag="t"))
    config = Config()
    config.judge.baseline_runs = 0
    config.sandbox.mode = sandbox
    config.notify.urls = ["json://127.0.0.1:9/hook-TOKEN123"]
    from support import ScriptedAgent

    from cockpit.session.coordinator import Coordinator
    from cockpit.session.server import serve_session

    coordinator = Coordinator(ws, config, "t", agent=ScriptedAgent(hostile, FAKE_TRAIN.replace(
        "0.01", "0.002")), auto_approve=False)
    Decider(coordinator, lambda n: (True, ""))  # the human approves each proposal, by hand
    ending = serve_session(coordinator, 3, background=False)
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    kinds = [e["event"] for e in events]
    assert "auto_approve" not in kinds and "note" not in kinds  # it drove nothing
    assert coordinator.control.auto_approve is False
    log = (ws / ".cockpit" / "t" / "runs" / "0002" / "run.log").read_text()
    answers = [x for x in log.splitlines() if x.startswith(("ANSWER", "REFUSED"))]
    assert len(answers) == 2 and all(a.startswith("REFUSED") for a in answers), log
    seen = seen_by(ws / ".cockpit" / "t" / "runs" / "0002" / "run.log")
    if sandbox == "off":  # it has the human's rights: it reads, but the socket says no
        refused = [e for e in events if e["event"] == "client_refused"]
        assert refused and "a process of run t-e2-" in refused[0]["who"]
        return
    assert seen.pop("worktrees") == ["w0"]  # its own, and no other run's
    for name, text in seen.items():  # in the sandbox, none of it is even there
        assert str(text).startswith("unreadable"), (name, text)
    assert "TOKEN123" not in log


def test_a_client_holding_the_key_inside_a_sandbox_is_refused(tmp_path):
    """The key is not the only line of defence: a client that has the key and a way to
    the socket, but runs in a run's sandbox (or carries a run's marker), gets nothing."""
    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN.replace(
        "SEED = 42", "SEED = 42\ntime.sleep(0.5)"))
    started = cockpit("run", "--detach", "--review", "--tag", "k", cwd=ws)
    assert started.returncode == 0, started.stderr
    try:
        info = read_session(ws)
        key = Path(info.key_file).read_text().strip()
        client = textwrap.dedent(f"""\
            import json
            from multiprocessing.connection import Client
            try:
                c = Client({info.socket!r}, family="AF_UNIX", authkey={key.encode()!r})
                c.send_bytes(json.dumps({{"op": "auto_approve", "on": True, "version": 1}}).encode())
                print("ANSWER", c.recv_bytes().decode())
            except BaseException as exc:
                print("REFUSED", type(exc).__name__)
            """)  # noqa: E501 embedded client script kept verbatim
        (tmp_path / "client.py").write_text(client)
        work = tmp_path / "work"
        work.mkdir()
        (work / "client.py").write_text(client)
        run_dir = Path(info.socket).parent
        variants = {"off": None}
        if available()[0]:
            policy = SandboxPolicy.for_run(work)
            policy.exposed.append(run_dir)  # as if the socket were in sight
            policy.concealed.clear()
            variants["sandbox"] = policy
        for name, policy in variants.items():
            log = tmp_path / f"{name}.log"
            LocalRunner().run(f"{sys.executable} client.py", cwd=work, log_path=log,
                              timeout=30, env=training_env(), sandbox=policy)
            assert log.read_text().startswith("REFUSED"), (name, log.read_text())
        # the same client, as the human runs it: the control (the test can fail)
        mine = subprocess.run([sys.executable, str(tmp_path / "client.py")],
                              capture_output=True, text=True, timeout=30)
        assert mine.stdout.startswith("ANSWER") and '"ok":true' in mine.stdout
        refused = [e["who"] for e in read_journal(ws, "k") if e["event"] == "client_refused"]
        assert any("a process of run" in who for who in refused)
        if "sandbox" in variants:
            assert any("namespace" in who for who in refused), refused
    finally:
        info = read_session(ws)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)


# -- secrets stay out of runs -----------------------------------------------------------------
SNOOP = """\
import json, os, subprocess
found = {{"env": {{k: v for k, v in os.environ.items() if "TOKEN" in v or "topic" in v}}}}
for path in ("cockpit.toml", os.path.expanduser("~/.config/cockpit/notify"),
             os.path.join({ws!r}, "cockpit.toml")):
    try:
        found[path] = open(path).read()
    except OSError as exc:
        found[path] = "unreadable: " + type(exc).__name__
show = subprocess.run(["git", "show", "HEAD:cockpit.toml"], capture_output=True, text=True)
found["git show"] = show.stdout or show.stderr[:80]
print("FOUND " + json.dumps(found))
"""


@pytest.mark.slow
@pytest.mark.skipif(not available()[0], reason="no sandbox on this machine")
def test_notification_secrets_never_reach_a_run(tmp_path, monkeypatch):
    """URLs in COCKPIT_NOTIFY_URLS and ~/.config/cockpit/notify work and no run sees them;
    one left in a committed cockpit.toml is hidden from sandboxed runs, and doctor warns."""
    from test_notify import Receiver

    receiver = Receiver()
    try:
        home = tmp_path / "home"
        (home / ".config" / "cockpit").mkdir(parents=True)
        (home / ".config" / "cockpit" / "notify").write_text(
            "# mine\n" + receiver.url().replace("hook", "file") + "\n")
        env_url = receiver.url().replace("hook", "env").replace("s3cretT0ken", "topicTOKEN2")
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("COCKPIT_NOTIFY_URLS", env_url)
        toml = (f'[notify]\nurls = ["{receiver.url()}"]\nevents = ["best"]\n'
                '[judge]\nbaseline_runs = 0\n')
        ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": toml})
        snoop = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003").replace(
            "SEED = 42", "SEED = 42\n" + SNOOP.format(ws=str(ws)))
        from support import ScriptedAgent

        from cockpit.cli.main import notifier_of
        from cockpit.session.coordinator import Coordinator
        from cockpit.session.server import serve_session
        from cockpit.workspace.config import load_config

        config = load_config(ws)
        coordinator = Coordinator(ws, config, "s", agent=ScriptedAgent(snoop))
        ending = serve_session(coordinator, 2, background=False,
                               companions=[notifier_of(ws, config, "s")])  # as `cockpit run`
        assert ending.code == 0, ending.why
        wait_for(lambda: len({p["path"] for p in receiver.posts}) == 3, timeout=20,
                 what="the news at each of the three URLs")
        log = (ws / ".cockpit" / "s" / "runs" / "0002" / "run.log").read_text()
        found = json.loads(next(x for x in log.splitlines() if x.startswith("FOUND "))[6:])
        assert found.pop("env") == {}
        assert "TOKEN" not in json.dumps(found) and "s3cret" not in json.dumps(found), found
        doctor = cockpit("doctor", cwd=ws, env={"HOME": str(home)}, timeout=180)
        assert "[notify] urls in cockpit.toml, which git tracks" in doctor.stdout
        assert "s3cret" not in doctor.stdout + doctor.stderr
        assert "(COCKPIT_NOTIFY_URLS[1])" in doctor.stdout
        assert "(~/.config/cockpit/notify:2)" in doctor.stdout
    finally:
        receiver.close()


# -- siblings found by a hostile pass ---------------------------------------------------------
@pytest.mark.skipif(not available()[0], reason="no sandbox on this machine")
def test_a_dotenv_of_the_humans_is_never_linked_into_a_run(tmp_path):
    """share = "auto" links ignored directories (a .venv), never a file such as .env."""
    from support import ScriptedAgent, run_session

    ws = make_workspace(tmp_path / "ws", extra={".gitignore": ".env\n.venv/\n"})
    (ws / ".env").write_text("OPENAI_API_KEY=SECRET-1234567890\n")
    (ws / ".venv").mkdir()
    (ws / ".venv" / "marker").write_text("the environment\n")
    peek = FAKE_TRAIN.replace("SEED = 42", "SEED = 42\nfor name in ('.env', '.venv/marker'):\n"
                              "    try:\n        print(name, open(name).read())\n"
                              "    except OSError as exc:\n        print(name, 'unreadable')\n")
    config = Config()
    config.judge.baseline_runs = 0
    _coordinator, _ending = run_session(ws, 2, agent=ScriptedAgent(peek.replace("0.01", "0.003")),
                                      config=config)
    log = (ws / ".cockpit" / "t" / "runs" / "0002" / "run.log").read_text()
    assert ".env unreadable" in log and "SECRET" not in log
    assert ".venv/marker the environment" in log  # what a run needs is still there


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_run_that_swaps_its_venv_link_fools_no_later_run(tmp_path, sandbox):
    """A run replaces its worktree's link to the shared .venv with a directory of its own
    (a fake interpreter printing a great result): the next run gets the real link back."""
    from support import ScriptedAgent, run_session

    ws = make_workspace(tmp_path / "ws", extra={".gitignore": ".venv/\n"})
    (ws / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, ws / ".venv" / "bin" / "python")
    plant = ("os.remove('.venv'); os.makedirs('.venv/bin')\n"
             "open('.venv/bin/python', 'w').write('#!/bin/sh\\necho ---\\n"
             "echo \"val_bpb: 0.500000\"\\n')\n"
             "os.chmod('.venv/bin/python', 0o755)\nraise SystemExit('planted')\n")
    swap = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.5").replace(
        "SEED = 42", "SEED = 42\n" + plant)
    config = Config()
    config.judge.baseline_runs = 0
    config.sandbox.mode = sandbox
    config.experiment.train_command = ".venv/bin/python train.py"
    coordinator, _ending = run_session(ws, 3, agent=ScriptedAgent(swap, FAKE_TRAIN.replace(
        "0.01", "0.02")), config=config)
    third = coordinator.state.experiments[2]
    assert third.metric is not None and third.metric > 1.0, third  # the real python ran it


def test_the_control_socket_refuses_a_client_deeper_than_it_looks(tmp_path):
    """A run's process at the bottom of a chain longer than the ancestor walk is refused."""
    from cockpit.runners.processes import MAX_ANCESTORS, run_of

    chain = tmp_path / "chain.sh"
    chain.write_text(f'n=$1\nif [ "$n" -gt 0 ]; then exec /usr/bin/env -i /bin/sh -c '
                     f'"/bin/sh {chain} $((n-1)); true"; fi\necho $$ > {tmp_path}/pid\n'
                     'sleep 30\n')  # every level clears its environment (and the marker)
    top = subprocess.Popen(["/usr/bin/env", f"COCKPIT_RUN=deep-{os.getpid()}", "/bin/sh",
                            str(chain), str(MAX_ANCESTORS + 20)])
    try:
        pid = int(wait_for(lambda: (tmp_path / "pid").exists() and
                           (tmp_path / "pid").read_text().strip(), what="the chain's bottom"))
        assert run_of(pid).startswith(f"a process more than {MAX_ANCESTORS} levels deep")
        assert run_of(os.getpid()) == ""  # the test itself is a client like any other
    finally:
        top.kill()
        subprocess.run(["pkill", "-f", str(chain)])
