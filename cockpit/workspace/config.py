"""cockpit.toml: every key has a default, so the file is optional.

A bad file, key or value raises ConfigError with one line naming the file, the key
and what is allowed; the CLI prints that line and exits.
"""
from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.domain.earlystop import DEFAULT_MARGIN, DEFAULT_MIN_PROGRESS
from cockpit.domain.errors import CockpitError
from cockpit.domain.metric import DIRECTIONS, Metric

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_NAME = "cockpit.toml"
STARTUP_ALLOWANCE = 120  # seconds a run may spend on imports, data loading and eval


class ConfigError(CockpitError):
    """A user mistake in cockpit.toml or on the command line (one line, no traceback)."""


@dataclass
class ExperimentConfig:
    train_command: str = "python train.py"
    time_budget: int = 300  # seconds of training, passed to train.py as COCKPIT_TIME_BUDGET
    timeout: int = 0  # hard kill after this many seconds; 0 = 2 x time_budget + allowance
    editable: str = "train.py"
    prepare_command: str = "auto"  # "auto": run prepare.py like train.py, if it exists; "" = never
    # Files a run must leave as they are (read-only in the sandbox, checked after every run).
    fixed: list = field(default_factory=lambda: ["prepare.py"])
    # The data a run reads: checked unchanged after every run. "auto": prepare.py's own
    # (COCKPIT_DATA_DIR, else ~/.cache/cockpit/data) when it uses one; "" = none.
    data_dir: str = "auto"
    # Untracked paths linked into cockpit's worktrees (a .venv, a data folder): "auto" = every
    # top-level directory git ignores in the checkout (none named like a secret), or names.
    share: list | str = "auto"
    env: list = field(default_factory=list)  # variables passed to runs beyond the allow-list
    max_log_mb: int = 16  # a run's log keeps at most this much: its start and its end
    # a run is stopped (a crash, and the session pauses) when a disk it writes to has less
    # free space than this: the session keeps room to record it; 0 = no floor
    min_free_mb: int = 100

    @property
    def hard_timeout(self) -> int:
        return self.timeout or 2 * self.time_budget + STARTUP_ALLOWANCE


@dataclass
class MetricConfig:
    name: str = "val_bpb"
    direction: str = "lower"
    # A value outside [min, max] is not a result but a broken run (a crash). "auto": a
    # bits-per-byte metric lies in [0, 64]; any metric is finite and below 1e9 in size.
    min: float | str = "auto"
    max: float | str = "auto"

    def to_metric(self) -> Metric:
        """The metric these settings describe (what decides direction and range)."""
        return Metric(self.name, self.direction,
                      None if self.min == "auto" else float(self.min),
                      None if self.max == "auto" else float(self.max))

    def plausible_range(self) -> tuple[float, float]:
        return self.to_metric().plausible_range()


@dataclass
class AgentConfig:
    kind: str = "tune"  # tune (offline) | llm (any model through litellm) | command (a CLI agent)
    # llm: keys come from the provider's usual environment variable, never from a file.
    model: str = ""  # a litellm model string: anthropic/..., openai/..., ollama/..., ...
    api_base: str = ""  # e.g. http://localhost:8000/v1 for vLLM; "" = the provider's default
    temperature: float = 0.7
    request_timeout: float = 300.0  # seconds per model request
    retries: int = 4  # retries of a request on a rate limit, timeout or outage
    backoff: float = 2.0  # seconds before the first retry; doubles each time
    max_output_tokens: int = 8192  # room for a whole-file answer
    prompt_tokens: int = 24000  # the prompt's size limit; older history is condensed to fit
    max_attempts: int = 3  # answers per proposal: a refused one is sent back with the problem
    repair_attempts: int = 2  # fixes of a crashed idea before it is abandoned
    max_cost_usd: float = 0.0  # the loop pauses when the session's model cost reaches it; 0 = no limit
    # command: an external coding agent, e.g. "claude -p" (the prompt arrives on stdin) or
    # "aider --yes --message-file {prompt_file} train.py"; run without a shell.
    command: str = ""
    command_timeout: int = 1800  # seconds before a command agent is killed
    concurrency: int = 4  # llm: proposals made at once (ahead of need, for idle workers)


