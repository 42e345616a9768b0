"""Carrying a proposal onto a best that moved since it was made: a three-way merge of the
editable file (git merge-file), or nothing when it does not apply cleanly."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from cockpit.workspace.history import git_env


def carry_onto(proposal_source: str, base_source: str, best_source: str) -> str | None:
    """The proposal's change (base -> proposal) applied to the newer best with a three-way
    merge; None when the two changes overlap and the merge has conflicts."""
    if base_source == best_source:
        return proposal_source
    with tempfile.TemporaryDirectory(prefix="cockpit-merge-") as tmp:
        paths = []
        for name, text in (("proposal", proposal_source), ("base", base_source),
                           ("best", best_source)):
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        # `git merge-file` needs no repository and runs nothing configured
        done = subprocess.run(["git", "merge-file", "-p", "-q", paths[2], paths[1], paths[0]],
                              capture_output=True, env=git_env(), start_new_session=True)
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8")
