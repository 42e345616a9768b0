"""The workspace's errors: what a user reads in one line."""
from __future__ import annotations

from cockpit.domain.errors import CockpitError


class HistoryError(CockpitError):
    """The repository is not in a state the loop can work from (one line for the user)."""
