"""The model provider: one streamed step of the OpenAI-compatible Chat Completions API, through
the official `openai` client (the API OpenAI, Ollama, vLLM, llama.cpp, LM Studio and LiteLLM
serve)."""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
from django.conf import settings

from chat.models import LanguageModel
from credentials.crypto import CredentialUnreadable, readable_secret


class ProviderError(Exception):
    """The provider could not answer; `message` is safe to show (never holds the API key)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass
class ToolCallRequest:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass
class Step:
    content: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    interrupted: bool = False  # on_text asked to stop reading


def _client(model: LanguageModel) -> openai.OpenAI:
    try:
        api_key = readable_secret(model.api_key)  # decrypted here, only for the request
    except CredentialUnreadable:
        raise ProviderError(
            "The model's API key cannot be decrypted; an administrator must enter it again."
        ) from None
    return _client_for(model.base_url, api_key, settings.ASSISTANT_PROVIDER_TIMEOUT_SECONDS)


@functools.lru_cache(maxsize=32)
def _client_for(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """One client per provider and key, reused: building one (its connection pool and TLS
    context) costs more than a short answer. The client is safe to share between threads."""
    return openai.OpenAI(
        base_url=base_url,
        # Servers without keys (Ollama, llama.cpp) still need a non-empty value in the client.
        api_key=api_key or "no-key",
        timeout=openai.Timeout(timeout, connect=5.0),
        # A retry would repeat a streamed answer the user has partly seen: the turn says what
        # failed instead, and the user sends again.
        max_retries=0,
    )


def stream_step(
    *,
    model: LanguageModel,
    messages: list[dict],
    tools: list[dict],
    on_text: Callable[[str], bool],
) -> Step:
    """Ask the model once, streaming. `on_text` gets each piece of text as it arrives and
    returns False to stop reading (the user pressed stop). Tool calls are assembled from their
    streamed fragments, as the API sends them, by index."""
    step = Step()
    parts: list[str] = []
    calls: dict[int, dict] = {}
    kwargs = {"tools": tools} if tools else {}
    try:
        stream = _client(model).chat.completions.create(
            model=model.model_id,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **kwargs,
        )
        with stream:
            for chunk in stream:
                if chunk.usage is not None:
                    step.prompt_tokens = chunk.usage.prompt_tokens
                    step.completion_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        parts.append(delta.content)
                        if not on_text(delta.content):
                            step.interrupted = True
                    for fragment in (delta.tool_calls or []) if delta is not None else []:
                        call = calls.setdefault(fragment.index, {"id": "", "name": "", "args": []})
                        if fragment.id:
                            call["id"] = fragment.id
                        if fragment.function is not None:
                            call["name"] += fragment.function.name or ""
                            call["args"].append(fragment.function.arguments or "")
                    if choice.finish_reason:
                        step.finish_reason = choice.finish_reason
                if step.interrupted:
                    break
    except openai.APITimeoutError:
        raise ProviderError("The model did not answer in time.") from None
    except openai.APIConnectionError:
        raise ProviderError("The model provider could not be reached.") from None
    except openai.AuthenticationError:
        raise ProviderError(
            "The model provider refused the configured API key; an administrator must fix it."
        ) from None
    except openai.RateLimitError:
        raise ProviderError(
            "The model provider is rate-limiting requests; try again soon."
        ) from None
    except openai.APIStatusError as exc:
        raise ProviderError(
            f"The model provider answered with an error ({exc.status_code})."
        ) from None
    except openai.OpenAIError:
        raise ProviderError("The model provider sent an answer that could not be read.") from None
    step.content = "".join(parts)
    step.tool_calls = [
        ToolCallRequest(
            id=call["id"] or f"call_{index}", name=call["name"], arguments="".join(call["args"])
        )
        for index, call in sorted(calls.items())
    ]
    return step
