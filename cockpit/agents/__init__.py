"""Agents: the proposers of the next change to the editable file."""
from __future__ import annotations

from dataclasses import dataclass, field

from cockpit.config import Config
from cockpit.journal import Experiment


class AgentExhausted(Exception):
    """The agent has nothing new to propose (one line for the user)."""


@dataclass
class Proposal:
    description: str  # one line: what changes (goes into results.tsv and the commit)
    hypothesis: str  # why it might help
    source: str  # the full new text of the editable file
    params: dict = field(default_factory=dict)  # the file's constants after the change
    move: dict | None = None  # tune: {"name", "old", "new", "direction", "why"}


@dataclass
class AgentContext:
    program: str  # program.md, re-read before every proposal
    source: str  # the editable file at the best commit
    history: list[Experiment]  # every experiment of the session so far
    metric: str = "val_bpb"
    direction: str = "lower"
    time_budget: int = 300
    notes: list[str] = field(default_factory=list)  # the human's steering notes


def make_agent(config: Config):
    kind = config.agent.kind
    if kind == "tune":
        from cockpit.agents.tune import TuneAgent

        return TuneAgent()
    raise ValueError(f"unknown agent kind {kind!r}")  # config validation makes this unreachable
