"""The search tree, through real sessions: lines opened by the human (`cockpit branch N`,
`b` on a timeline row) and by the session on a plateau, each judged against its own best on
its own branch, side by side on two workers, finalized one line at a time, and rebuilt from
the journal after a kill."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

import git
import pytest
from support import (
    FAKE_TRAIN,
    cockpit,
    live_journal,
    make_workspace,
    read_journal,
    results_rows,
    run_session,
    wait_for,
)

from cockpit.client.connection import request
from cockpit.domain.proposals import Proposal
from cockpit.workspace.config import Config
from cockpit.workspace.lock import read_session

# val_bpb = 1 - BONUS: a change's gain is what it adds to BONUS.
BONUS_TRAIN = re.sub(r"^val = .*$", "val = 1.0 - BONUS", FAKE_TRAIN.replace(
    "SEED = 42", "SEED = 42\nBONUS = 0.0"), flags=re.M)
SLOW_BONUS = BONUS_TRAIN.replace("SEED = 42", "SEED = 42\ntime.sleep(0.6)")
BONUS = re.compile(r"^BONUS = (-?[0-9.]+)$", re.M)


def bonus_of(source: str) -> float:
    found = BONUS.search(source)
    assert found is not None, source
    return float(found.group(1))


class Shim:
    """An agent that adds a step to BONUS in the file it is given (its line's best), so what
    it proposes builds on its base, as a real agent's change does. Steps are listed per
    BONUS of the base: a proposal the session makes ahead of a result (just in time for a
    worker) takes its base's next step, whenever it comes; past the list, `then`."""

    name = "shim"

    def __init__(self, steps: dict[float, list[float]], then: float = -0.05) -> None:
        self.steps = {base: list(values) for base, values in steps.items()}
        self.then = then
        self.lock = threading.Lock()

    def propose(self, ctx) -> Proposal:
        base = bonus_of(ctx.source)
        with self.lock:
            left = self.steps.get(base) or []
            step = left.pop(0) if left else self.then
        value = round(base + step, 6)
        return Proposal(description=f"BONUS {value}", hypothesis="a test's step",
                        source=BONUS.sub(f"BONUS = {value}", ctx.source))


def fixed_bar(plateau: int = 0, workers_config: Config | None = None) -> Config:
    """A bar with no noise floor: a keep needs a gain above 0.05; a smaller gain is a
    near-miss (deterministic, unlike a measured floor)."""
    config = workers_config or Config()
    config.judge.baseline_runs = 1
    config.judge.min_delta = 0.05
    config.judge.second_look = 0.0
    config.research.plateau = plateau
    return config


def committed(ws: Path, train: str) -> Path:
    repo = git.Repo(ws)
    (ws / "train.py").write_text(train)
    repo.git.commit("-qam", "the bonus train.py")
    return ws


def proposals(ws: Path, tag: str = "t") -> dict[int, dict]:
    return {e["n"]: e for e in read_journal(ws, tag) if e["event"] == "proposal"}


def on_line(state, k: int) -> list:
    return [e for e in state.experiments if e.line == k]


def line_one_awaiting(coordinator) -> int | None:
    """A proposal on line 1 awaiting approval; one made for line 0 before the line opened
    (just in time for the worker) is rejected on the way: it would hold the next."""
    for n in coordinator.command("status")["live"]["awaiting"]:
        if coordinator.state.get(n).line == 1:
            return n
        coordinator.command("reject", n=n)
    return None


def test_a_plateau_branches_from_the_strongest_near_miss_judged_on_its_own_line(tmp_path):
    ws = committed(make_workspace(tmp_path / "ws"), BONUS_TRAIN)
    # line 0 never improves enough: worse, a near-miss (+0.02), a smaller near-miss, worse;
    # line 1, from #3 (BONUS 0.02): +0.04 (a near-miss against line 1's best, though it
    # beats line 0's best by 0.06), then +0.07 (a keep on line 1)
    agent = Shim({0.0: [-0.01, 0.02, 0.01, -0.03], 0.02: [0.04, 0.07]})
    coordinator, ending = run_session(ws, 8, agent=agent, config=fixed_bar(plateau=4))
    assert ending.code == 0, ending.why
    state = coordinator.state
    [branch] = [e for e in read_journal(ws, "t") if e["event"] == "branch"]
    assert branch["line"] == 1 and branch["from_n"] == 3 and branch["left"] == 0
    assert branch["why"].startswith("plateau: line 0 kept nothing in 4 experiments")
    assert "strongest near-miss #3" in branch["why"]
    # line 0 gets no new proposal once left (one made ahead of #5's result may still run)
    assert len([e for e in on_line(state, 0) if e.n > 5]) <= 1
    six, seven = on_line(state, 1)[:2]
    repo = git.Repo(ws)
    # line 1 builds on #3's commit, and is judged against #3 (its best), not #1
    assert repo.commit(six.commit).parents[0].hexsha == state.get(3).commit
    assert six.status == "discard" and six.bar == pytest.approx(0.98)
    assert six.delta_best == pytest.approx(0.94 - 0.98)
    assert seven.status == "keep" and seven.bar == pytest.approx(0.98)
    # each line on its own branch, at its own best; the session's best is the best of both
    assert repo.commit("autoresearch/t").hexsha == state.get(1).commit
    assert repo.commit("autoresearch/t-1").hexsha == seven.commit
    assert state.line_best(0) is state.get(1) and state.best is seven
    assert not state.lines[0].open and state.lines[1].open
    # the records say the line, results.tsv keeps the reference's five columns
    rows = {row[0]: row for row in results_rows(ws)}
    assert all(len(row) == 5 for row in rows.values())
    assert rows[seven.commit[:7]][3:] == ["keep", "[line 1] BONUS 0.09"]
    md = (ws / "experiments.md").read_text()
    assert f"## {seven.n}. [line 1] BONUS 0.09" in md and "| 1 | autoresearch/t-1 | #3" in md


def test_without_a_near_miss_a_plateau_goes_back_to_an_earlier_best_left_too_soon(tmp_path):
    ws = committed(make_workspace(tmp_path / "ws"), BONUS_TRAIN)
    # #2 keeps at once (the baseline, #1, had one or two tries), then discards on #2
    agent = Shim({0.0: [0.1, 0.06, 0.06], 0.1: [-0.01, -0.02, -0.03]})
    coordinator, ending = run_session(ws, 7, agent=agent, config=fixed_bar(plateau=3))
    assert ending.code == 0, ending.why
    state = coordinator.state
    [branch] = [e for e in read_journal(ws, "t") if e["event"] == "branch"]
    assert branch["from_n"] == 1
    assert re.search(r"from #1, an earlier best left after [12] tries", branch["why"])
    first = on_line(state, 1)[0]
    assert first.status == "keep" and first.bar == pytest.approx(1.0)
    assert state.best is state.get(2)  # 0.90 on line 0 is still the session's best
    assert git.Repo(ws).commit("autoresearch/t-1").hexsha == state.line_best(1).commit


class DryShim(Shim):
    """The Shim, out of moves (AgentExhausted, as the tune agent says it) once a base's
    steps are used."""

    def propose(self, ctx) -> Proposal:
        from cockpit.agents.base import AgentExhausted

        with self.lock:
            if not self.steps.get(bonus_of(ctx.source)):
                raise AgentExhausted("the shim has tried every step it knows")
        return super().propose(ctx)


def test_an_agent_out_of_moves_branches_before_it_stalls(tmp_path):
    """No idle night: out of moves on line 0, the session opens a line from its strongest
    near-miss (no plateau needed); out of moves there too, with nowhere new to go, it
    pauses for a human (never ends)."""
    ws = committed(make_workspace(tmp_path / "ws"), BONUS_TRAIN)
    agent = DryShim({0.0: [-0.01, 0.02], 0.02: [0.07]})
    coordinator, ending = run_session(ws, 20, agent=agent, config=fixed_bar(plateau=0))
    [branch] = [e for e in read_journal(ws, "t") if e["event"] == "branch"]
    assert branch["from_n"] == 3 and branch["left"] == 0
    assert branch["why"].startswith("line 0: the agent has no move left")
    state = coordinator.state
    assert [e.status for e in on_line(state, 1)] == ["keep"]
    assert state.best is on_line(state, 1)[0]
    paused = [e for e in read_journal(ws, "t") if e["event"] == "paused"]
    assert [p["kind"] for p in paused] == ["exhausted"] and ending.code == 3, ending.why


def test_a_proposal_left_on_a_line_runs_on_it_after_a_resume(tmp_path):
    from cockpit.session.coordinator import Coordinator

    ws = committed(make_workspace(tmp_path / "ws"), BONUS_TRAIN)
    agent = Shim({0.0: [-0.01, 0.02], 0.02: [0.07]})
    coordinator = Coordinator(ws, fixed_bar(plateau=2), "t", agent=agent, auto_approve=False)
    thread = threading.Thread(target=coordinator.run, daemon=True)
    thread.start()

    def waiting() -> list[int]:
        return coordinator.command("status")["live"]["awaiting"]

    for n in (2, 3):
        wait_for(lambda n=n: n in waiting(), what=f"#{n}")
        assert coordinator.command("approve", n=n)["ok"]
    wait_for(lambda: 1 in coordinator.state.lines, what="the plateau's line")
    on_one = wait_for(lambda: line_one_awaiting(coordinator), what="a proposal on line 1")
    coordinator.command("stop")
    thread.join(30)
    again, ending = run_session(ws, 1, agent=Shim({}), config=fixed_bar(plateau=2))
    assert ending.code == 0, ending.why
    left = again.state.get(on_one)  # offered again as it was: on line 1, judged against #3
    assert left.line == 1 and left.status == "keep" and left.bar == pytest.approx(0.98)
    repo = git.Repo(ws)
    assert repo.commit(left.commit).parents[0].hexsha == again.state.get(3).commit
    assert repo.commit("autoresearch/t-1").hexsha == left.commit
    assert repo.commit("autoresearch/t").hexsha == again.state.get(1).commit


def test_a_line_from_a_single_run_waits_for_its_re_run_like_a_keep(tmp_path):
    """Its origin is the best of many draws too: re-run (keep_reruns) before anything on the
    line is judged against it."""
    from cockpit.session.coordinator import Coordinator

    # the origin's runs take longest: on two workers its re-run would end after the line's
    # first result, were that result not held for it
    slow_origin = BONUS_TRAIN.replace("print(\"---\")",
                                      "time.sleep(2 if BONUS == 0.02 else 0)\nprint(\"---\")")
    ws = committed(make_workspace(tmp_path / "ws"), slow_origin)
    config = Config()
    config.runner.kind, config.runner.workers = "gpus", 2
    config = fixed_bar(workers_config=config)
    config.judge.baseline_runs = 2  # a noise floor (re-runs agree exactly here)
    agent = Shim({0.0: [0.02], 0.02: [0.07]})
    coordinator = Coordinator(ws, config, "t", agent=agent, auto_approve=False)
    thread = threading.Thread(target=coordinator.run, daemon=True)
    thread.start()

    def waiting() -> list[int]:
        return coordinator.command("status")["live"]["awaiting"]

    wait_for(lambda: 2 in waiting(), what="#2")
    coordinator.command("approve", n=2)
    wait_for(lambda: coordinator.state.get(2).finished, what="#2's result")
    assert coordinator.command("branch", n=2)["ok"]
    on_one = wait_for(lambda: line_one_awaiting(coordinator), what="a proposal on line 1")
    coordinator.command("approve", n=on_one)
    wait_for(lambda: coordinator.state.get(on_one).finished, what="its result")
    coordinator.command("stop", now=True)
    thread.join(30)
    events = read_journal(ws, "t")
    two = coordinator.state.get(2)
    rerun = next(i for i, e in enumerate(events) if e["event"] == "measure"
                 and e["purpose"] == "branch" and e["commit"] == two.commit)
    judged = next(i for i, e in enumerate(events) if e["event"] == "result"
                  and e["n"] == on_one)
    assert rerun < judged
    first = coordinator.state.get(on_one)
    assert first.status == "keep" and first.bar_runs == 2 and first.bar == pytest.approx(0.98)


@pytest.fixture(scope="module")
def two_lines(tmp_path_factory):
    """A finished session: line 0 plateaus after #3 (a near-miss), line 1 from #3 keeps
    BONUS 0.09 on its second try."""
    ws = committed(make_workspace(tmp_path_factory.mktemp("tree") / "ws"), BONUS_TRAIN)
    agent = Shim({0.0: [-0.01, 0.02], 0.02: [-0.02, 0.07]})
    coordinator, ending = run_session(ws, 6, agent=agent, config=fixed_bar(plateau=2))
    assert ending.code == 0, ending.why
    return ws, coordinator.state


def test_finalize_a_line(two_lines):
    ws, state = two_lines
    kept = on_line(state, 1)[1]
    assert state.lines[1].origin is state.get(3) and kept.status == "keep"
    done = cockpit("finalize", "--line", "1", "--tag", "t", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "branch autoresearch/t-1-final: 2 commits" in done.stdout and "of line 1" in done.stdout
    repo = git.Repo(ws)
    final = repo.commit("autoresearch/t-1-final")
    # the origin (a near-miss of line 0), then line 1's keep; the tree is line 1's best's
    assert [c.message.splitlines()[0] for c in (final.parents[0], final)] == \
        ["BONUS 0.02", "BONUS 0.09"]
    assert "line 1 started from it" in final.parents[0].message
    assert final.parents[0].parents[0].hexsha == state.base
    assert final.tree.hexsha == repo.commit(kept.commit).tree.hexsha
    missing = cockpit("finalize", "--line", "4", "--tag", "t", cwd=ws)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "cockpit: session t has no line 4 (its lines: 0, 1)"]
    line0 = cockpit("finalize", "--tag", "t", cwd=ws)  # line 0 kept nothing after its baseline
    assert line0.returncode == 2 and "no kept improvement" in line0.stderr


def test_two_lines_run_side_by_side_on_two_workers(tmp_path):
    ws = committed(make_workspace(tmp_path / "ws"), SLOW_BONUS)
    agent = Shim({0.0: [-0.01, 0.02, -0.01]}, then=0.001)  # near-misses from then on
    config = Config()
    config.runner.kind, config.runner.workers = "gpus", 2
    from cockpit.session.coordinator import Coordinator

    coordinator = Coordinator(ws, fixed_bar(workers_config=config), "t", agent=agent)
    ending: list = []
    thread = threading.Thread(target=lambda: ending.append(coordinator.run(9)), daemon=True)
    thread.start()
    near = wait_for(lambda: next((e for e in coordinator.state.experiments
                                  if e.status == "discard" and e.metric < 1.0), None),
                    timeout=60, what="a near-miss on line 0")
    answer = coordinator.command("branch", n=near.n)
    assert answer["ok"] and answer["message"].startswith(f"line 1 from #{near.n}"), answer
    thread.join(120)
    assert ending and ending[0].code == 0, ending
    state = coordinator.state
    events = read_journal(ws, "t")
    at = next(i for i, e in enumerate(events) if e["event"] == "branch")
    after = [state.get(e["n"]) for e in events[at:] if e["event"] == "proposal"]
    assert {e.line for e in after} == {0, 1} and all(e.finished for e in after)
    # the two lines' runs overlapped in time, on both workers
    spans = {e["n"]: [e["time"], None] for e in events if e["event"] == "run_start"}
    for e in events:
        if e["event"] == "result" and e["n"] in spans:
            spans[e["n"]][1] = e["time"]
    by_line = {k: [spans[e.n] for e in after if e.line == k and e.n in spans] for k in (0, 1)}
    assert any(a[0] < b[1] and b[0] < a[1] for a in by_line[0] for b in by_line[1])
    assert {e.worker for e in after} == {0, 1}
    # each line judged against its own best: line 1's first result against #near
    first_on_1 = next(e for e in after if e.line == 1)
    assert first_on_1.bar == pytest.approx(state.mean_of(near))
    assert git.Repo(ws).commit(first_on_1.commit).parents[0].hexsha == near.commit
    repo = git.Repo(ws)
    for k in (0, 1):
        assert repo.commit("autoresearch/t" + (f"-{k}" if k else "")).hexsha == \
            state.line_best(k).commit


# -- the human's branch, from the command line, against a detached session ----------------
# A coding-agent CLI stand-in: each call sets LEARNING_RATE to the next of its values (in
# the file of the line it proposes for), or plants a crash.
SCRIPTED_CLI = '''\
import pathlib, re, sys
sys.stdin.read()
calls, values = pathlib.Path(sys.argv[1]), sys.argv[2].split(",")
n = len(calls.read_text().splitlines()) if calls.exists() else 0
calls.write_text("call\\n" * (n + 1))
value = values[min(n, len(values) - 1)]
train = pathlib.Path("train.py")
text = train.read_text()
if value == "crash":
    text = text.replace("SEED = 42", "SEED = 42\\nraise SystemExit('boom')")
else:
    text = re.sub(r"LEARNING_RATE = [0-9.e-]+", f"LEARNING_RATE = {value}", text)
train.write_text(text)
print("HYPOTHESIS: a test's scripted idea")
print(f"DESCRIPTION: LEARNING_RATE {value}")
'''
SLOW = FAKE_TRAIN.replace("SEED = 42",
                         "SEED = 42\ntime.sleep(float(os.environ.get('COCKPIT_SLOW', '0.2')))")
# val_bpb: LR 0.01 1.26 (the baseline); 0.003 1.0105 (a keep); 0.005 1.0496 (a discard);
# 0.004 1.0204: worse than line 0's best, better than #3, so a keep on a line from #3
VALUES = "0.003,0.005,0.02,0.004,crash"


@pytest.fixture
def detached(tmp_path):
    """A workspace whose agent is SCRIPTED_CLI, and a session started with `cockpit run
    --detach --review` (killed at the end if it still runs)."""
    started = []

    def start(slow: str = "0.2", values: str = VALUES):
        cli = tmp_path / "cli.py"
        cli.write_text(SCRIPTED_CLI)
        toml = ('[judge]\nbaseline_runs = 1\n[experiment]\nenv = ["COCKPIT_SLOW"]\n'
                f'[agent]\nkind = "command"\ncommand = "{sys.executable} {cli} '
                f'{tmp_path / "calls.txt"} {values}"\n')
        ws = make_workspace(tmp_path / "ws", train=SLOW, extra={"cockpit.toml": toml})
        result = cockpit("run", "--detach", "--review", "--tag", "d", cwd=ws,
                         env={"COCKPIT_SLOW": slow})
        assert result.returncode == 0, result.stderr
        started.append(ws)
        return ws

    yield start
    for ws in started:
        info = read_session(ws)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)


