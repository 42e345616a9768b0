"""Shared helpers for the loop tests: throwaway workspaces and fast fake train scripts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import git

from cockpit.domain.proposals import Proposal

# A train.py whose val_bpb is a known function of its constants, so that keep/discard
# decisions are predictable: the optimum is LEARNING_RATE = 10**-2.5, BATCH_SIZE = 32.
FAKE_TRAIN = '''\
import math, os, sys, time
LEARNING_RATE = 0.01  # step size
BATCH_SIZE = 16  # sequences per step
SEED = 42
print("data_fingerprint: fake0001", flush=True)
for i in range(3):
    print(f"\\rstep {i:05d} ({i * 33:.1f}%) | loss: {3 - i * 0.1:.6f} | remaining: 0s", end="", flush=True)
print()
val = 1.0 + (math.log10(LEARNING_RATE) + 2.5) ** 2 + 0.01 * abs(math.log2(BATCH_SIZE) - 5)
print("---")
print(f"val_bpb:          {val:.6f}")
print("training_seconds: 0.1")
print("total_seconds:    0.2")
print("peak_vram_mb:     2048.0")
'''  # noqa: E501 embedded train.py kept verbatim

# Bodies that replace the fake's last lines to make it fail in each way a real one can.
FAULTS = {
    "raises": 'raise RuntimeError("CUDA error: out of memory (simulated)")\n',
    "nan": 'print("---")\nprint("val_bpb:          nan")\nprint("peak_vram_mb:     1.0")\n',
    "no_summary": 'print("training done, but I forgot to print the summary")\n',
    "hangs": "import subprocess\nsubprocess.Popen(['sleep', '300'])\ntime.sleep(300)\n",
}


def faulty_train(fault: str) -> str:
    head = FAKE_TRAIN.split('val = ')[0]
    return head + FAULTS[fault]


def make_workspace(root: Path, train: str = FAKE_TRAIN,
                   extra: dict[str, str] | None = None) -> Path:
    """A git repo with program.md and train.py committed, ready for `cockpit run`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(train)
    (root / "program.md").write_text("# program\nMake val_bpb low.\n")
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    repo = git.Repo.init(root, initial_branch="main")
    repo.index.add([p.name for p in root.iterdir() if p.is_file()])
    actor = git.Actor("test", "test@localhost")
    repo.index.commit("initial", author=actor, committer=actor)
    return root


def read_journal(workspace: Path, tag: str) -> list[dict]:
    path = workspace / ".cockpit" / tag / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def live_journal(workspace: Path, tag: str) -> list[dict]:
    """The events so far of a journal a session is still writing: none before the file
    exists, and a line caught mid-write is skipped."""
    from cockpit.workspace.journal import Journal

    return Journal(workspace / ".cockpit" / tag / "journal.jsonl").read()


def results_rows(workspace: Path) -> list[list[str]]:
    lines = (workspace / "results.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


def cockpit(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    """Run the real `cockpit` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


class ScriptedAgent:
    """An agent that proposes given train.py sources in order (tests choose the faults)."""

    name = "scripted"

    def __init__(self, *sources: str):
        self.sources = list(sources)

    def propose(self, ctx) -> Proposal:
        source = self.sources.pop(0)
        return Proposal(description=f"scripted change {len(ctx.history) + 1}",
                        hypothesis="a test's scripted idea", source=source)


def run_session(workspace: Path, experiments: int | None, agent=None, config=None,
                tag: str = "t", workers: int = 1, timeout: int = 0, **kwargs):
    """The coordinator in this process (no session server): (coordinator, its Ending)."""
    from cockpit.session.coordinator import Coordinator
    from cockpit.workspace.config import Config

    config = config or Config()
    config.experiment.timeout = timeout or config.experiment.timeout
    if workers > 1:
        config.runner.kind = "gpus"
        config.runner.workers = workers
    coordinator = Coordinator(workspace, config, tag, agent=agent, **kwargs)
    return coordinator, coordinator.run(experiments)


class Decider:
    """Answers proposals awaiting approval the way `decide(n) -> (approved, reason)` says,
    through the coordinator's commands, as a client would (from a thread of its own)."""

    def __init__(self, coordinator, decide) -> None:
        import queue
        import threading

        self.coordinator = coordinator
        self.decide = decide
        self.asked: list[int] = []
        self._todo: queue.Queue = queue.Queue()
        coordinator.observers.append(self._observe)
        threading.Thread(target=self._answer, daemon=True).start()

    def _observe(self, message: dict) -> None:
        if message["type"] == "live":
            for n in message["live"]["awaiting"]:
                if n not in self.asked:
                    self.asked.append(n)
                    self._todo.put(n)

    def _answer(self) -> None:
        while True:
            n = self._todo.get()
            approved, reason = self.decide(n)
            if approved:
                self.coordinator.command("approve", n=n)
            else:
                self.coordinator.command("reject", n=n, reason=reason)


def wait_for(condition, timeout: float = 30.0, what: str = ""):
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def free_port() -> int:
    """A loopback port nothing listens on (once this returns)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
