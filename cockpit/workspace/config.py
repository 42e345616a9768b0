"""cockpit.toml: every key has a default, so the file is optional.

Each key is declared once, in its section's dataclass below, with its type, default, range
and help (see workspace.schema): checking a value, the template `cockpit init` writes and
the README's block come from these declarations. A bad file, key or value raises
ConfigError with one line naming the file, the key and what is allowed; the CLI prints
that line and exits.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.domain.earlystop import DEFAULT_MARGIN, DEFAULT_MIN_PROGRESS
from cockpit.domain.metric import DIRECTIONS, Metric
from cockpit.workspace.paths import CONFIG_NAME
from cockpit.workspace.schema import (
    AUTO_OR_BOOL,
    AUTO_OR_NUMBER,
    AUTO_OR_PATHS,
    CLOCK,
    DAY,
    NAMES,
    PATH,
    PATHS,
    STRINGS,
    ConfigError,
    check,
    render,
    setting,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

STARTUP_ALLOWANCE = 120  # seconds the baseline may spend on imports, data and handing over


@dataclass
class ExperimentConfig:
    train_command: str = setting("python train.py", '"python" means the Python that runs '
                                 "cockpit", nonempty=True)
    time_budget: int = setting(300, "seconds of training per experiment (1 to 7 days)",
                               low=1, high=7 * DAY, unit=" seconds")
    timeout: int = setting(0, "hard kill; 0 = 2 x time_budget + 120", low=0, high=30 * DAY,
                           unit=" seconds", note=" (0 = automatic)")
    editable: str = setting("train.py", "the one file the agent changes (a file of the "
                            "workspace)", kind=PATH, nonempty=True)
    prepare_command: str = setting("auto", '"auto": prepare.py, run like train.py, if '
                                   'present; "" never')
    fixed: list = setting(["prepare.py", "evaluate.py"], "files a run must leave as they are",
                          kind=PATHS)
    evaluator: str = setting("auto", 'measures the model each run hands over ("auto": '
                             'evaluate.py, if committed; "" = none)')
    data_dir: str = setting("auto", "the data a run reads, checked unchanged after every run",
                            kind=PATH)
    share: list | str = setting("auto", 'untracked paths linked into the worktrees ("auto": '
                                "the directories git ignores in your checkout, e.g. .venv)",
                                kind=AUTO_OR_PATHS)
    env: list = setting([], 'more variables passed to runs, e.g. ["WANDB_MODE"]', kind=NAMES)
    max_log_mb: int = setting(16, "a run's log keeps its start and its end within this",
                              low=1, high=1_000_000)
    min_free_mb: int = setting(100, "a run that leaves less free disk is stopped (a crash); "
                               "0 = no floor", low=0, high=1_000_000)

    @property
    def hard_timeout(self) -> int:
        return self.timeout or 2 * self.time_budget + STARTUP_ALLOWANCE


@dataclass
class MetricConfig:
    name: str = setting("val_bpb", "read from the summary block", nonempty=True)
    direction: str = setting("lower", 'or "higher" (test_acc, ...)', choices=DIRECTIONS)
    min: float | str = setting("auto", "a value outside [min, max] is a broken run",
                               kind=AUTO_OR_NUMBER, low=-1e12, high=1e12)
    max: float | str = setting("auto", '("auto": bits per byte lies in [0, 64])',
                               kind=AUTO_OR_NUMBER, low=-1e12, high=1e12)

    def to_metric(self) -> Metric:
        """The metric these settings describe (what decides direction and range)."""
        return Metric(self.name, self.direction,
                      None if self.min == "auto" else float(self.min),
                      None if self.max == "auto" else float(self.max))

    def plausible_range(self) -> tuple[float, float]:
        return self.to_metric().plausible_range()


@dataclass
class AgentConfig:
    kind: str = setting("tune", "tune (offline) | llm | command",
                        choices=("tune", "llm", "command"))
    model: str = setting("", 'llm: "anthropic/claude-sonnet-4-5", "openai/gpt-4o", ... (the '
                         "key: the provider's environment variable)")
    api_base: str = setting("", 'llm: e.g. "http://localhost:8000/v1" (vLLM)')
    temperature: float = setting(0.7, "", low=0, high=2)
    request_timeout: float = setting(300.0, "seconds per model request", low=0.001, high=DAY)
    retries: int = setting(4, "per request, on 429 / timeout / outage, with backoff", low=0,
                           high=100)
    backoff: float = setting(2.0, "seconds before the first retry, doubling (max 60)", low=0,
                             high=3600)
    max_output_tokens: int = setting(8192, "room for a whole-file answer", low=1,
                                     high=10_000_000)
    prompt_tokens: int = setting(24000, "the prompt's limit: older history is condensed to "
                                 "fit", low=100, high=100_000_000)
    max_attempts: int = setting(3, "answers per proposal; a refused one goes back with the "
                                "problem", low=1, high=100)
    repair_attempts: int = setting(2, "fixes of a crashed idea before it is abandoned", low=0,
                                   high=100)
    max_cost_usd: float = setting(0.0, "pause when the session's model cost reaches it; 0 = "
                                  "no limit", low=0, high=1e9)
    command: str = setting("", 'command: the CLI template, e.g. "claude -p" (the prompt on '
                           'stdin) or "aider --yes --message-file {prompt_file} train.py"')
    command_timeout: int = setting(1800, "seconds before the command agent is killed", low=1,
                                   high=7 * DAY, unit=" seconds")
    concurrency: int = setting(4, "llm: proposals asked for at once, ahead of need", low=1,
                               high=64)


@dataclass
class JudgeConfig:
    baseline_runs: int = setting(4, "runs of the unmodified baseline; 0 or 1 = no noise floor",
                                 low=0, high=1000)
    min_delta: float | str = setting("auto", '"auto" = the noise bar above; 0 = keep any gain',
                                     kind=AUTO_OR_NUMBER, low=0, high=1e12)
    noise_multiple: float = setting(2.0, "", low=0, high=100)
    keep_reruns: int = setting(1, "re-runs of each kept commit", low=0, high=100)
    second_look: float = setting(0.5, "a near-miss this close to its bar runs once more; 0 = "
                                 "never", low=0, high=1)
    disturbed: float = setting(0.03, "a run during which tasks waited for a CPU this share of "
                               "its time, while work not cockpit's used the CPUs, is run again "
                               "and left out of the noise floor and the bars (Linux); 0 = never",
                               low=0, high=1)
    trust: str = setting("auto", '"measured": only results cockpit measured; "reported": '
                         "train.py's printed value when it hands over no model; \"auto\": "
                         "measured when the workspace has its evaluator",
                         choices=("auto", "measured", "reported"))


@dataclass
class ResearchConfig:
    plateau: int = setting(12, "experiments on a line without a keep before the session "
                           "branches (from the line's strongest near-miss, or an earlier "
                           "best left too soon); 0 = never", low=0, high=100_000)


@dataclass
class EarlyStopConfig:
    enabled: bool | str = setting("auto", '"auto": once the noise floor is measured; true; '
                                  "false", kind=AUTO_OR_BOOL)
    shadow: bool = setting(False, "only journal what it would have stopped")
    min_progress: float = setting(DEFAULT_MIN_PROGRESS, "percent of the budget before a run "
                                  "may be stopped", low=0, high=100)
    margin: float = setting(DEFAULT_MARGIN, "spreads of the loss a run must be behind, "
                            "throughout the last 5% of its progress (widened while few "
                            "re-runs calibrate it)", low=0, high=1000)


@dataclass
class SandboxConfig:
    mode: str = setting("auto", '"auto" | "on" (refuse to run without it) | "off"',
                        choices=("auto", "on", "off"))
    network: bool = setting(False, "")
    read_only: list = setting([], "more paths a run may read, never write", kind=PATHS)
    writable: list = setting([], "more paths a run may write", kind=PATHS)


@dataclass
class RunnerConfig:
    kind: str = setting("local", "local | gpus | ray", choices=("local", "gpus", "ray"))
    workers: int = setting(0, "0 = one per GPU (gpus, ray), or per CPU without GPUs", low=0,
                           high=4096)
    address: str = setting("", 'ray: "auto", "host:6379" or "ray://head:10001"; "" = a '
                           "local Ray")


# What [notify] can send (all by default): see cockpit.notify.
NOTIFY_EVENTS = ("best", "paused", "crashes", "stalled", "ended", "summary")


@dataclass
class NotifyConfig:
    urls: list = setting([], "apprise URLs, one per service; better kept out of this file: "
                         "~/.config/cockpit/notify or COCKPIT_NOTIFY_URLS", kind=STRINGS)
    events: list = setting(list(NOTIFY_EVENTS), "", kind=STRINGS, choices=NOTIFY_EVENTS)
    crash_streak: int = setting(3, "crashes in a row worth a message; 0 = never", low=0,
                                high=1000)
    stalled_experiments: int = setting(20, "experiments in a row without a keep; 0 = never",
                                       low=0, high=100_000)
    stalled_hours: float = setting(4.0, "hours without a keep; 0 = never", low=0,
                                   high=24 * 365)
    approval_minutes: float = setting(15.0, "a proposal waiting this long for you; 0 = never",
                                      low=0, high=60 * 24 * 365)
    summary_at: str = setting("08:00", 'the daily summary, local time (HH:MM[:SS]); "" = none',
                              kind=CLOCK)
    min_interval: float = setting(60.0, "seconds between two messages to one service "
                                  "(merged)", low=0, high=DAY)
    retries: int = setting(3, "resends of a failed message", low=0, high=100)
    backoff: float = setting(5.0, "seconds before the first resend, doubling", low=0, high=DAY)


@dataclass
class TrackingConfig:
    tensorboard: bool | str = setting("auto", '"auto": when the tensorboard package is '
                                      "installed; event files in .cockpit/<tag>/tensorboard",
                                      kind=AUTO_OR_BOOL)
    wandb: bool = setting(False, "each experiment a W&B run too (pip install wandb)")
    wandb_project: str = setting("cockpit", "", nonempty=True)
    wandb_mode: str = setting("offline", '"offline": kept in .cockpit/<tag>/wandb for `wandb '
                              'sync`; "online" uploads', choices=("offline", "online"))
    mlflow: bool = setting(False, "each experiment an MLflow run too (pip install mlflow)")
    mlflow_uri: str = setting("", '"" = a file store in .cockpit/<tag>/mlruns')


@dataclass
class ServeConfig:
    host: str = setting("127.0.0.1", "`cockpit serve`; another address is on the network",
                        nonempty=True)
    port: int = setting(8000, "0 = any free port", low=0, high=65535)


@dataclass
class KeysConfig:
    """[keys]: action id -> key(s); the keymap checks the names (see cockpit.tui.keymap)."""


@dataclass
class Config:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    research: ResearchConfig = field(default_factory=ResearchConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    keys: dict = field(default_factory=dict)  # [keys]: action id -> key(s), checked by keymap

    def to_dict(self) -> dict:
        """Every setting, as the journal records it: a notify URL (it holds tokens) only by
        its scheme."""
        data = dataclasses.asdict(self)
        data["notify"]["urls"] = [url.split("://", 1)[0] + "://***" for url in self.notify.urls]
        if "@" in self.tracking.mlflow_uri:  # a server's URI may hold a user and password
            data["tracking"]["mlflow_uri"] = self.tracking.mlflow_uri.split("://", 1)[0] + "://***"
        return data


# The sections in the template's order, with a comment of their own where they have one.
SECTIONS = [("experiment", ExperimentConfig, ""), ("metric", MetricConfig, ""),
            ("agent", AgentConfig, ""), ("judge", JudgeConfig, ""),
            ("research", ResearchConfig, ""),
            ("early_stop", EarlyStopConfig, ""), ("sandbox", SandboxConfig, ""),
            ("runner", RunnerConfig, ""), ("notify", NotifyConfig, ""),
            ("tracking", TrackingConfig, ""), ("serve", ServeConfig, ""),
            ("keys", KeysConfig, 'remap any key of the cockpit: approve = "y"')]


def template() -> str:
    """cockpit.toml with every key at its default and its help (the README's block too)."""
    return render(SECTIONS)


def choices(section: type, key: str) -> tuple:
    """What a setting's string may be (as declared)."""
    return next(f.metadata["choices"] for f in dataclasses.fields(section) if f.name == key)


def load_config(workspace: Path) -> Config:
    """Read workspace/cockpit.toml if it exists; defaults otherwise."""
    path = workspace / CONFIG_NAME
    config = Config()
    if not path.exists() and not path.is_symlink():
        return config
    if path.is_dir():
        raise ConfigError(f"{path} is a directory: cockpit.toml must be a file (move the "
                          "directory away)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    sections = {f.name for f in dataclasses.fields(config)}
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(
                f"{path}: unknown section [{section}]; allowed: "
                + ", ".join(f"[{s}]" for s in sorted(sections))
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a table [{section}]")
        if section == "keys":
            set_keys(config, values, str(path))
            continue
        for key, value in values.items():
            set_value(config, section, key, value, source=str(path))
    check_config(config, str(path))
    return config


def set_keys(config: Config, values: dict, source: str) -> None:
    """[keys]: action id -> a key, keys separated by commas, or a list of keys (the keymap
    checks the names when the cockpit starts; `cockpit doctor` checks them too)."""
    for key, value in values.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{source}: [keys] {key} must be a key such as \"x\" or "
                              f"\"ctrl+x\", got {value!r}")
        config.keys[key] = value


def set_value(config: Config, section: str, key: str, value, source: str = "command line") -> None:
    """Set config.section.key after checking it against its declaration."""
    target = getattr(config, section)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key [{section}] {key}; allowed: " + ", ".join(sorted(fields))
        )
    setattr(target, key, check(fields[key], value, f"[{section}] {key}", source))


def check_config(config: Config, source: str) -> None:
    """What no single key can say: keys that contradict each other."""
    low, high = config.metric.plausible_range()
    if low >= high:
        raise ConfigError(f"{source}: [metric] min ({low:g}) must be below max ({high:g})")
