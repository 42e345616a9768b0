"""The llm agent through the real litellm client, against a scripted OpenAI-compatible server
on 127.0.0.1, driving the real loop on real git repos."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import git
import pytest
from llm_server import ScriptedLLMServer, Turn  # first: keeps litellm offline
from support import FAKE_TRAIN, cockpit, free_port, make_workspace, read_journal, results_rows

from cockpit.agents import AgentError
from cockpit.domain.exits import EXIT_PAUSED, EXIT_USER
from cockpit.session.coordinator import Coordinator, SessionError
from cockpit.workspace.config import Config

MODEL = "openai/gpt-4o-mini"  # priced in litellm's bundled cost map, served by the script


def edit(search: str, replace: str, path: str = "train.py", description: str = "LR 0.01 -> 0.003",
         hypothesis: str = "A lower learning rate is closer to the optimum.") -> str:
    return (f"HYPOTHESIS: {hypothesis}\nDESCRIPTION: {description}\n\n{path}\n```python\n"
            f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")


GOOD = edit("LEARNING_RATE = 0.01  # step size\n", "LEARNING_RATE = 0.003  # step size\n")
MISSING = edit("LEARNING_RATE = 0.5\n", "LEARNING_RATE = 0.003\n")
PREPARE = edit("VAL = 1\n", "VAL = 2\n", path="prepare.py")
SYNTAX = edit("BATCH_SIZE = 16  # sequences per step\n", "BATCH_SIZE = (16\n")
GARBAGE = "Sure! I would try making the model bigger, it usually helps."
WHOLE = ("HYPOTHESIS: bigger batches smooth the gradient\nDESCRIPTION: batch 16 -> 32\n\n"
         "```python\n"
         + FAKE_TRAIN.replace("BATCH_SIZE = 16", "BATCH_SIZE = 32") + "```\n")
CRASHING = edit("SEED = 42\n",
                'SEED = 42\nLEARNING_RATE = 0.003\n'
                'raise RuntimeError("shape mismatch in block 3")\n',
                description="LR 0.003 (with a bug)")
REPAIR = edit('raise RuntimeError("shape mismatch in block 3")\n', "",
              description="LR 0.003, bug fixed")


def llm_config(server: ScriptedLLMServer, **agent) -> Config:
    config = Config()
    config.agent.kind = "llm"
    config.agent.model = MODEL
    config.agent.api_base = server.api_base
    config.agent.backoff = 0.01
    config.agent.request_timeout = 10.0
    for key, value in agent.items():
        setattr(config.agent, key, value)
    return config


def run(ws, server, experiments, on_event=None, **agent):
    """The coordinator with the llm agent; on_event(kind, event) sees each journal event."""
    loop = Coordinator(ws, llm_config(server, **agent), "t")
    if on_event is not None:
        loop.observers.append(lambda m: [on_event(e["event"], e) for e in m["events"]]
                              if m["type"] == "journal" else None)
    ending = loop.run(experiments)
    loop.ending = ending
    return loop, ending.why


def branch_file(ws, name: str = "train.py") -> str:
    """The session's best version of a file (the human's checkout never changes)."""
    return git.Repo(ws).git.show(f"autoresearch/t:{name}") + "\n"


def events(ws, kind):
    return [e for e in read_journal(ws, "t") if e["event"] == kind]


def user_text(request: dict) -> str:
    return request["messages"][-1]["content"]


@pytest.mark.slow
def test_good_edit_is_committed_and_program_md_is_re_read(tmp_path):
    ws = make_workspace(tmp_path / "ws")

    def steer(kind, data):  # the human edits program.md once the first answer came back
        if kind == "attempt" and data["n"] == 2:
            (ws / "program.md").write_text("# program\nNEW DIRECTION: try batch sizes.\n")

    with ScriptedLLMServer(GOOD, WHOLE) as server:
        loop, why = run(ws, server, 3, on_event=steer)
    assert why == "ran 3 experiments as asked"
    first, second = (user_text(r) for r in server.requests)
    assert "Make val_bpb low." in first and "LEARNING_RATE = 0.01  # step size" in first
    assert "NEW DIRECTION" not in first and "NEW DIRECTION: try batch sizes." in second
    assert "LR 0.01 -> 0.003" in second  # the history carries the last experiment
    exp = loop.state.experiments[1]
    assert exp.description == "LR 0.01 -> 0.003" and exp.status == "keep"
    assert "+LEARNING_RATE = 0.003  # step size" in exp.diff
    assert git.Repo(ws).commit(exp.commit).message.strip() == "LR 0.01 -> 0.003"
    attempts = events(ws, "attempt")
    assert [a["accepted"] for a in attempts] == [True, True]
    assert [a["format"] for a in attempts] == ["blocks", "whole file"]
    assert all(a["prompt_tokens"] > 0 and a["cost_usd"] > 0 for a in attempts)
    proposal = next(e for e in events(ws, "proposal") if e["n"] == 2)
    assert proposal["usage"]["cost_usd"] == pytest.approx(attempts[0]["cost_usd"])
    assert loop.state.cost_usd == pytest.approx(sum(a["cost_usd"] for a in attempts))
    assert [r[3] for r in results_rows(ws)] == ["keep", "keep", "discard"]


@pytest.mark.slow
def test_refused_answers_go_back_with_the_problem_and_never_touch_the_tree(tmp_path):
    prepare = "VAL = 1\nprint('data ready')\n"
    ws = make_workspace(tmp_path / "ws", extra={"prepare.py": prepare})
    seen = []

    def watch(kind, data):  # the working tree at the moment each attempt is journaled
        if kind == "attempt":
            seen.append((ws / "train.py").read_text())

    with ScriptedLLMServer(MISSING, PREPARE, SYNTAX, GOOD) as server:
        loop, _why = run(ws, server, 2, on_event=watch, max_attempts=4)
    attempts = events(ws, "attempt")
    assert [a["accepted"] for a in attempts] == [False, False, False, True]
    problems = [a["problem"] for a in attempts[:3]]
    assert ("SEARCH text is not in the file" in problems[0]
            and "'LEARNING_RATE = 0.5'" in problems[0])
    assert "the edits touch prepare.py; only train.py may change" in problems[1]
    assert "train.py would not parse" in problems[2]
    for request, problem in zip(server.requests[1:], problems):
        assert problem in user_text(request)  # sent back, exactly
        assert request["messages"][-2]["role"] == "assistant"
    assert all(a["answer"] for a in attempts)  # what the model said is kept
    assert seen == [FAKE_TRAIN] * 4  # nothing reached the working tree before acceptance
    assert (ws / "prepare.py").read_text() == prepare
    repo = git.Repo(ws)
    assert len(list(repo.iter_commits("autoresearch/t"))) == 2  # the start and the accepted change
    assert loop.state.experiments[1].description == "LR 0.01 -> 0.003"


def test_garbage_then_whole_file(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(GARBAGE, WHOLE) as server:
        _loop, _ = run(ws, server, 2)
    attempts = events(ws, "attempt")
    assert "found no SEARCH/REPLACE blocks" in attempts[0]["problem"]
    assert attempts[1]["accepted"] and attempts[1]["format"] == "whole file"
    assert "BATCH_SIZE = 32" in branch_file(ws)


def test_refused_rounds_pause_a_headless_run_with_the_reason(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(SYNTAX, GARBAGE, SYNTAX) as server:
        loop, why = run(ws, server, 5, max_attempts=1)
    assert why.startswith("paused: 3 proposals in a row failed; the last: 1 answers in a row")
    assert "would not parse" in why and loop.ending.code == EXIT_PAUSED
    assert len(events(ws, "proposal_failed")) == 3
    assert events(ws, "paused")[0]["kind"] == "proposals"
    assert [r[3] for r in results_rows(ws)] == ["keep"]
    assert not git.Repo(ws).is_dirty() and (ws / "train.py").read_text() == FAKE_TRAIN
    assert branch_file(ws) == FAKE_TRAIN


def test_rate_limit_backs_off_and_retries(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(Turn(status=429), Turn(status=503), GOOD) as server:
        loop, why = run(ws, server, 2)
    retries = events(ws, "retry")
    assert [r["retry"] for r in retries] == [1, 2]
    assert "rate limited (429)" in retries[0]["reason"] and retries[1]["wait"] == 0.02
    assert loop.state.experiments[1].status == "keep" and why == "ran 2 experiments as asked"


@pytest.mark.slow
def test_slow_answers_past_the_timeout_pause_instead_of_burning_experiments(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(Turn(GOOD, delay=2), Turn(GOOD, delay=2)) as server:
        start = time.monotonic()
        _loop, why = run(ws, server, 5, request_timeout=0.4, retries=1)
    assert why == (f"paused: model {MODEL} failed after 2 tries: no answer within 0.4 s "
                   "(request_timeout)")
    assert time.monotonic() - start < 10
    assert len(results_rows(ws)) == 1 and events(ws, "paused")[0]["kind"] == "provider"


def test_unreachable_api_base_pauses_with_the_address(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    port = free_port()
    config = Config()
    config.agent.kind, config.agent.model = "llm", MODEL
    config.agent.api_base, config.agent.retries, config.agent.backoff = \
        f"http://127.0.0.1:{port}/v1", 1, 0.01
    why = Coordinator(ws, config, "t").run(3).why
    assert why.startswith(f"paused: model {MODEL} failed after 2 tries: ")
    assert f"127.0.0.1:{port}" in why or "connect" in why.lower()


def test_bad_key_is_one_line_not_a_traceback(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(Turn(status=401)) as server:
        loop, why = run(ws, server, 3)
    assert loop.ending.code == EXIT_USER
    assert re.match(r"^llm agent: model openai/gpt-4o-mini at http.*refused the key .*check the "
                    r"provider's API key", why), why


def test_crash_is_repaired_with_the_log_tail(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer(CRASHING, REPAIR) as server:
        loop, _why = run(ws, server, 3)
    statuses = [e.status for e in loop.state.experiments]
    assert statuses == ["keep", "crash", "keep"]
    repair_request = user_text(server.requests[1])
    assert ("Task: repair a crash" in repair_request
            and "shape mismatch in block 3" in repair_request)
    assert "the crashed version of #2" in repair_request
    assert 'raise RuntimeError("shape mismatch in block 3")' in repair_request  # the crashed file
    fixed = loop.state.experiments[2]
    assert fixed.repair_of == 2 and fixed.description == "LR 0.003, bug fixed"
    # The fix is committed on the best commit (the baseline): the crash is not in its history.
    repo = git.Repo(ws)
    assert repo.commit(fixed.commit).parents[0].hexsha == loop.state.experiments[0].commit
    assert "raise" not in branch_file(ws) and "LEARNING_RATE = 0.003" in branch_file(ws)
    assert [e["repair_of"] for e in events(ws, "proposal")] == [None, None, 2]


def test_idea_is_abandoned_after_its_repairs_crash(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    still = edit('raise RuntimeError("shape mismatch in block 3")\n',
                 'raise RuntimeError("still broken")\n', description="LR 0.003, second try")
    with ScriptedLLMServer(CRASHING, still, GOOD) as server:
        loop, _why = run(ws, server, 4, repair_attempts=1)
    assert [e.status for e in loop.state.experiments] == ["keep", "crash", "crash", "keep"]
    assert loop.state.experiments[2].repair_of == 2
    abandoned = events(ws, "abandoned")
    assert [a["n"] for a in abandoned] == [2] and "still broken" in abandoned[0]["reason"]
    assert "Task: repair" not in user_text(server.requests[2])  # a new idea, not a third fix


@pytest.mark.slow
def test_cost_limit_pauses_the_cli_with_its_exit_code(tmp_path):
    with ScriptedLLMServer(GOOD) as server:
        toml = (f'[agent]\nkind = "llm"\nmodel = "{MODEL}"\napi_base = "{server.api_base}"\n'
                "max_cost_usd = 0.000001\n")
        ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": toml})
        result = cockpit("run", "--headless", "--experiments", "5", cwd=ws,
                         env={"OPENAI_API_KEY": "sk-never-leaves-this-machine"})
    assert result.returncode == 3, result.stderr
    assert ("paused: the model cost $" in result.stdout
            and "reached max_cost_usd $0.00" in result.stdout)
    assert "Model cost: $" in result.stdout
    assert len(results_rows(ws)) == 2 and len(server.requests) == 1


def test_no_model_is_one_line_from_the_cli(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    result = cockpit("run", "--headless", "--agent", "llm", cwd=ws)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cockpit: the llm agent needs a model: set [agent] model in cockpit.toml or pass --model "
        "(e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, ollama/qwen2.5-coder)"]


def test_missing_key_is_named_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ws = make_workspace(tmp_path / "ws")
    config = Config()
    config.agent.kind, config.agent.model = "llm", "anthropic/claude-sonnet-4-5"
    with pytest.raises(SessionError, match="ANTHROPIC_API_KEY is not set; export it"):
        Coordinator(ws, config, "t").run(2)
    assert not (ws / "results.tsv").exists()


def test_tune_agent_never_imports_litellm():
    code = ("import sys; import cockpit.cli.main, cockpit.session.coordinator; "
            "from cockpit.agents import make_agent; "
            "from cockpit.workspace.config import Config; make_agent(Config()); "
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.slow
def test_doctor_checks_the_model_with_one_tiny_request(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with ScriptedLLMServer("ok", Turn(status=404)) as server:
        good = cockpit("doctor", "--agent", "llm", "--model", MODEL, "--api-base", server.api_base,
                       cwd=ws)
        from cockpit.cli.doctor import Report, check_model

        config = llm_config(server)
        with open(tmp_path / "out.txt", "w") as stream:
            report = Report(stream=stream)
            check_model(report, config)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"ok    model      {MODEL} at {server.api_base} answered 'ok'" in good.stdout
    assert "ok    workspace" in good.stdout and "device" in good.stdout
    assert server.requests[0]["max_tokens"] == 5
    bad = (tmp_path / "out.txt").read_text()
    assert (bad.startswith("FIX   model      model openai/gpt-4o-mini at http")
            and "not found" in bad)
    assert report.fixes == 1


def test_llm_agent_refuses_an_empty_model():
    from cockpit.agents.llm import LLMAgent

    with pytest.raises(AgentError, match="needs a model"):
        LLMAgent(Config().agent)
