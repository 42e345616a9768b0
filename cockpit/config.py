"""cockpit.toml: every key has a default, so the file is optional.

A bad file, key or value raises ConfigError with one line naming the file, the key
and what is allowed; the CLI prints that line and exits.
"""
from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.errors import CockpitError

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

    @property
    def hard_timeout(self) -> int:
        return self.timeout or 2 * self.time_budget + STARTUP_ALLOWANCE


@dataclass
class MetricConfig:
    name: str = "val_bpb"
    direction: str = "lower"

    def better(self, a: float, b: float) -> bool:
        """True when metric value a beats b."""
        return a < b if self.direction == "lower" else a > b


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


@dataclass
class JudgeConfig:
    # runs of the unmodified baseline at the start; 0 or 1 = no noise floor. Few runs say
    # little about the noise (2 runs: a keep needs ~14 std), so 4 (a keep needs ~3.7 std)
    baseline_runs: int = 4
    min_delta: float | str = "auto"  # gain a keep needs; "auto" = noise_multiple x noise; 0 = reference
    noise_multiple: float = 2.0
    keep_reruns: int = 1  # re-runs of each kept commit, so the next bar is not one lucky run


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
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    def to_dict(self) -> dict:
        """Every setting, as the journal records it: a notify URL (it holds tokens) only by
        its scheme."""
        data = dataclasses.asdict(self)
        data["notify"]["urls"] = [url.split("://", 1)[0] + "://***" for url in self.notify.urls]
        return data


# Values outside the type that are still refused, with what is allowed.
CHOICES = {
    ("metric", "direction"): ("lower", "higher"),
    ("agent", "kind"): ("tune", "llm", "command"),
    ("runner", "kind"): ("local", "gpus", "ray"),
    ("notify", "events"): NOTIFY_EVENTS,
}
POSITIVE = {("experiment", "time_budget"), ("agent", "request_timeout"),
            ("agent", "max_output_tokens"), ("agent", "prompt_tokens"),
            ("agent", "max_attempts"), ("agent", "command_timeout")}
NON_NEGATIVE = {("experiment", "timeout"), ("judge", "baseline_runs"), ("judge", "keep_reruns"), ("judge", "noise_multiple"), ("agent", "temperature"), ("agent", "retries"),
                ("agent", "backoff"), ("agent", "repair_attempts"), ("agent", "max_cost_usd"),
                ("runner", "workers")} | {
    ("notify", key) for key in ("crash_streak", "stalled_experiments", "stalled_hours",
                                "approval_minutes", "min_interval", "retries", "backoff")} | {
    ("serve", "port")}
AUTO_OR_NUMBER = {("judge", "min_delta")}
NON_EMPTY = {("experiment", "train_command"), ("experiment", "editable"), ("metric", "name"),
             ("serve", "host")}
CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")


def load_config(workspace: Path) -> Config:
    """Read workspace/cockpit.toml if it exists; defaults otherwise."""
    path = workspace / CONFIG_NAME
    config = Config()
    if not path.exists():
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
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
        for key, value in values.items():
            set_value(config, section, key, value, source=str(path))
    return config


def set_value(config: Config, section: str, key: str, value, source: str = "command line") -> None:
    """Set config.section.key after checking its type and allowed values."""
    target = getattr(config, section)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key [{section}] {key}; allowed: " + ", ".join(sorted(fields))
        )
    expected = type(getattr(type(target)(), key))
    name = f"[{section}] {key}"
    if (section, key) in AUTO_OR_NUMBER:
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or value < 0):
            raise ConfigError(f"{source}: {name} must be \"auto\" or a number >= 0, got {value!r}")
        setattr(target, key, value if value == "auto" else float(value))
        return
    if expected is list:
        _set_list(target, section, key, value, source)
        return
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
    if expected is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{source}: {name} must be a number, got {value!r}")
    if expected is float:
        value = float(value)
    if expected is str and not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
    allowed = CHOICES.get((section, key))
    if allowed and value not in allowed:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not allowed; use one of: " + ", ".join(allowed)
        )
    if (section, key) in POSITIVE and value <= 0:
        what = "number of seconds" if section == "experiment" or "timeout" in key else "number"
        raise ConfigError(f"{source}: {name} must be a positive {what}, got {value}")
    if (section, key) in NON_NEGATIVE and value < 0:
        if section == "experiment":
            raise ConfigError(f"{source}: {name} must be 0 (automatic) or a number of seconds, "
                              f"got {value}")
        raise ConfigError(f"{source}: {name} must be 0 or more, got {value}")
    if (section, key) in NON_EMPTY and not value.strip():
        raise ConfigError(f"{source}: {name} must not be empty")
    if (section, key) == ("notify", "summary_at") and value and not CLOCK_TIME.fullmatch(value):
        raise ConfigError(f"{source}: {name} must be a local time like \"08:00\" (or \"\" for "
                          f"none), got {value!r}")
    if (section, key) == ("serve", "port") and value > 65535:
        raise ConfigError(f"{source}: {name} must be a port number up to 65535, got {value}")
    setattr(target, key, value)


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

[metric]
name = "val_bpb"                    # read from the summary block train.py prints
direction = "lower"                 # or "higher" (e.g. test_acc)

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
