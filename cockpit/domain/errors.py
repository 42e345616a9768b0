"""The one base of every error a user can fix: front ends catch CockpitError, print its
one line and exit 2. Anything else is a bug and keeps its traceback."""


class CockpitError(Exception):
    """A user-facing problem, said in one line: what is wrong and how to fix it."""

# The mark on an exception whose traceback the session already printed into its log: the
# command that ran the session exits without printing it again.
LOGGED = "cockpit: this traceback is in the session's log"
