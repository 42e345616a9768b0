"""The `llm` agent: any model litellm reaches, hosted (anthropic/, openai/, gemini/,
openrouter/ ...) or local (ollama/, or any OpenAI-compatible api_base such as vLLM).

Keys come from the provider's usual environment variable, as litellm reads them. litellm is
imported on first use (it takes seconds), so the offline agent never pays for it.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from cockpit.agents.base import AgentContext, AgentError, AgentUnavailable, ProposalFailed
from cockpit.agents.edits import EditRefused, apply_answer, describe, parse_answer
from cockpit.agents.prompt import RepairTask, build_messages, prompt_tokens
from cockpit.domain.proposals import Proposal
from cockpit.domain.state import Experiment
from cockpit.workspace.config import AgentConfig

MAX_BACKOFF = 60.0  # seconds: the longest wait between two tries of one request
ANSWER_LIMIT = 50_000  # characters of an answer kept in the journal
# Providers that run on this machine or a server of the user's: no key to check.
KEYLESS_PROVIDERS = {"ollama", "ollama_chat", "hosted_vllm", "vllm", "lm_studio", "llamafile",
                     "xinference", "openai_like"}
ABANDON = "ABANDON:"


def import_litellm():
    """litellm, quiet and offline: no cost map download, no telemetry, no debug banners."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class ModelClient:
    """One chat request at a time, with backoff on what may pass (429, timeouts, outages)
    and one clear line for what the user must fix (auth, unknown model, bad api_base)."""

    def __init__(self, settings: AgentConfig, sleep=time.sleep):
        self.settings = settings
        self.sleep = sleep

    def check(self) -> None:
        """Raise AgentError if the model string or its key cannot work (no request made)."""
        litellm = import_litellm()
        model = self.settings.model
        try:
            _, provider, _, _ = litellm.get_llm_provider(
                model, api_base=self.settings.api_base or None)
        except Exception:
            raise AgentError(
                f"model {model!r}: litellm does not know this provider; write it as "
                "provider/model, e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, "
                "ollama/qwen2.5-coder") from None
        if self.settings.api_base or provider in KEYLESS_PROVIDERS:
            return
        missing = litellm.validate_environment(model).get("missing_keys") or []
        if missing:
            raise AgentError(f"model {model}: {', '.join(missing)} is not set; export it in the "
                             "shell that runs cockpit (keys are read from the environment only)")

    def complete(self, messages: list[dict], on_retry=None, max_tokens: int | None = None,
                 retries: int | None = None) -> Reply:
        litellm = import_litellm()
        s = self.settings
        retries = s.retries if retries is None else retries
        kwargs = {"model": s.model, "messages": messages, "temperature": s.temperature,
                      "timeout": s.request_timeout, "max_tokens": max_tokens or s.max_output_tokens,
                      "num_retries": 0, "max_retries": 0}  # ours: journaled, bounded
        if s.api_base:
            kwargs["api_base"] = s.api_base
            if self._needs_placeholder_key(litellm):
                kwargs["api_key"] = "no-key"  # a local server without auth still needs one
        for attempt in range(retries + 1):
            start = time.monotonic()
            try:
                response = litellm.completion(**kwargs)
            except Exception as exc:  # classified below: retry, or one line for the user
                reason = self._classify(litellm, exc)
                if attempt >= retries:
                    tries = f"{retries + 1} tries" if retries else "one try"
                    raise AgentUnavailable(f"model {s.model} failed after {tries}: "
                                           f"{reason}") from None
                wait = min(MAX_BACKOFF, s.backoff * 2 ** attempt)
                if on_retry is not None:
                    on_retry(reason=reason, wait=round(wait, 2), retry=attempt + 1)
                self.sleep(wait)
                continue
            return self._reply(litellm, response, time.monotonic() - start)
        raise AssertionError("unreachable")

    def _needs_placeholder_key(self, litellm) -> bool:
        try:
            return bool(litellm.validate_environment(self.settings.model).get("missing_keys"))
        except Exception:
            return False

    def _classify(self, litellm, exc: Exception) -> str:
        """A short reason if the failure may pass (retry it); AgentError if the user must act."""
        e = litellm.exceptions
        model, base = self.settings.model, self.settings.api_base
        where = f" at {base}" if base else ""
        text = _first_line(exc)
        if isinstance(exc, e.Timeout):
            return f"no answer within {self.settings.request_timeout:g} s (request_timeout)"
        if isinstance(exc, e.RateLimitError):
            return f"rate limited (429): {text}"
        if isinstance(exc, (e.ServiceUnavailableError, e.InternalServerError, e.BadGatewayError)):
            return f"provider error: {text}"
        if isinstance(exc, e.APIConnectionError):
            if base and ("Connection refused" in str(exc) or "connect" in str(exc).lower()):
                return f"cannot connect{where}: {text}"
            return f"connection error: {text}"
        if isinstance(exc, (e.AuthenticationError, e.PermissionDeniedError)):
            raise AgentError(f"model {model}{where}: the provider refused the key ({text}); "
                             "check the provider's API key in the environment") from None
        if isinstance(exc, e.NotFoundError):
            raise AgentError(f"model {model}{where} was not found ({text}); check [agent] model"
                             + (" and api_base" if base else "")) from None
        if isinstance(exc, e.ContextWindowExceededError):
            raise AgentError(f"model {model}: the prompt is too long for it ({text}); lower "
                             "[agent] prompt_tokens or use a model with a larger context") from None
        if isinstance(exc, (e.BadRequestError, e.UnsupportedParamsError)):
            raise AgentError(f"model {model}{where} refused the request: {text}") from None
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and (status == 429 or status >= 500):
            return f"provider error {status}: {text}"
        raise AgentError(f"model {model}{where}: {type(exc).__name__}: {text}") from None

    @staticmethod
    def _reply(litellm, response, seconds: float) -> Reply:
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content if choice is not None else "") or ""
        usage = getattr(response, "usage", None)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            try:
                cost = litellm.completion_cost(completion_response=response)
            except Exception:
                cost = 0.0  # a local or unpriced model
        return Reply(text=text,
                     prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                     completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                     cost_usd=float(cost or 0.0), seconds=seconds)


