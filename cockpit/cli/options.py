"""Command-line options that override cockpit.toml, shared by `run`, `doctor` and the
session a cockpit starts in the background (which gets the same options)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cockpit.workspace.config import (
    AgentConfig,
    Config,
    ConfigError,
    RunnerConfig,
    choices,
    load_config,
    set_value,
)

# option name on the command line for a config key, where it is not the key's own name
OPTION_NAMES = {"time_budget": "budget", "command": "agent-cmd"}


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--experiments", type=int, metavar="N",
                     help="stop after N experiments (default: run until stopped)")
    run.add_argument("--budget", type=int, metavar="SECONDS",
                     help="training time budget per experiment (overrides cockpit.toml)")
    run.add_argument("--timeout", type=int, metavar="SECONDS",
                     help="hard kill of a run (default: 2 x budget + 120)")
    run.add_argument("--agent", choices=choices(AgentConfig, "kind"),
                     help="who proposes the next change (default: tune, offline)")
    run.add_argument("--tag", help="session name: branch autoresearch/TAG "
                     "(default: resume the latest session, or a new one named after today)")
    run.add_argument("--train-command", metavar="CMD",
                     help='how to run training (default: "python train.py")')
    run.add_argument("--runner", choices=choices(RunnerConfig, "kind"),
                     help="where experiments run: local (one at a time), gpus (one worker "
                     "per GPU of this box), ray (workers on a Ray cluster)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="experiments in flight at once (gpus, ray; with the local runner it "
                     "means gpus); default: one per GPU")
    run.add_argument("--auto-approve", action="store_true",
                     help="the cockpit: run proposals without waiting for approval "
                     "(toggle with A)")
    run.add_argument("--review", action="store_true",
                     help="--headless/--detach: each proposal waits for a human "
                     "(`cockpit approve`, or the cockpit)")
    add_agent_options(run)


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="MODEL",
                        help="llm agent: a litellm model, e.g. anthropic/claude-sonnet-4-5, "
                        "openai/gpt-4o, ollama/qwen2.5-coder (keys: the provider's env var)")
    parser.add_argument("--api-base", metavar="URL",
                        help="llm agent: an OpenAI-compatible server, e.g. http://localhost:8000/v1")
    parser.add_argument("--agent-cmd", metavar="CMD",
                        help='command agent: e.g. "claude -p" (prompt on stdin) or '
                        '"aider --yes --message-file {prompt_file} train.py"')


def agent_overrides(args) -> dict:
    """(section, key) -> value of the agent options given on the command line."""
    return {("agent", "kind"): getattr(args, "agent", None), ("agent", "model"): args.model,
            ("agent", "api_base"): args.api_base, ("agent", "command"): args.agent_cmd}


def run_config(workspace: Path, args) -> Config:
    """cockpit.toml with the command line's options on top, checked."""
    config = load_config(workspace)
    overrides = {
        ("experiment", "time_budget"): args.budget,
        ("experiment", "timeout"): args.timeout,
        ("experiment", "train_command"): args.train_command,
        **agent_overrides(args),
        ("runner", "workers"): args.workers,
    }
    if args.workers is not None and args.runner is None and config.runner.kind == "local":
        overrides[("runner", "kind")] = "gpus"  # N workers on this box, GPUs or not
    if args.runner is not None:
        overrides[("runner", "kind")] = args.runner
    apply_overrides(config, overrides)
    runner = config.runner
    if runner.kind == "local" and runner.workers > 1:
        raise ConfigError(f"[runner] workers = {runner.workers} needs kind = \"gpus\" or "
                          "\"ray\" (the local runner runs one experiment at a time)")
    if runner.address and runner.kind != "ray":
        raise ConfigError("[runner] address is for kind = \"ray\" only")
    if args.experiments is not None and args.experiments < 1:
        raise ConfigError("--experiments must be at least 1")
    return config


def apply_overrides(config: Config, overrides: dict) -> None:
    for (section, key), value in overrides.items():
        if value is not None:
            set_value(config, section, key, value,
                      source="--" + OPTION_NAMES.get(key, key.replace("_", "-")))


def session_options(args) -> list[str]:
    """The run options given, as arguments for a session started in the background."""
    out = []
    for name in ("experiments", "budget", "timeout", "agent", "train_command", "runner",
                 "workers", "model", "api_base", "agent_cmd"):
        value = getattr(args, name, None)
        if value is not None:
            out += ["--" + name.replace("_", "-"), str(value)]
    if getattr(args, "review", False):
        out.append("--review")
    return out
