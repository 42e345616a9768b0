"""The environment of a training run: only what it needs from cockpit's (an allow-list of
names and of tools' prefixes), and no secret by class (a secret's word in a name, any URL
in a value, a well-known token's shape); the human's own additions taken as they are, but
never a loader variable."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable

# What a training run needs from this process's environment, by exact name or prefix.
ALLOWED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM",
    "TMPDIR", "SHELL", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "MAMBA_ROOT_PREFIX", "MAMBA_EXE",
    "LD_LIBRARY_PATH", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "XDG_CACHE_HOME", "MPLBACKEND",
    "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    # uv's settings that select an interpreter or an environment (never its index URLs,
    # which may carry credentials)
    "UV_CACHE_DIR", "UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_NO_SYNC", "UV_OFFLINE",
    "UV_FROZEN", "UV_LOCKED", "UV_PYTHON_INSTALL_DIR", "UV_PYTHON_PREFERENCE",
    "UV_PYTHON_DOWNLOADS", "UV_LINK_MODE", "UV_NO_CACHE", "UV_COMPILE_BYTECODE",
    "UV_SYSTEM_PYTHON", "UV_NO_PROGRESS", "UV_TORCH_BACKEND", "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS",
})

ALLOWED_PREFIXES = (
    "LC_", "PYTHON", "CONDA_", "CUDA_", "NVIDIA_", "NCCL_", "CUDNN_", "CUBLAS_", "HIP_",
    "ROCM_", "ROCR_", "HSA_", "OMP_", "MKL_", "KMP_", "TORCH", "PYTORCH", "TRITON",
)

# cockpit's own variables a run reads; any other COCKPIT_* is the human's (a notification
# URL, a token) and stays out.
COCKPIT_NAMES = frozenset({"COCKPIT_DATA_DIR", "COCKPIT_TIME_BUDGET", "COCKPIT_SEED"})

# A name that looks like it holds a key, token, secret, password, credential, signature or
# session: dropped even when a prefix allows it (NVIDIA_API_KEY, TORCH_HUB_PAT).
SECRET_WORD = re.compile(
    r"(^|_)(KEYS?|TOKENS?|SECRETS?|PASS|PWD|AUTH|CREDS?|COOKIES?|SIGNATURES?|PAT|JWT|"
    r"BEARER|SESSIONS?|SIGS?|SIGNING|HMAC|SALT|OTP|NONCE|PRIVATE|CERTS?|PEM|DSN|WEBHOOKS?|"
    r"TOPICS?|CONN|CONNECTION)(_|$)"
    r"|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|APIKEY|ACCESSKEY|PRIVATEKEY|AUTHTOKEN",
    re.IGNORECASE,
)

# A value that is, or holds, a URL (https://…/t/<TOKEN>/…, ntfys://ntfy.sh/<topic>,
# postgres://user:pass@db): a run never needs one from cockpit's environment, and any URL
# may carry a credential in its user, path or query. Nor a value shaped like a well-known
# token (GitHub, GitLab, OpenAI, Slack, AWS, Hugging Face, a JWT).
URL_VALUE = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)

TOKEN_VALUE = re.compile(
    r"(^|[^A-Za-z0-9])(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|glpat-|sk-[A-Za-z0-9_-]{16,}|"
    r"(sk|rk)_live_|xox[abprs]-|(AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ|AIza[0-9A-Za-z_-]{30,}|nvapi-|npm_[A-Za-z0-9]{30,}|"
    r"pypi-[A-Za-z0-9_-]{30,})"
    # a private key, a connection string's key, credentials before a host (user:pass@host)
    r"|PRIVATE KEY-----|AccountKey=|SharedAccessKey=|Password=|^[^\s/:@]+:[^\s/@]+@[\w.-]+")

# Loader variables: a library they name is loaded into every process of the run, and
# into those cockpit starts to hold it (bwrap, the reaper) before any isolation exists.
LOADER_NAMES = frozenset({"LD_PRELOAD", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_PROFILE",
                          "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH"})

def training_env(extra: dict[str, str] | None = None,
                 passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a training run: only what it needs from this process's (an
    allow-list), nothing that looks like a secret by its name or its value, then the
    variables the human chose to pass (`passthrough`, taken as they are, but never a loader
    variable), then `extra`. LD_LIBRARY_PATH keeps only absolute directories (an empty or
    relative entry would load libraries from the run's own worktree)."""
    env = {name: value for name, value in os.environ.items()
           if _allowed(name) and not secret_looking(name, value)}
    env.update({name: os.environ[name] for name in passthrough
                if name in os.environ and name not in LOADER_NAMES})
    if "LD_LIBRARY_PATH" in env:
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in env["LD_LIBRARY_PATH"].split(":") if os.path.isabs(p))
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are printed
    env.update(extra or {})
    return env

def secret_looking(name: str, value: str) -> bool:
    """Whether a variable looks like it holds a secret: by its name, or by its value."""
    return bool(SECRET_WORD.search(name) or URL_VALUE.search(value)
                or TOKEN_VALUE.search(value))

def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name in COCKPIT_NAMES \
        or name.upper().startswith(ALLOWED_PREFIXES)
