"""Where experiments execute. A runner takes a command and a log path and returns a RunResult;
the research loop does not care which backend it talks to."""
from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner, RunResult

__all__ = ["LocalRunner", "RunResult", "training_env"]
