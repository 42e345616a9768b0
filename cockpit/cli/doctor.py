"""`cockpit doctor`: check what a run needs, one line each, and say what to fix.

Exit code 0 when nothing needs fixing (warnings allowed), 1 otherwise.
"""
from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cockpit import serve
from cockpit.domain.exits import EXIT_FOUND, EXIT_OK
from cockpit.domain.findings import FIX, OK, WARN
from cockpit.notify import checks as notify_checks
from cockpit.tracking import checks as tracking_checks
from cockpit.workspace.config import Config, ConfigError, load_config, set_value
from cockpit.workspace.paths import (
    CONFIG_NAME,
    PROGRAM_NAME,
    journal_path,
    session_dir,
    worktrees_dir,
)

DEVICE_TIMEOUT = 120  # seconds for `import torch` and a look at the device
MODEL_CHECK_TIMEOUT = 60.0
TORCH_PROBE = """\
import json, torch
info = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
if info["cuda"]:
    p = torch.cuda.get_device_properties(0)
    info.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1),
                count=torch.cuda.device_count())
else:
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps and mps.is_available())
print(json.dumps(info))
"""


class Report:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.fixes = 0

    def line(self, status: str, what: str, text: str) -> None:
        self.fixes += status == FIX
        self.stream.write(f"{status:<5} {what:<10} {text}\n")
        self.stream.flush()


def cmd_doctor(args) -> int:
    from cockpit.cli.args import workspace_of
    from cockpit.cli.options import OPTION_NAMES, agent_overrides

    workspace = workspace_of(args)
    report = Report()
    config = Config()
    try:
        config = load_config(workspace)
        for (section, key), value in agent_overrides(args).items():
            if value is not None:
                set_value(config, section, key, value,
                          source="--" + OPTION_NAMES.get(key, key.replace("_", "-")))
        report.line(OK, "config", CONFIG_NAME if (workspace / CONFIG_NAME).exists()
                    else "no cockpit.toml: the defaults apply")
    except ConfigError as exc:
        report.line(FIX, "config", str(exc))
    check_workspace(report, workspace, config)
    check_session(report, workspace)
    check_data(report, workspace)
    check_measuring(report, workspace, config)
    check_sandbox(report, workspace, config)
    check_keys(report, config)
    check_device(report)
    check_agent(report, config)
    for finding in serve.check(config) + notify_checks.check(config, workspace) \
            + tracking_checks.check(config.tracking):
        report.line(finding.level, finding.what, finding.text)
    report.stream.write("all good: `cockpit run`\n" if not report.fixes
                        else f"{report.fixes} thing{'s' * (report.fixes != 1)} to fix\n")
    return EXIT_FOUND if report.fixes else EXIT_OK


def check_workspace(report: Report, workspace: Path, config: Config) -> None:
    from cockpit.workspace.checks import WorkspaceError, check_editable
    from cockpit.workspace.history import History, HistoryError

    editable = config.experiment.editable
    try:
        check_editable(workspace, editable, tuple(config.experiment.fixed))
    except WorkspaceError as exc:
        report.line(FIX, "workspace", str(exc))
        return
    if not (workspace / editable).exists():
        report.line(FIX, "workspace", f"{workspace} has no {editable}: `cockpit init DIR` makes "
                    "a workspace, or run inside an autoresearch checkout")
        return
    try:
        history = History(workspace)
    except HistoryError as exc:
        report.line(FIX, "workspace", str(exc))
        return
    if not history.has_commits():
        report.line(FIX, "workspace", "no commits yet: commit program.md and "
                    f"{editable} first")
        return
    where = history.current_branch() or "a detached HEAD"
    dirty = history.dirty_files()
    note = (f"; uncommitted changes to {', '.join(dirty)} stay yours (experiments run in "
            "cockpit's own worktrees)" if dirty else "")
    report.line(OK, "workspace", f"{workspace} on {where}{note}")
    if where.startswith("autoresearch/"):
        report.line(FIX, "workspace", f"your checkout is on {where}, a session's branch: check "
                    "out another branch (cockpit moves its session branches)")
    stale = [p for p in ("index.lock", "HEAD.lock") if (history.git_dir / p).exists()]
    if stale:
        report.line(WARN, "git", f"{', '.join(stale)} in {history.git_dir}: a git command of "
                    "yours is running, or one was killed (then remove the file)")
    if not (workspace / PROGRAM_NAME).exists():
        report.line(WARN, "program", "no program.md: the agent gets no research instructions")