def finished(ws: Path, n: int) -> dict:
    return wait_for(lambda: next((e for e in live_journal(ws, "d") if e["event"] == "result"
                                  and e["n"] == n), None), timeout=60, what=f"#{n}'s result")


def awaiting(ws: Path, n: int) -> None:
    wait_for(lambda: n in request(ws, "status")["live"]["awaiting"], timeout=60,
             what=f"#{n} to await approval")


def approved(ws: Path, n: int) -> dict:
    awaiting(ws, n)
    answer = cockpit("approve", str(n), cwd=ws)
    assert answer.returncode == 0, answer.stderr
    return finished(ws, n)


def refused(answer, says: str) -> None:
    """A one-line refusal, exit 2."""
    assert answer.returncode == 2, answer.stdout + answer.stderr
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], answer.stderr


def branch_at_three(ws: Path) -> None:
    """#2 kept, #3 discarded, then `cockpit branch 3`; #4 (line 0's) rejected."""
    assert approved(ws, 2)["status"] == "keep"
    assert approved(ws, 3)["status"] == "discard"
    awaiting(ws, 4)
    made = cockpit("branch", "3", cwd=ws)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("line 1 from #3 (autoresearch/d-1)")
    assert cockpit("reject", "4", cwd=ws).returncode == 0


