"""Agents: the proposers of the next change to the editable file.

An agent has `.name` and `propose(ctx) -> Proposal`. It may also have
`repair(ctx, crashed, log_tail) -> Proposal | None` (a fix of a crashed idea; ctx.source is
the crashed version; None gives the idea up) and `preflight()` (checks the setup before the
loop starts, raising AgentError). The loop validates every proposal again before it writes it.
"""
from __future__ import annotations

from typing import Any

from cockpit.agents.base import (
    AgentContext,
    AgentError,
    AgentExhausted,
    AgentUnavailable,
    ProposalFailed,
)
from cockpit.workspace.config import Config

__all__ = ["AgentContext", "AgentError", "AgentExhausted", "AgentUnavailable",
           "ProposalFailed", "make_agent"]


def make_agent(config: Config) -> Any:  # duck-typed: see the docstring
    kind = config.agent.kind
    if kind == "tune":
        from cockpit.agents.tune import TuneAgent

        return TuneAgent()
    if kind == "llm":
        from cockpit.agents.llm import LLMAgent

        return LLMAgent(config.agent)
    if kind == "command":
        from cockpit.agents.command import CommandAgent

        return CommandAgent(config.agent)
    raise ValueError(f"unknown agent kind {kind!r}")  # config validation makes this unreachable