@dataclass
class JudgeConfig:
    # runs of the unmodified baseline at the start; 0 or 1 = no noise floor. Few runs say
    # little about the noise (2 runs: a keep needs ~14 std), so 4 (a keep needs ~3.7 std)
    baseline_runs: int = 4
    min_delta: float | str = "auto"  # gain a keep needs; "auto" = noise_multiple x noise; 0 = reference
    noise_multiple: float = 2.0
    keep_reruns: int = 1  # re-runs of each kept commit, so the next bar is not one lucky run
    # a near-miss whose gain reaches this share of its bar runs once more and is judged on
    # the mean of its two runs (a lower bar); 0 = never
    second_look: float = 0.5


@dataclass
class EarlyStopConfig:
    # "auto": on once the session's noise floor is measured (re-runs give the loss curve's
    # spread); true: on as soon as it can be calibrated; false: never.
    enabled: bool | str = "auto"
    shadow: bool = False  # only journal what it would have stopped, stop nothing
    min_progress: float = DEFAULT_MIN_PROGRESS  # percent of the budget before a stop
    margin: float = DEFAULT_MARGIN  # how many spreads of the loss a run must be behind


@dataclass
class SandboxConfig:
    # "auto": runs are isolated where this machine can (bubblewrap, user namespaces), and
    # cockpit says what is not where it cannot; "on": refuse to run without isolation; "off".
    mode: str = "auto"
    network: bool = False  # a train.py that downloads (kernels, weights) needs it
    read_only: list = field(default_factory=list)  # more paths a run may read, never write
    writable: list = field(default_factory=list)  # paths a run may write besides its worktree


@dataclass
class RunnerConfig:
    kind: str = "local"  # local: one run at a time | gpus: one worker per GPU | ray: a Ray cluster
    workers: int = 0  # parallel workers; 0 = one per GPU (gpus), one per cluster GPU or CPU (ray)
    address: str = ""  # ray: an existing cluster ("auto", "ray://host:10001"); "" = a local Ray


# What [notify] can send (all by default): see cockpit.notify.
NOTIFY_EVENTS = ("best", "paused", "crashes", "stalled", "ended", "summary")


@dataclass
class NotifyConfig:
    urls: list = field(default_factory=list)  # apprise URLs, one per service (ntfy://, tgram://, ...)
    events: list = field(default_factory=lambda: list(NOTIFY_EVENTS))
    crash_streak: int = 3  # crashes in a row that send a message; 0 = never
    stalled_experiments: int = 20  # experiments in a row without a keep; 0 = never
    stalled_hours: float = 4.0  # hours without a keep; 0 = never
    approval_minutes: float = 15.0  # a proposal waiting this long for a human; 0 = never
    summary_at: str = "08:00"  # local time of the daily summary (HH:MM[:SS]); "" = none
    min_interval: float = 60.0  # seconds between two messages to one service; more are merged
    retries: int = 3  # resends of a failed message, with a backoff that doubles
    backoff: float = 5.0  # seconds before the first resend


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # `cockpit serve`: another address needs --host and a token
    port: int = 8000  # 0 = any free port


@dataclass
class Config:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    keys: dict = field(default_factory=dict)  # [keys]: action id -> key(s), checked by keymap

    def to_dict(self) -> dict:
        """Every setting, as the journal records it: a notify URL (it holds tokens) only by
        its scheme."""
        data = dataclasses.asdict(self)
        data["notify"]["urls"] = [url.split("://", 1)[0] + "://***" for url in self.notify.urls]
        return data


