"""The session's errors: what a user reads in one line."""
from __future__ import annotations

from cockpit.domain.errors import CockpitError


class SessionError(CockpitError):
    """The session cannot start or go on (one line for the user)."""


class CommandRefused(CockpitError):
    """A client's command that names something gone or not allowed now (one line)."""
