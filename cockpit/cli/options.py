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
REVIEW_IF_NEW = "--review-if-new"
APPROVAL_OPTIONS = ("--auto-approve", "--review", REVIEW_IF_NEW)


def add_run_options(run: argparse.ArgumentParser, config: Config | None = None,
                    source: str = "") -> None:
    """The run options; their help shows the defaults `config` holds (cockpit.toml's, when
    `source` names it, else the built-in ones)."""
    config = config or Config()
    was = f", from {source}" if source else ""
    experiment, runner = config.experiment, config.runner
    timeout = (f"{experiment.timeout} s{was}" if experiment.timeout else
               f"2 x budget + 120 = {experiment.hard_timeout} s")
    run.add_argument("--experiments", type=int, metavar="N",
                     help="stop after N experiments (default: run until stopped)")
    run.add_argument("--budget", type=int, metavar="SECONDS",
                     help="training time budget per experiment "
                     f"(default: {experiment.time_budget} s{was})")
    run.add_argument("--timeout", type=int, metavar="SECONDS",
                     help=f"hard kill of a run (default: {timeout})")
    run.add_argument("--agent", choices=choices(AgentConfig, "kind"),
                     help="who proposes the next change (default: "
                     f"{config.agent.kind}{was or ', offline'})")
    run.add_argument("--tag", help="session name: branch autoresearch/TAG "
                     "(default: resume the latest session, or a new one named after today)")
    run.add_argument("--train-command", metavar="CMD",
                     help=f'how to run training (default: "{experiment.train_command}"{was})')
    run.add_argument("--runner", choices=choices(RunnerConfig, "kind"),
                     help="where experiments run: local (one at a time), gpus (one worker "
                     "per GPU of this box), ray (workers on a Ray cluster) "
                     f"(default: {runner.kind}{was})")
    workers = f"{runner.workers}{was}" if runner.workers else "one per GPU"
    run.add_argument("--workers", type=int, metavar="N",
                     help="experiments in flight at once (gpus, ray; with the local runner it "
                     f"means gpus); default: {workers}")
    approval = run.add_mutually_exclusive_group()
    approval.add_argument("--auto-approve", action="store_true",
                          help="run proposals without waiting for approval (the cockpit: "
                          "toggle with A); without it or --review, a resumed session keeps "
                          "its own setting")
    approval.add_argument("--review", action="store_true",
                          help="each proposal waits for a human (`cockpit approve`, or the "
                          "cockpit), even in a resumed session that had auto-approve on")
    # a session a human watches: a new one waits for approval, a resumed one keeps its own
    approval.add_argument(REVIEW_IF_NEW, action="store_true", help=argparse.SUPPRESS)
    add_agent_options(run, config.agent, source)


def add_agent_options(parser: argparse.ArgumentParser, agent: AgentConfig | None = None,
                      source: str = "") -> None:
    agent = agent or AgentConfig()
    was = f", from {source}" if source else ""

    def now(value: str) -> str:
        return f" (now: {value}{was})" if value else ""

    parser.add_argument("--model", metavar="MODEL",
                        help="llm agent: a litellm model, e.g. anthropic/claude-sonnet-4-5, "
                        "openai/gpt-4o, ollama/qwen2.5-coder (keys: the provider's env var)"
                        + now(agent.model))
    parser.add_argument("--api-base", metavar="URL",
                        help="llm agent: an OpenAI-compatible server, e.g. "
                        "http://localhost:8000/v1" + now(agent.api_base))
    parser.add_argument("--agent-cmd", metavar="CMD",
                        help='command agent: e.g. "claude -p" (prompt on stdin) or '
                        '"aider --yes --message-file {prompt_file} train.py"'
                        + now(agent.command))


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
    for option in APPROVAL_OPTIONS:
        if getattr(args, option[2:].replace("-", "_"), False):
            out.append(option)
    return out


def auto_approve_of(args) -> tuple[bool | None, bool]:
    """How the session approves proposals: (as asked, None for the session's own setting
    as its journal last had it; the setting of a session whose journal never said)."""
    if args.auto_approve or args.review:
        return bool(args.auto_approve), bool(args.auto_approve)
    return None, not args.review_if_new


def attended_options(args) -> list[str]:
    """The options of a session a human watches (the cockpit, a browser), started or
    resumed now: a new one waits for approval unless --auto-approve, a resumed one keeps
    its own setting unless --auto-approve or --review says otherwise."""
    options = session_options(args)
    if not any(option in options for option in APPROVAL_OPTIONS):
        options.append(REVIEW_IF_NEW)
    return options


def resume_options(options: list[str]) -> list[str]:
    """The options for resuming later (R), when the session died, from those it was
    started or attached with: the session's own setting wins over the approval flags given
    then (a human may have toggled it since); they decide only where its journal never
    said."""
    kept = [option for option in options if option not in APPROVAL_OPTIONS]
    return kept + ([] if "--auto-approve" in options else [REVIEW_IF_NEW])