@pytest.mark.slow
def test_cockpit_branch_starts_a_line_judged_against_its_own_best(detached):
    ws = detached()
    assert approved(ws, 2)["status"] == "keep"
    assert approved(ws, 3)["status"] == "discard"
    awaiting(ws, 4)
    refused(cockpit("branch", "99", cwd=ws), "there is no experiment #99")
    refused(cockpit("branch", "4", cwd=ws), "#4 has not been judged yet")
    refused(cockpit("branch", "2", cwd=ws), "#2 is line 0's best")
    made = cockpit("branch", "3", cwd=ws)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("line 1 from #3 (autoresearch/d-1)")
    assert cockpit("reject", "4", cwd=ws).returncode == 0
    awaiting(ws, 5)
    events = live_journal(ws, "d")
    commits = {e["n"]: e["commit"] for e in events if e["event"] == "commit"}
    five = proposals(ws, "d")[5]
    assert five["line"] == 1 and five["base"] == commits[3]
    result = approved(ws, 5)
    # 1.020416 is worse than line 0's best (#2, 1.010524), better than line 1's (#3)
    assert result["status"] == "keep" and result["bar"] == pytest.approx(1.049589, abs=1e-5)
    repo = git.Repo(ws)
    assert repo.commit(result["commit"]).parents[0].hexsha == commits[3]
    assert repo.commit("autoresearch/d-1").hexsha == result["commit"]
    assert repo.commit("autoresearch/d").hexsha == commits[2]  # the line it left stays
    status = cockpit("status", cwd=ws).stdout
    assert "lines: 0 (autoresearch/d, best #2" in status
    assert "1 (autoresearch/d-1, from #3, best #5" in status
    assert results_rows(ws)[3][4] == "[line 1] LEARNING_RATE 0.004"
    assert proposals(ws, "d")[5]["line"] == 1
    awaiting(ws, 6)  # round-robin: line 0's turn, a crash
    assert proposals(ws, "d")[6]["line"] == 0
    assert approved(ws, 6)["status"] == "crash"
    refused(cockpit("branch", "6", cwd=ws), "#6 crashed: a line builds on a measured commit")

    def fix() -> dict | None:  # its fix goes on the crash's line, whoever's turn it was
        for n in request(ws, "status")["live"]["awaiting"]:
            if proposals(ws, "d")[n].get("repair_of") != 6:  # made before the crash
                cockpit("reject", str(n), cwd=ws)
        return next((e for e in proposals(ws, "d").values() if e.get("repair_of") == 6), None)

    assert wait_for(fix, timeout=60, what="the fix of #6")["line"] == 0
    assert cockpit("stop", "--now", cwd=ws).returncode == 0
    wait_for(lambda: read_session(ws) is None, timeout=60, what="the session to end")
    refused(cockpit("branch", "3", cwd=ws), "no cockpit session is running")


