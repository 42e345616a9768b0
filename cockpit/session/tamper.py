"""The tamper guard: after (and while) runs train, what they changed that results rest on.

- .git/config gained keys that make git run a command (a run with the sandbox off planted
  them): the config is put back, the planted copy kept, and every run in flight is a
  suspect, a crash when it ends.
- A run changed a fixed file of its worktree (put back from git at the next checkout: the
  run is a crash) or the data (no later result could be judged on it: the session ends).
- A run without the sandbox created or deleted a branch or tag of the human's: a deleted
  one is put back, both are reported.
- A run left less free disk than the floor asks: its files go before anything is written.

It decides and returns what to journal; the loop journals it and ends runs or the session.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.domain import causes
from cockpit.runners.disk import MB, DiskFloor
from cockpit.runners.pool import Job
from cockpit.workspace.config import Config
from cockpit.workspace.data import changed_fixed_files, data_changes, data_snapshot
from cockpit.workspace.history import ConfigTampered, History, HistoryError
from cockpit.workspace.paths import config_path


@dataclass
class Breach:
    """A run changed what results rest on: its crash, and whether the session must end."""

    cause: str
    reason: str
    record: dict[str, Any]  # the fixed_changed event, or {} (the data: the session ends)
    ends_session: str = ""  # why the session cannot go on ("" when it can)


def who(job: Job) -> str:
    """A run as the journal and the screen name it."""
    return f"#{job.n}" if job.kind == "experiment" else f"re-run {job.n}"


class TamperGuard:
    def __init__(self, config: Config, workspace: Path, history: History, quarantine: Path,
                 state_dir: Path) -> None:
        self.config = config
        self.workspace = workspace
        self.history = history
        self.quarantine = quarantine
        self.state_dir = state_dir  # the session's own (journal, logs): its disk is watched
        self.data_dir: Path | None = None
        # the data's snapshot after preparing it: file -> (size, modification time)
        self.data: dict[str, tuple[int, int]] | None = None
        self.suspects: dict[str, str] = {}  # run id -> why: .git/config changed as it ran
        self._refs: dict[str, dict[str, str]] = {}  # run id -> the refs as it started

    # -- .git/config -----------------------------------------------------------------------
    def put_config_back(self, planted: ConfigTampered, jobs: list[Job]) -> dict[str, Any]:
        """Restore .git/config, keeping the planted copy; every run in flight becomes a
        suspect. The `tampered` event to journal."""
        copy = self.history.restore_config(planted, self.quarantine)
        names = ", ".join(who(job) for job in jobs) or "the agent"
        for job in jobs:
            others = [who(other) for other in jobs if other is not job]
            beside = f" (or {', '.join(others)}, running beside it)" if others else ""
            self.suspects[job.run_id] = (f"the run{beside} modified .git/config "
                                         f"({', '.join(planted.keys)}); restored")
        return {"path": ".git/config", "keys": planted.keys,
                    "kept": str(copy.relative_to(self.workspace)),
                    "by": f"one of {names}" if len(jobs) > 1 else names}

    def suspected(self, job: Job) -> str:
        """Why a run that ended is a crash for tampering ("" when it is not a suspect)."""
        return self.suspects.pop(job.run_id, "")

    # -- fixed files and data ----------------------------------------------------------------
    def breach(self, job: Job, remote: bool) -> Breach | None:
        """Whether a run changed its fixed files or the data (None when neither)."""
        if remote:
            return None  # it ran elsewhere, on files shipped to it
        changed = changed_fixed_files(self.history, job.cwd, job.commit,
                                      list(self.config.experiment.fixed))
        if changed:
            return Breach(causes.BROKE_RULES, f"the run modified {', '.join(changed)} "
                          "(restored; the evaluation is fixed)",
                          {"files": changed, "by": job.n, "kind": job.kind})
        data = data_changes(self.data, data_snapshot(self.data_dir))
        if data:
            shown = ", ".join(data[:3]) + (f" and {len(data) - 3} more" if len(data) > 3 else "")
            return Breach(causes.BROKE_RULES, f"the run modified the data in {self.data_dir} "
                          f"({shown})", {}, ends_session=(
                              f"the data in {self.data_dir} changed during a run ({shown}): no "
                              "later result could be judged on it; prepare the data again "
                              "(delete the directory, or run prepare.py) and start a new "
                              "session"))
        return None

    # -- the human's branches ----------------------------------------------------------------
    def watch_refs(self, job: Job) -> None:
        """A run without the sandbox could change the human's branches: remember them."""
        self._refs[job.run_id] = self.history.branch_refs()

    def refs_changed(self, job: Job, others: list[Job], own_branch: str
                     ) -> dict[str, Any] | None:
        """What an unsandboxed run created or deleted among the human's branches and tags
        (a deleted one is put back; moves are not reported: the human commits on main while
        runs train): the `refs_changed` event, or None."""
        before = self._refs.pop(job.run_id, None)
        if before is None:
            return None
        after = self.history.branch_refs()
        own = f"refs/heads/{own_branch}"

        def humans(ref: str) -> bool:  # not the session's: its lines', its workers'
            return ref != own and not ref.startswith(f"{own}-gpu") \
                and not ref.removeprefix(f"{own}-").isdigit()

        created = sorted(r for r in after if r not in before and humans(r))
        deleted = sorted(r for r in before if r not in after and humans(r))
        for ref in deleted:
            try:
                self.history.recreate_ref(ref, before[ref])
            except HistoryError:
                pass
        if not created and not deleted:
            return None
        beside = f" (or {', '.join(who(o) for o in others)}, beside it)" if others else ""
        return {"by": who(job) + beside, "created": created, "restored": deleted}

    # -- the disk -------------------------------------------------------------------------------
    def disk_floor(self, tree: Path | None = None) -> DiskFloor:
        """The room the disks a run writes to must keep: its worktree's, the session's own
        (journal, logs, git), and the writable paths it was given."""
        paths = [self.state_dir, *([tree] if tree is not None else [])]
        paths += [config_path(p, self.workspace) for p in self.config.sandbox.writable]
        return DiskFloor(paths, self.config.experiment.min_free_mb * MB)

    def free_disk(self, job: Job, shared: list[str], remote: bool) -> None:
        """A run stopped for the disk: before anything is written, its files go (the room
        it took comes back; nothing of it is needed to judge it)."""
        if remote:
            return
        try:
            self.history.clean_worktree(job.cwd, keep=shared)
        except HistoryError:
            pass