DAY = 24 * 3600
# Values outside the type that are still refused, with what is allowed.
CHOICES = {
    ("metric", "direction"): DIRECTIONS,
    ("agent", "kind"): ("tune", "llm", "command"),
    ("runner", "kind"): ("local", "gpus", "ray"),
    ("sandbox", "mode"): ("auto", "on", "off"),
    ("notify", "events"): NOTIFY_EVENTS,
}
# (low, high) allowed for each number: nothing a value can do reaches a timer or a loop
# that would misbehave with it (NaN and infinities are refused everywhere).
RANGES = {
    ("experiment", "time_budget"): (1, 7 * DAY),
    ("experiment", "timeout"): (0, 30 * DAY),
    ("experiment", "max_log_mb"): (1, 1_000_000),
    ("experiment", "min_free_mb"): (0, 1_000_000),
    ("agent", "temperature"): (0, 2),
    ("agent", "request_timeout"): (0.001, DAY),
    ("agent", "retries"): (0, 100),
    ("agent", "backoff"): (0, 3600),
    ("agent", "max_output_tokens"): (1, 10_000_000),
    ("agent", "prompt_tokens"): (100, 100_000_000),
    ("agent", "max_attempts"): (1, 100),
    ("agent", "repair_attempts"): (0, 100),
    ("agent", "max_cost_usd"): (0, 1e9),
    ("agent", "command_timeout"): (1, 7 * DAY),
    ("agent", "concurrency"): (1, 64),
    ("judge", "baseline_runs"): (0, 1000),
    ("judge", "noise_multiple"): (0, 100),
    ("judge", "keep_reruns"): (0, 100),
    ("judge", "second_look"): (0, 1),
    ("judge", "min_delta"): (0, 1e12),
    ("metric", "min"): (-1e12, 1e12),
    ("metric", "max"): (-1e12, 1e12),
    ("early_stop", "min_progress"): (0, 100),
    ("early_stop", "margin"): (0, 1000),
    ("runner", "workers"): (0, 4096),
    ("notify", "crash_streak"): (0, 1000),
    ("notify", "stalled_experiments"): (0, 100_000),
    ("notify", "stalled_hours"): (0, 24 * 365),
    ("notify", "approval_minutes"): (0, 60 * 24 * 365),
    ("notify", "min_interval"): (0, DAY),
    ("notify", "retries"): (0, 100),
    ("notify", "backoff"): (0, DAY),
    ("serve", "port"): (0, 65535),
}
AUTO_OR_NUMBER = {("judge", "min_delta"), ("metric", "min"), ("metric", "max")}
AUTO_OR_BOOL = {("early_stop", "enabled")}
AUTO_OR_LIST = {("experiment", "share")}
NON_EMPTY = {("experiment", "train_command"), ("experiment", "editable"), ("metric", "name"),
             ("serve", "host")}
CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")
LISTS_OF_CHOICES = {("notify", "events"), ("notify", "urls")}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PATH_KEYS = {"editable", "data_dir"}  # string settings that name a path
MAX_NAME, MAX_PATH = 255, 4096  # what Linux filesystems take


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
    """Set config.section.key after checking its type and allowed values."""
    target = getattr(config, section)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key [{section}] {key}; allowed: " + ", ".join(sorted(fields))
        )
    default = getattr(type(target)(), key)
    expected = type(default)
    name = f"[{section}] {key}"
    if (section, key) in AUTO_OR_NUMBER:
        if value == "auto":
            setattr(target, key, value)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name} must be \"auto\" or a number, got {value!r}")
        expected = float
    elif (section, key) in AUTO_OR_BOOL:
        if value != "auto" and not isinstance(value, bool):
            raise ConfigError(f"{source}: {name} must be true, false or \"auto\", got {value!r}")
        setattr(target, key, value)
        return
    elif (section, key) in AUTO_OR_LIST:
        if value != "auto":
            setattr(target, key, _paths(value, name, source))
        else:
            setattr(target, key, value)
        return
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {name} must be true or false, got {value!r}")
    elif expected is list and (section, key) in LISTS_OF_CHOICES:
        _set_list(target, section, key, value, source)
        return
    elif expected is list:
        value = _paths(value, name, source) if key != "env" else _names(value, name, source)
    elif expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {name} must be a finite number, got {value!r}")
        value = float(value)
    elif expected is str and not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
    elif expected is str and "\0" in value:
        raise ConfigError(f"{source}: {name} has a NUL character in it")
    elif expected is str and key in PATH_KEYS:
        _check_path(value, name, source)
    allowed = CHOICES.get((section, key))
    if allowed and value not in allowed:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not allowed; use one of: " + ", ".join(allowed)
        )
    bounds = RANGES.get((section, key))
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        low, high = bounds
        unit = " seconds" if "timeout" in key or key == "time_budget" else ""
        zero = " (0 = automatic)" if (section, key) == ("experiment", "timeout") else ""
        raise ConfigError(f"{source}: {name} must be between {low:g} and {high:g}{unit}"
                          f"{zero}, got {value}")
    if (section, key) in NON_EMPTY and not value.strip():
        raise ConfigError(f"{source}: {name} must not be empty")
    if (section, key) == ("notify", "summary_at") and value and not CLOCK_TIME.fullmatch(value):
        raise ConfigError(f"{source}: {name} must be a local time like \"08:00\" (or \"\" for "
                          f"none), got {value!r}")
    if (section, key) == ("serve", "port") and value > 65535:
        raise ConfigError(f"{source}: {name} must be a port number up to 65535, got {value}")
    setattr(target, key, value)