@pytest.mark.slow
def test_a_kill_mid_tree_loses_nothing(detached):
    # 0.004 after #5: a discard on line 0, a keep on line 1 (whichever call makes which)
    ws = detached(slow="3", values="0.003,0.005,0.02,0.004")
    branch_at_three(ws)
    awaiting(ws, 5)
    assert cockpit("approve", "5", cwd=ws).returncode == 0
    wait_for(lambda: any(e["event"] == "run_start" and e["n"] == 5
                         for e in live_journal(ws, "d")), timeout=30, what="#5 to run")
    os.kill(read_session(ws).pid, signal.SIGKILL)
    wait_for(lambda: not read_session(ws).alive, timeout=10, what="the session to die")
    repo = git.Repo(ws)
    three = repo.commit("refs/cockpit/d/3").hexsha
    # as a kill between journaling the line and making its branch would leave it
    repo.git.branch("-D", "autoresearch/d-1")
    again = cockpit("run", "--headless", "--experiments", "1", "--auto-approve", cwd=ws,
                    env={"COCKPIT_SLOW": "0.2"}, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    # the lines came back from the journal: line 1's branch on its best (#5 was cut short)
    assert repo.commit("autoresearch/d-1").hexsha == three
    assert "line 1" in (ws / "experiments.md").read_text()
    again = cockpit("run", "--headless", "--experiments", "3", cwd=ws,
                    env={"COCKPIT_SLOW": "0.2"}, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    events = read_journal(ws, "d")
    results = {e["n"]: e for e in events if e["event"] == "result"}
    assert results[5]["status"] == "crash" and results[5]["cause"] == "interrupted"
    lines = {e["n"]: e["line"] for e in events if e["event"] == "proposal"}
    # both lines go on, resumed or not; line 0 leads (#2 beats #3), so it has 3 turns to line 1's 1
    assert [lines[n] for n in range(6, 10)] == [0, 0, 0, 1]
    assert repo.commit(results[9]["commit"]).parents[0].hexsha == three
    assert results[9]["status"] == "keep" and results[9]["bar"] == pytest.approx(1.049589,
                                                                                 abs=1e-5)
    assert repo.commit("autoresearch/d-1").hexsha == results[9]["commit"]
    assert repo.commit("autoresearch/d").hexsha == results[2]["commit"]
    rows = results_rows(ws)
    assert [r[0] for r in rows] == [results[n]["commit"][:7] for n in (1, 2, 3, 5, 6, 7, 8, 9)]
    assert rows[3][4].startswith("[line 1] ") and rows[7][4].startswith("[line 1] ")
    assert all(repo.commit(f"refs/cockpit/d/{n}") for n in (1, 2, 3, 5, 6, 7, 8, 9))


@pytest.mark.slow
def test_b_on_a_timeline_row_branches_from_it(tmp_path, detached):
    from tui_support import wait_for as settle

    from cockpit.client.bootstrap import start_detached
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.widgets.timeline import Timeline

    ws = detached()
    assert approved(ws, 2)["status"] == "keep"
    assert approved(ws, 3)["status"] == "discard"
    awaiting(ws, 4)
    app = CockpitApp(ws, "d", watch_program=False,
                     resume=lambda: start_detached(ws, "d", ["--review"]))

    async def scenario(pilot):
        timeline = app.main.query_one(Timeline)
        await settle(pilot, lambda: 4 in timeline.numbers, what="the timeline")
        timeline.focus()
        for _ in range(5):  # down from the newest (#4) to #3
            if timeline.selected_n == 3:
                break
            await pilot.press("down")
        assert timeline.selected_n == 3
        await pilot.press("b")
        await settle(pilot, lambda: 1 in app.view.state.lines, what="line 1")
        assert app.view.state.lines[1].origin.n == 3
        await settle(pilot, lambda: any("line 1 from #3" in n.text for n in app.notices.items),
                     what="the session's answer")
        assert cockpit("reject", "4", cwd=ws).returncode == 0
        await settle(pilot, lambda: 5 in timeline.numbers, timeout=60, what="#5")
        cells = " ".join(cell.plain for cell in timeline.get_row("5"))
        assert "└1 LEARNING_RATE 0.004" in cells  # the tree on screen: #5 is on line 1
        assert "└" not in " ".join(cell.plain for cell in timeline.get_row("4"))

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await scenario(pilot)

    asyncio.run(main())
    branch = next(e for e in read_journal(ws, "d") if e["event"] == "branch")
    assert branch["from_n"] == 3 and branch["why"] == "human"


@pytest.mark.slow
def test_replay_and_every_reader_walk_a_tree(two_lines):
    from test_resilience import fold_everywhere, hostile_variants

    from cockpit.domain.reading import parse_lines
    from cockpit.tui.replay_app import ReplayApp
    from cockpit.workspace.report import SessionFacts, render_markdown

    ws, state = two_lines
    last = len(state.experiments)
    events = read_journal(ws, "t")
    report = render_markdown(SessionFacts.from_events(events))
    assert "## Lines" in report and "[line 1] BONUS 0.09" in report
    tree = [e for e in events if e["event"] == "branch"
            or (e["event"] == "proposal" and e.get("line"))]
    for variant in hostile_variants(tree):  # a damaged line is skipped, or read: never a bug
        lines = [json.dumps(e).encode() for e in events] + [json.dumps(variant).encode()]
        fold_everywhere(parse_lines(lines, []))
    app = ReplayApp(ws, "t")

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            seen = [screen.current]
            await pilot.press("home")
            for _ in range(last):
                seen.append(screen.current)
                await pilot.press("right")
            assert seen == [last, *range(1, last + 1)]
            assert f"#{last}" in str(screen.query_one("#diff-header").render())

    asyncio.run(main())


def test_an_origin_its_re_runs_carried_past_its_bar_counts_for_the_session_best():
    """A near-miss that opened a line: once its re-runs and its base's make its gain clear
    the bar of 2 vs 2 runs (lower than the bar of 1 vs 1 it missed), it stands as the
    session's best; one that still falls short, or a single run, does not."""
    from cockpit.domain.lines import Line, Tree, stands
    from cockpit.domain.state import Experiment, SessionState

    state = SessionState(config={"judge": {"min_delta": "auto", "noise_multiple": 2.0}})
    state.noise = {"std": 0.007}  # measured: the floor is pooled from the commits run twice
    state.measured = {"a" * 40: [1.00, 1.01], "b" * 40: [0.96, 0.97], "c" * 40: [0.96],
                      "d" * 40: [0.995, 1.005], "n" * 40: [0.5, 0.51]}
    base = Experiment(n=1, commit="a" * 40, status="keep", metric=1.00, base="a" * 40)
    carried = Experiment(n=2, commit="b" * 40, status="discard", metric=0.96, base="a" * 40)
    single = Experiment(n=3, commit="c" * 40, status="discard", metric=0.96, base="a" * 40)
    short = Experiment(n=4, commit="d" * 40, status="discard", metric=0.995, base="a" * 40)
    floor = state.floor()
    assert floor is not None
    assert state.keep_policy().threshold(floor, 2, 2) < 0.04  # #2's gain on 2 vs 2 runs
    assert stands(base, state) and stands(carried, state)
    assert not stands(single, state) and not stands(short, state)
    state.tree = Tree({0: Line(0, best=base), 1: Line(1, origin=carried, best=carried),
                       2: Line(2, origin=short, best=short)})
    assert state.best is carried
    state.measured["b" * 40] = [0.96, 1.01]  # its re-run fell back: it no longer stands
    assert state.best is base


def test_a_keep_on_a_line_left_on_a_plateau_reopens_it():
    """A proposal made for line 0 before it was left is judged there and kept: line 0 was
    not on a plateau after all, and goes on beside the new line."""
    from cockpit.domain.lines import Tree
    from cockpit.domain.state import Experiment

    tree = Tree()
    base = Experiment(n=1, commit="a" * 40, status="keep", metric=1.0, line=0)
    near = Experiment(n=2, commit="b" * 40, status="discard", metric=0.99, line=0)
    late = Experiment(n=3, commit="c" * 40, line=0)
    for exp in (base, near, late):
        tree.proposed(exp)
    tree.judged(base)
    tree.judged(near)
    tree.branched(1, near, "plateau: line 0 kept nothing", left=0)
    assert tree.open_lines() == [1]
    late.status, late.metric = "keep", 0.9
    tree.judged(late)
    assert tree.open_lines() == [0, 1] and tree.line(0).best is late