def check_session(report: Report, workspace: Path) -> None:
    from cockpit.workspace.journal import Journal
    from cockpit.workspace.lock import read_session
    from cockpit.workspace.sessions import latest_session

    info = read_session(workspace)
    if info is None:
        report.line(OK, "session", "none running here")
    elif info.alive:
        report.line(OK, "session", f"{info.described} is running: `cockpit` attaches to it")
    else:
        report.line(WARN, "session", f"{info.described} died: `cockpit run --detach` resumes "
                    "it (nothing recorded is lost)")
    tag = latest_session(workspace)
    if tag is None:
        return
    for event in Journal(journal_path(workspace, tag)).read():
        if event["event"] == "refs_changed" and event.get("created"):
            names = ", ".join(r.split("/", 2)[-1] for r in event["created"])
            report.line(WARN, "git", f"{event.get('by', 'a run')} of session {tag} created "
                        f"{names} in your repository (sandbox off): check, then delete")


def check_sandbox(report: Report, workspace: Path, config: Config) -> None:
    from cockpit.runners.sandbox import available, describe
    from cockpit.session.sandboxing import footguns, policy_for

    refused, warned = footguns(config, workspace)
    for line in refused:
        report.line(FIX, "sandbox", line)
    for line in warned:
        report.line(WARN, "sandbox", line)
    mode = config.sandbox.mode
    if mode == "off":
        report.line(WARN, "sandbox", "[sandbox] mode = \"off\": runs have your rights: your "
                    "network, files and secrets")
        return
    ok, why = available()
    if not ok:
        status = FIX if mode == "on" else WARN
        report.line(status, "sandbox", f"isolation does not work here ({why}): runs would have "
                    "your network, files and secrets" + (
                        "; [sandbox] mode = \"on\" refuses to run" if mode == "on" else ""))
        return
    tree = worktrees_dir(session_dir(workspace, "<tag>")) / "w0"
    policy = policy_for(config, workspace, tree, None)
    report.line(OK, "sandbox", "runs are isolated: " + "; ".join(describe(policy)))


def check_keys(report: Report, config: Config) -> None:
    if not config.keys:
        return
    from cockpit.domain.errors import CockpitError
    from cockpit.tui.keymap import keymap_from

    try:
        keymap_from(config.keys)
    except CockpitError as exc:
        report.line(FIX, "keys", str(exc))
    else:
        report.line(OK, "keys", f"{len(config.keys)} remapped: "
                    + ", ".join(f"{k} = {v}" for k, v in config.keys.items()))


def check_data(report: Report, workspace: Path) -> None:
    prepare = workspace / "prepare.py"
    if not prepare.exists():
        report.line(WARN, "data", "no prepare.py: train.py must find its data on its own")
        return
    if "COCKPIT_DATA_DIR" not in prepare.read_text(encoding="utf-8", errors="replace"):
        report.line(OK, "data", "a prepare.py of its own: it runs before the first experiment")
        return
    data = Path(os.environ.get("COCKPIT_DATA_DIR") or Path.home() / ".cache" / "cockpit" / "data")
    fingerprint = data / "fingerprint.json"
    if fingerprint.exists():
        try:
            info = json.loads(fingerprint.read_text())
        except (OSError, ValueError):
            info = {}
        what = info.get("fingerprint") or info.get("data_fingerprint") or "present"
        report.line(OK, "data", f"{data} (fingerprint {what})")
    else:
        report.line(WARN, "data", f"no prepared data in {data}: the first run builds it, or run "
                    "`python prepare.py` now (offline, a few minutes)")