def check_config(config: Config, source: str) -> None:
    """What no single key can say: keys that contradict each other."""
    low, high = config.metric.plausible_range()
    if low >= high:
        raise ConfigError(f"{source}: [metric] min ({low:g}) must be below max ({high:g})")


def _paths(value, name: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{source}: {name} must be a list of paths, e.g. [\"data\"], "
                          f"got {value!r}")
    for path in value:
        _check_path(path, name, source)
    return [v.strip() for v in value]


def _check_path(path: str, name: str, source: str) -> None:
    """A path the system can take: no NUL byte, no name longer than a filesystem allows."""
    if "\0" in path:
        raise ConfigError(f"{source}: {name} has a path with a NUL character in it")
    if any(len(part.encode()) > MAX_NAME for part in path.split("/")) \
            or len(path.encode()) > MAX_PATH:
        raise ConfigError(f"{source}: {name} has a path too long for a filesystem "
                          f"({len(path)} characters)")


def _names(value, name: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and ENV_NAME.match(v)
                                              for v in value):
        raise ConfigError(f"{source}: {name} must be a list of variable names, e.g. "
                          f"[\"WANDB_MODE\"], got {value!r}")
    return list(value)


def _set_list(target, section: str, key: str, value, source: str) -> None:
    """A list of strings, each one of CHOICES where the key has them."""
    name = f"[{section}] {key}"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        shown = type(value).__name__ if key == "urls" else repr(value)  # a URL holds tokens
        raise ConfigError(f"{source}: {name} must be a list of strings, got {shown}")
    allowed = CHOICES.get((section, key))
    wrong = [v for v in value if allowed and v not in allowed]
    if wrong:
        raise ConfigError(f"{source}: {name} has {wrong[0]!r}; allowed: " + ", ".join(allowed))
    setattr(target, key, list(value))


DEFAULT_TOML = """\
# cockpit.toml: every key is optional; these are the defaults.

[experiment]
train_command = "python train.py"   # e.g. "uv run train.py" in an autoresearch checkout
time_budget = 300                   # seconds of training per experiment
timeout = 0                         # hard kill (seconds); 0 = 2 x time_budget + 120
editable = "train.py"               # the one file the agent may change
prepare_command = "auto"            # "auto" runs prepare.py before the first run; "" never
fixed = ["prepare.py"]              # files a run must leave as they are (checked every run)
data_dir = "auto"                   # the data a run reads, checked unchanged every run
share = "auto"                      # untracked paths linked into cockpit's worktrees
                                    # ("auto": the directories git ignores here, e.g. .venv)
env = []                            # more variables passed to runs, e.g. ["WANDB_MODE"]
max_log_mb = 16                     # a run's log keeps its start and its end within this
min_free_mb = 100                   # a run that leaves less free disk is stopped (a crash)

[metric]
name = "val_bpb"                    # read from the summary block train.py prints
direction = "lower"                 # or "higher" (e.g. test_acc)
min = "auto"                        # a value outside [min, max] is a broken run, never a
max = "auto"                        # result ("auto": bits per byte lies in [0, 64])

[agent]
kind = "tune"                       # tune: offline, perturbs train.py's constants
                                    # llm: any model through litellm; command: a CLI agent
model = ""                          # llm: "anthropic/claude-sonnet-4-5", "openai/gpt-4o",
                                    # "ollama/qwen2.5-coder", ... (keys: the provider's env var)
api_base = ""                       # llm: a local server, e.g. "http://localhost:8000/v1" (vLLM)
temperature = 0.7
request_timeout = 300.0             # seconds per model request
retries = 4                         # per request, on a rate limit, timeout or outage, then pause
backoff = 2.0                       # seconds before the first retry, doubling
max_output_tokens = 8192
prompt_tokens = 24000               # prompt size limit: older history is condensed to fit
max_attempts = 3                    # answers per proposal; a bad one is sent back with the problem
repair_attempts = 2                 # fixes of a crashed idea before it is abandoned
max_cost_usd = 0.0                  # pause the loop when the model cost reaches it; 0 = no limit
command = ""                        # command: e.g. "claude -p" (prompt on stdin) or
                                    # "aider --yes --message-file {prompt_file} train.py"
command_timeout = 1800              # seconds before the command agent is killed

[judge]
baseline_runs = 4                   # runs of the unmodified baseline: their spread is the noise
min_delta = "auto"                  # a keep must beat the best by more; "auto" = noise_multiple x
                                    # the noise spread; 0 = keep any gain (the reference)
noise_multiple = 2.0
keep_reruns = 1                     # re-runs of a kept commit (with a noise floor): its mean is
                                    # the bar for the next idea, not one lucky run
second_look = 0.5                   # a near-miss this close to its bar (share of it) runs
                                    # once more, judged on the mean of its two runs; 0 = never

[early_stop]
enabled = "auto"                    # stop a run whose loss falls behind the best's beyond the
                                    # noise ("auto": once the noise floor is measured)
shadow = false                      # only journal what it would have stopped
min_progress = 25.0                 # percent of the budget before a run may be stopped
margin = 1.0                        # spreads of the loss a run must be behind, throughout
                                    # the last 5% of its progress (widened while few re-runs
                                    # calibrate it)

[sandbox]
mode = "auto"                       # runs isolated: no network, .git and fixed files read-only,
                                    # your secrets out of sight; "on": refuse to run without it
network = false
read_only = []                      # more paths a run may read, never write
writable = []                       # more paths a run may write (its worktree always)

[keys]                              # remap any key of the cockpit, e.g. approve = "y"

[runner]
kind = "local"                      # local: one run at a time; gpus: one worker per GPU of
                                    # this box; ray: workers on a Ray cluster
workers = 0                         # 0 = one per GPU (gpus, ray), or per CPU without GPUs
address = ""                        # ray: "auto" or "ray://head:10001"; "" starts a local Ray

[notify]
urls = []                           # apprise URLs, one per service, e.g. "ntfys://ntfy.sh/TOPIC",
                                    # "tgram://BOT_TOKEN/CHAT_ID", "json://host/path";
                                    # `cockpit notify --test` tries them
events = ["best", "paused", "crashes", "stalled", "ended", "summary"]
crash_streak = 3                    # crashes in a row that send a message
stalled_experiments = 20            # experiments in a row without a keep
stalled_hours = 4.0                 # hours without a keep
approval_minutes = 15.0             # a proposal waiting this long for your approval
summary_at = "08:00"                # the daily summary, local time ("" = none)
min_interval = 60.0                 # seconds between two messages to one service (more are merged)
retries = 3                         # resends of a failed message (backoff doubling from 5 s)

[serve]
host = "127.0.0.1"                  # `cockpit serve`: another address needs --host (and a token)
port = 8000
"""
