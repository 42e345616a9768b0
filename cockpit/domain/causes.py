"""Why a run has no result of its own: the causes the journal records (one of CAUSES, in a
result's or a measure's `cause`), so the loop, the notifier and the agents decide on a
cause, never on a reason's prose; and the statuses a result can have."""
from __future__ import annotations

# -- causes -----------------------------------------------
STOPPED = "stopped"  # the human stopped it
SESSION_ENDED = "session_ended"  # the session ended (a stop, Ctrl-C, an error) while it ran
INTERRUPTED = "interrupted"  # cockpit was killed while it ran: recorded at the resume
WORKER_LOST = "worker_lost"  # the machine it ran on went away
CRASHED = "crashed"  # it raised, exited non-zero, or was killed by a signal
TIMED_OUT = "timed_out"
NO_RESULT = "no_result"  # no summary, or no finite metric in it
IMPLAUSIBLE = "implausible"  # a metric outside its plausible range
OTHER_DATA = "other_data"  # it reported another data fingerprint
BROKE_RULES = "broke_rules"  # it changed a fixed file or the data
TAMPERED = "tampered"  # .git/config gained keys that run commands while it ran
DISK_FULL = "disk_full"
SANDBOX = "sandbox"  # the sandbox refused it something it needed
HOLDER_KILLED = "holder_killed"  # without a sandbox: it killed its reaper
CANNOT_START = "cannot_start"
EARLY_STOP = "early_stop"  # stopped early, behind the best (a discard)
OVER_BUDGET = "over_budget"  # cockpit's clock stopped it: it trained past its budget
NO_ARTIFACT = "no_artifact"  # it handed over no model for cockpit to measure
NOT_MEASURED = "not_measured"  # the evaluator refused its artifact (a failed probe, a bad file)
MISREPORTED = "misreported"  # it printed a metric other than the one cockpit measured
SEED_CHANGE = "seed_change"  # only its seed changed: a discard, never a gain
REJECTED = "rejected"  # the human rejected the proposal
CANCELLED = "cancelled"  # a proposal the session could not offer again
ALREADY_IN = "already_in"  # carried onto a later best that already has its change: not run
CAUSES = (STOPPED, SESSION_ENDED, INTERRUPTED, WORKER_LOST, CRASHED, TIMED_OUT, NO_RESULT,
          IMPLAUSIBLE, OTHER_DATA, BROKE_RULES, TAMPERED, DISK_FULL, SANDBOX, HOLDER_KILLED,
          CANNOT_START, EARLY_STOP, REJECTED, CANCELLED, OVER_BUDGET, NO_ARTIFACT,
          NOT_MEASURED, MISREPORTED, SEED_CHANGE, ALREADY_IN)
# Someone stopped the run, or its machine failed: the idea itself did not fail.
NOT_THE_IDEAS_FAULT = frozenset({STOPPED, SESSION_ENDED, INTERRUPTED, WORKER_LOST})
STATUSES = ("keep", "discard", "crash", "rejected")


def legacy_cause(status: str | None, reason: str) -> str:
    """The cause of a result journaled before causes were (from its reason's words)."""
    if status == "rejected":
        return CANCELLED if reason.startswith("cancelled") else REJECTED
    if status != "crash":
        return ""
    for prefix, cause in (("stopped by the human", STOPPED), ("ended with the session",
                          SESSION_ENDED), ("interrupted", INTERRUPTED),
                          ("worker lost", WORKER_LOST), ("timed out", TIMED_OUT)):
        if reason.startswith(prefix):
            return cause
    return CRASHED
