"""The `command` agent: an external coding-agent CLI (Claude Code, Codex, aider ...) edits
the editable file in a worktree of cockpit's own (never the human's checkout); its change
becomes the proposal.

The command is a template split like a shell would, but run without one: `{prompt_file}`
becomes the path of the prompt file, `{prompt}` its text as one argument, `{editable}` the
file's name; with neither prompt placeholder the prompt arrives on stdin. The CLI runs in
its own process group under a timeout. Afterwards the worktree is put back as it was (the
coordinator commits the proposal itself once it passed): anything else the CLI touched is
reverted and reported, commits it made are dropped, and branches it moved are reported.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cockpit.agents.base import AgentContext, AgentError, ProposalFailed
from cockpit.agents.edits import (
    FIELD,
    EditRefused,
    apply_answer,
    one_line,
    parse_answer,
    validate_source,
)
from cockpit.agents.llm import ABANDON
from cockpit.agents.prompt import EDIT_IN_PLACE, RepairTask, as_document, build_messages
from cockpit.domain.proposals import Proposal
from cockpit.domain.state import Experiment
from cockpit.workspace.config import AgentConfig
from cockpit.workspace.history import History
from cockpit.workspace.paths import agent_scratch

KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of a CLI past its timeout
SNAPSHOT_LIMIT = 5 * 1024 * 1024  # untracked files up to this size are restored byte for byte
OUTPUT_LIMIT = 20_000  # characters of the CLI's output kept in the journal


class CommandAgent:
    name = "command"
    slow = True  # answers take seconds to minutes: the first is asked for ahead of need
    needs_worktree = True  # it edits files: it gets a worktree of cockpit's own
    def __init__(self, settings: AgentConfig):
        if not settings.command.strip():
            raise AgentError('the command agent needs a command: set [agent] command in '
                             'cockpit.toml or pass --agent-cmd (e.g. "claude -p", '
                             '"aider --yes --message-file {prompt_file} train.py")')
        try:
            self.argv = shlex.split(settings.command)
        except ValueError as exc:
            raise AgentError(f"[agent] command {settings.command!r} cannot be split: "
                             f"{exc}") from None
        self.settings = settings

    def preflight(self) -> None:
        program = self.argv[0]
        if shutil.which(program) is None and not Path(program).is_file():
            raise AgentError(f"the command agent's program `{program}` is not on PATH; install "
                             "it or fix [agent] command")

    def propose(self, ctx: AgentContext) -> Proposal:
        return self._converse(ctx, None, "propose")

    def repair(self, ctx: AgentContext, crashed: Experiment, log_tail: str) -> Proposal | None:
        return self._converse(ctx, RepairTask(crashed, log_tail), "repair")

    def _converse(self, ctx: AgentContext, repair: RepairTask | None, kind: str):
        if ctx.workspace is None:
            raise AgentError("the command agent needs a workspace to run in")
        prompt = as_document(build_messages(ctx, self.settings.prompt_tokens, repair,
                                            answer_format=EDIT_IN_PLACE))
        scratch = ctx.scratch or agent_scratch(ctx.workspace)
        scratch.mkdir(parents=True, exist_ok=True)
        problem = ""
        for attempt in range(1, self.settings.max_attempts + 1):
            stem = scratch / f"{ctx.n:04d}-{kind}-{attempt}"
            prompt_file = stem.with_suffix(".prompt.md")
            prompt_file.write_text(prompt, encoding="utf-8")
            run = self._run(ctx, ctx.workspace, prompt_file, stem.with_suffix(".log"))
            record = {"kind": kind, "attempt": attempt, "seconds": round(run.seconds, 3),
                          "returncode": run.returncode, "reverted": run.reverted,
                          "prompt_file": str(prompt_file), "output": run.output[-OUTPUT_LIMIT:]}
            if kind == "repair" and any(line.strip().upper().startswith(ABANDON)
                                        for line in run.output.splitlines()):
                ctx.record("attempt", accepted=True, abandoned=True, **record)
                return None
            try:
                source = self._judge(ctx, run)
            except EditRefused as exc:
                problem = str(exc)
                ctx.record("attempt", accepted=False, problem=problem, **record)
                prompt += (f"\n\n# Your previous attempt was refused\n\n{problem}. "
                           f"{ctx.editable} is back as it was; try again.\n")
                continue
            description, hypothesis = _fields(run.output, ctx.source, source)
            ctx.record("attempt", accepted=True, description=description, **record)
            return Proposal(description=description, hypothesis=hypothesis, source=source,
                            attempts=attempt)
        raise ProposalFailed(f"{self.settings.max_attempts} attempts of `{self.argv[0]}` in a "
                             f"row were refused; the last: {problem}")

    def _judge(self, ctx: AgentContext, run: CommandRun) -> str:
        if run.timed_out:
            raise EditRefused(f"the command did not finish within "
                              f"{self.settings.command_timeout} s (command_timeout) and was "
                              "killed")
        if run.returncode != 0:
            last = next((line for line in reversed(run.output.splitlines()) if line.strip()),
                        "")
            raise EditRefused(f"the command exited with code {run.returncode}: {last[:200]}")
        source = run.new_source
        if source == ctx.source:
            # A CLI that answered with search/replace blocks instead of editing: apply them.
            try:
                return apply_answer(parse_answer(run.output, ctx.editable), ctx.source,
                                    ctx.editable)
            except EditRefused:
                raise EditRefused(f"the command left {ctx.editable} unchanged") from None
        validate_source(source, ctx.source, ctx.editable)
        return source

    def _run(self, ctx: AgentContext, workspace: Path, prompt_file: Path,
             log_path: Path) -> CommandRun:
        tree = History(workspace)
        editable = workspace / ctx.editable
        head = tree.worktree_head()
        refs = tree.branch_refs()
        editable.write_text(ctx.source, encoding="utf-8")  # a repair starts from the crash
        argv, stdin = self._argv(ctx, prompt_file)
        start = time.monotonic()
        timed_out = False
        try:
            with open(log_path, "wb") as log, open(stdin or os.devnull, "rb") as stdin_file:
                try:
                    proc = subprocess.Popen(argv, cwd=workspace, stdin=stdin_file, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
                except OSError as exc:
                    raise AgentError(f"cannot start the command agent `{argv[0]}`: {exc}") from None
                try:
                    returncode = proc.wait(timeout=self.settings.command_timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    returncode = _kill_group(proc)
                finally:
                    _signal_group(proc.pid, signal.SIGKILL)  # helpers it left behind
            new_source = editable.read_text(encoding="utf-8", errors="replace")
        finally:
            reverted = _revert(tree, head, ctx.editable)
        moved = [f"branch {name} (now {sha[:7]}; check it)"
                 for name, sha in tree.branch_refs().items() if refs.get(name) != sha]
        output = log_path.read_text(encoding="utf-8", errors="replace")
        return CommandRun(returncode, time.monotonic() - start, timed_out, new_source,
                          output, reverted + moved)

    def _argv(self, ctx: AgentContext, prompt_file: Path) -> tuple[list[str], Path | None]:
        text = None
        argv = []
        for arg in self.argv:
            if "{prompt}" in arg:
                text = text if text is not None else prompt_file.read_text(encoding="utf-8")
                arg = arg.replace("{prompt}", text)
            argv.append(arg.replace("{prompt_file}", str(prompt_file))
                        .replace("{editable}", ctx.editable))
        uses_prompt = any("{prompt" in a for a in self.argv)
        return argv, None if uses_prompt else prompt_file


class CommandRun:
    def __init__(self, returncode, seconds, timed_out, new_source, output, reverted):
        self.returncode, self.seconds, self.timed_out = returncode, seconds, timed_out
        self.new_source, self.output, self.reverted = new_source, output, reverted


def _revert(tree: History, head: str, editable: str) -> list[str]:
    """Put the agent's worktree back at head; what it had touched besides the editable
    file (and its commits), for the journal."""
    touched = [path for path in tree.changed_paths() if path != editable]
    if tree.worktree_head() != head:
        touched.append(f"its commits (dropped; the worktree is back at {head[:7]})")
    tree.reset_worktree(head)
    return touched


def _fields(output: str, old: str, new: str) -> tuple[str, str]:
    """(description, hypothesis) from the CLI's output, or a description of the diff."""
    found = {}
    for line in output.splitlines():
        match = FIELD.match(line)
        if match:
            found[match.group(1).lower()] = match.group(2).strip()  # the last one wins
    description = one_line(found.get("description", ""))
    if not description:
        before = set(old.splitlines())
        changed = [line for line in new.splitlines() if line.strip() and line not in before]
        description = one_line("edit: " + (changed[0].strip() if changed else "lines removed"))
    return description, found.get("hypothesis") or description


def _kill_group(proc: subprocess.Popen) -> int:
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        return proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