def check_measuring(report: Report, workspace: Path, config: Config) -> None:
    """Who measures the results: the workspace's evaluator (ready to measure), or train.py
    as it prints them; and whether re-runs can vary the seed."""
    import tempfile

    from cockpit.runners.environment import training_env
    from cockpit.runners.evaluation import CHECK_TIMEOUT, Evaluation, check
    from cockpit.runners.local import LocalRunner
    from cockpit.session.measuring import SEED_VARIABLE, evaluator_python
    from cockpit.workspace.paths import EVALUATOR_NAME

    setting, trust = config.experiment.evaluator, config.judge.trust
    name = "" if setting == "" else (EVALUATOR_NAME if setting == "auto" else setting)
    if not name or not (workspace / name).is_file():
        if trust == "measured":
            report.line(FIX, "measuring", f"[judge] trust = \"measured\" but there is no "
                        f"evaluator ({name or EVALUATOR_NAME}): `cockpit init` writes one")
        else:
            report.line(WARN, "measuring", "no evaluator: results are what train.py prints "
                        "(reported by train.py, not measured by cockpit)")
    else:
        with tempfile.TemporaryDirectory(prefix="cockpit-doctor-") as tmp:
            files = {fixed: (workspace / fixed).read_bytes()
                     for fixed in dict.fromkeys([name, *config.experiment.fixed])
                     if (workspace / fixed).is_file()}
            ev = Evaluation(python=evaluator_python(config, workspace), script=name,
                            files=files, cwd=Path(tmp) / "evaluate",
                            artifact=Path(tmp) / "none", log_path=Path(tmp) / "check.log",
                            timeout=CHECK_TIMEOUT)
            said, problem = check(LocalRunner(), ev,
                                  training_env(passthrough=config.experiment.env))
        if not problem:
            report.line(OK, "measuring", f"measured by cockpit: {name} ({said})")
        else:
            report.line(FIX, "measuring", f"{problem}: the baseline would end the session; "
                        "fix it, or set [judge] trust = \"reported\"")
    editable = workspace / config.experiment.editable
    try:
        seeds = SEED_VARIABLE in editable.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if not seeds:
        report.line(WARN, "seeds", f"{config.experiment.editable} ignores {SEED_VARIABLE}: "
                    "the noise floor measures nondeterminism only, not seeds")


def check_device(report: Report) -> None:
    from cockpit.runners.hardware import describe_machine

    machine = describe_machine()
    try:
        out = subprocess.run([sys.executable, "-c", TORCH_PROBE], capture_output=True, text=True,
                             timeout=DEVICE_TIMEOUT)
    except subprocess.TimeoutExpired:
        report.line(FIX, "device", f"`import torch` took over {DEVICE_TIMEOUT} s ({machine})")
        return
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        report.line(FIX, "device", f"torch does not load in {sys.executable}: {last}")
        return
    info = json.loads(out.stdout.strip().splitlines()[-1])
    if info.get("cuda"):
        report.line(OK, "device", f"{info.get('count', 1)} x {info['name']} "
                    f"({info['memory_gib']} GiB), torch {info['torch']}")
    elif info.get("mps"):
        report.line(OK, "device", f"Apple MPS, torch {info['torch']}")
    else:
        cpu = ", ".join(machine.split(", ")[1:])  # the machine line, less its "no GPU" part
        report.line(WARN, "device", f"no GPU visible to torch {info['torch']}: training runs "
                    f"on the CPU ({cpu}), slowly")


def check_agent(report: Report, config: Config) -> None:
    from cockpit.agents import AgentError, make_agent

    kind = config.agent.kind
    if kind == "tune":
        report.line(OK, "agent", "tune: offline, no model or key needed")
        return
    try:
        agent = make_agent(config)
        agent.preflight()
    except AgentError as exc:
        report.line(FIX, "agent", str(exc))
        return
    if kind == "command":
        program = shutil.which(shlex.split(config.agent.command)[0])
        report.line(OK, "agent", f"command: {program} (not run: it would edit the workspace)")
        return
    check_model(report, config)


def check_model(report: Report, config: Config) -> None:
    """One tiny request through the same client the agent uses."""
    from cockpit.agents import AgentError, AgentUnavailable
    from cockpit.agents.llm import ModelClient

    settings = copy.copy(config.agent)
    settings.request_timeout = min(settings.request_timeout, MODEL_CHECK_TIMEOUT)
    client = ModelClient(settings)
    where = f" at {settings.api_base}" if settings.api_base else ""
    start = time.monotonic()
    try:
        reply = client.complete([{"role": "user", "content": "Reply with the single word: ok"}],
                                max_tokens=5, retries=0)
    except (AgentError, AgentUnavailable) as exc:
        report.line(FIX, "model", str(exc))
        return
    seconds = time.monotonic() - start
    cost = f", ${reply.cost_usd:.6f}" if reply.cost_usd else ""
    report.line(OK, "model", f"{settings.model}{where} answered {reply.text.strip()[:20]!r} in "
                f"{seconds:.1f} s ({reply.prompt_tokens}+{reply.completion_tokens} tokens{cost})")
