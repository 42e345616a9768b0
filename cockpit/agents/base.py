"""What every agent shares: the context a proposal is made in, and the ways one fails."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.domain.errors import CockpitError
from cockpit.domain.state import Experiment


class AgentExhausted(Exception):
    """The agent has nothing new to propose (one line for the user)."""


class AgentError(CockpitError):
    """A setup problem the user must fix: no model, a missing key, a bad api_base (one line)."""


class AgentUnavailable(Exception):
    """The provider kept failing (outage, rate limit, timeout) after the retries: pause."""


class ProposalFailed(Exception):
    """Every answer for this proposal was refused (each refusal is already journaled)."""


@dataclass
class AgentContext:
    program: str  # program.md, re-read before every proposal
    source: str  # the editable file at the best commit
    history: list[Experiment]  # every experiment of the session so far (in flight included)
    # What `source` is: the best of the line the proposal builds on (None before a keep),
    # and that line (0: the session's first; others branched from it: see domain.lines).
    best: Experiment | None = None
    line: int = 0
    metric: str = "val_bpb"
    direction: str = "lower"
    time_budget: int = 300
    notes: list[str] = field(default_factory=list)  # the human's steering notes
    editable: str = "train.py"
    hardware: str = ""  # the machine in words: device, memory
    workspace: Path | None = None  # where a command agent runs
    scratch: Path | None = None  # a directory for prompt files and agent logs
    n: int = 0  # the number the proposed experiment will get
    # Finished experiments of earlier sessions in this workspace on the same data
    # fingerprint (Experiment.session names each one's session): what was already measured.
    prior: list[Experiment] = field(default_factory=list)
    # record(event, **fields) journals what the agent did (every attempt, every retry).
    record: Callable[..., None] = field(default=lambda event, **fields: None, repr=False)
