"""Measuring what a run handed over: the workspace's evaluator, in a fresh process that
imports none of the run's files.

The evaluator's files (evaluate.py and the fixed files it imports, as committed) are
written into a directory of their own, so `import prepare` finds cockpit's copy and
nothing a run left beside its code; Python starts with -E -s -B (no PYTHONPATH, no user
site, nothing written). The artifact is read where the run wrote it. The evaluator runs
under the same watchdog as a run, in a sandbox of its own when runs have one.
"""
from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.runners.local import LocalRunner, RunResult
from cockpit.runners.outcome import failure_reason

if TYPE_CHECKING:
    from cockpit.runners.sandbox import SandboxPolicy

CHECK_TIMEOUT = 120  # seconds the evaluator's --check may take (it imports torch)


@dataclass
class Evaluation:
    python: str  # the interpreter train.py runs with
    script: str  # the evaluator's file name (evaluate.py)
    files: dict[str, bytes]  # the evaluator's files, as committed: name -> content
    cwd: Path  # a fresh directory they are written into
    artifact: Path  # where the run was told to write its artifact ($COCKPIT_ARTIFACT)
    log_path: Path
    timeout: float
    sandbox: SandboxPolicy | None = None
    env: dict[str, str] = field(default_factory=dict)

    def command(self, argument: str = "") -> str:
        """The evaluator on the artifact (or on `argument`: --check)."""
        return shlex.join([self.python, "-E", "-s", "-B", self.script,
                           argument or str(self.artifact)])

    def handed_over(self) -> bool:
        """Whether the run left a file where it was told (a link is not one)."""
        return self.artifact.is_file() and not self.artifact.is_symlink()

    def stage(self) -> None:
        """The evaluator's directory, fresh: only its files."""
        shutil.rmtree(self.cwd, ignore_errors=True)
        self.cwd.mkdir(parents=True)
        for name, data in self.files.items():
            path = self.cwd / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def evaluate(runner: LocalRunner, evaluation: Evaluation, env: dict[str, str],
             on_output: Callable[[str], None] | None, run_id: str) -> RunResult:
    """Run the evaluator on the artifact; its output goes to its own log (and on_output)."""
    evaluation.stage()
    return runner.run(evaluation.command(), cwd=evaluation.cwd, log_path=evaluation.log_path,
                      timeout=evaluation.timeout, env=env, on_output=on_output,
                      run_id=run_id, sandbox=evaluation.sandbox)


def check(runner: LocalRunner, evaluation: Evaluation, env: dict[str, str]
          ) -> tuple[str, str]:
    """Ask the evaluator whether it can measure (`--check`), run as a measurement runs:
    (its last line, what keeps it from measuring: "" when it is ready)."""
    evaluation.stage()
    try:
        result = runner.run(evaluation.command("--check"), cwd=evaluation.cwd,
                            log_path=evaluation.log_path, timeout=CHECK_TIMEOUT, env=env,
                            sandbox=evaluation.sandbox)
    finally:
        shutil.rmtree(evaluation.cwd, ignore_errors=True)
    text = evaluation.log_path.read_text(encoding="utf-8", errors="replace")
    said = [line.strip() for line in text.splitlines() if line.strip()]
    last = said[-1] if said else ""
    asked = f"`{evaluation.script} --check`"
    if result.error:
        return last, result.error
    if result.timed_out:
        return last, f"{asked} did not answer in {CHECK_TIMEOUT} s"
    if not said:
        return last, f"{asked} printed nothing (exit code {result.returncode})"
    if result.returncode != 0:
        return last, f"{asked} failed: {last.removeprefix('error: ') or failure_reason(text)}"
    return last, ""