class LLMAgent:
    name = "llm"
    slow = True  # answers take seconds to minutes: the first is asked for ahead of need

    def __init__(self, settings: AgentConfig, client: ModelClient | None = None):
        if not settings.model.strip():
            raise AgentError("the llm agent needs a model: set [agent] model in cockpit.toml or "
                             "pass --model (e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, "
                             "ollama/qwen2.5-coder)")
        self.settings = settings
        self.client = client or ModelClient(settings)
        self.concurrency = settings.concurrency  # proposals asked for at once, ahead of need

    def preflight(self) -> None:
        self.client.check()

    def propose(self, ctx: AgentContext) -> Proposal:
        messages = build_messages(ctx, self.settings.prompt_tokens)
        proposal = self._converse(ctx, messages, kind="propose")
        assert proposal is not None  # only a repair may be abandoned
        return proposal

    def repair(self, ctx: AgentContext, crashed: Experiment, log_tail: str) -> Proposal | None:
        messages = build_messages(ctx, self.settings.prompt_tokens, RepairTask(crashed, log_tail))
        return self._converse(ctx, messages, kind="repair")

    def _converse(self, ctx: AgentContext, messages: list[dict], kind: str) -> Proposal | None:
        """Ask, check the answer, and send a refused one back with its exact problem."""
        total = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        problem = ""
        for attempt in range(1, self.settings.max_attempts + 1):
            tokens = prompt_tokens(messages)
            def retried(attempt: int = attempt, **fields) -> None:  # called within this try
                ctx.record("retry", kind=kind, attempt=attempt, **fields)

            reply = self.client.complete(messages, on_retry=retried)
            total["prompt_tokens"] += reply.prompt_tokens
            total["completion_tokens"] += reply.completion_tokens
            total["cost_usd"] += reply.cost_usd
            record = {"kind": kind, "attempt": attempt, "prompt_estimate": tokens,
                          "prompt_tokens": reply.prompt_tokens,
                          "completion_tokens": reply.completion_tokens,
                          "cost_usd": reply.cost_usd, "seconds": round(reply.seconds, 3),
                          "answer": reply.text[:ANSWER_LIMIT]}
            if kind == "repair" and _abandons(reply.text):
                ctx.record("attempt", accepted=True, abandoned=True, **record)
                return None
            try:
                answer = parse_answer(reply.text, ctx.editable)
                source = apply_answer(answer, ctx.source, ctx.editable)
                description, hypothesis = describe(answer)
            except EditRefused as exc:
                problem = str(exc)
                ctx.record("attempt", accepted=False, problem=problem, **record)
                messages = messages + [
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": f"Your answer was refused: {problem}. Answer "
                     f"again in the same format, against the current {ctx.editable} as shown."}]
                continue
            ctx.record("attempt", accepted=True, description=description,
                       format="blocks" if answer.edits else "whole file", **record)
            total["cost_usd"] = round(total["cost_usd"], 8)
            return Proposal(description=description, hypothesis=hypothesis, source=source,
                            attempts=attempt, usage=total)
        raise ProposalFailed(f"{self.settings.max_attempts} answers in a row were refused; "
                             f"the last: {problem}")


def _abandons(text: str) -> bool:
    return any(line.strip().upper().startswith(ABANDON) for line in text.splitlines())


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    for prefix in ("litellm.", "OpenAIException - "):
        text = text.replace(prefix, "")
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."
