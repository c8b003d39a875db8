"""What kind of server answers at an endpoint, which models it serves and how long a prompt it takes.

The OpenAI chat API is the same everywhere, but what surrounds it is not. The context window decides how
much of a document fits, and each server reports it somewhere else: vLLM in `GET /v1/models`
(`max_model_len`), llama.cpp in `GET /props` (`default_generation_settings.n_ctx`, the context of one slot;
its `/v1/models` only knows the context the model was trained with, `meta.n_ctx_train`), TGI in `GET /info`
(`max_total_tokens`, `max_input_tokens`). The server's kind also decides the name of its repetition penalty
(see `http.SERVER_PENALTIES`).

Probing is a courtesy, never a precondition: any failure (no such route, a proxy in between, a timeout) just
leaves the server `unknown`, and the backend then sends what every kind understands. The one thing a probe
does refuse is a model name the server says it does not serve: every request would fail the same way, so the
run stops at once with the names it does serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)

VLLM = "vllm"
LLAMA_CPP = "llama.cpp"
TGI = "tgi"
UNKNOWN = "unknown"
SERVER_KINDS = (VLLM, LLAMA_CPP, TGI, UNKNOWN)

PROBE_TIMEOUT_S = 10.0
# `owned_by` in /v1/models as each server writes it.
_OWNERS = {"vllm": VLLM, "llamacpp": LLAMA_CPP, "llama.cpp": LLAMA_CPP, "tgi": TGI}


class ModelNotServedError(ValueError):
    """The server lists its models and the one asked for is not among them."""


@dataclass(frozen=True)
class ServerInfo:
    """What a probe learned: the server's kind, the models it serves, its context (None where unknown).

    `context` is the most tokens a prompt plus its completion may take; `max_prompt_tokens` a lower limit on
    the prompt alone where the server has one (TGI's `max_input_tokens`). `context_source` says where the
    context was read, for the log.
    """

    kind: str = UNKNOWN
    models: tuple[str, ...] = ()
    context: int | None = None
    context_source: str | None = None
    max_prompt_tokens: int | None = None


def server_root(base_url: str) -> str:
    """The server's root from a root, a `/v1` base or the full chat completions URL."""
    url = base_url.rstrip("/")
    for suffix in ("/chat/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _get_json(client: httpx.Client, url: str, timeout: float) -> dict[str, Any] | None:
    """The JSON object at `url`, or None for anything else (an error status, no JSON, no server)."""
    try:
        response = client.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        logger.debug("probe of %s failed: %s: %s", url, type(exc).__name__, exc)
        return None
    if response.status_code != 200:
        logger.debug("probe of %s: HTTP %d", url, response.status_code)
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _entry_for(entries: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The /v1/models entry of `model`, or the only entry of a one-model server."""
    for entry in entries:
        if entry.get("id") == model:
            return entry
    return entries[0] if len(entries) == 1 else None


def _check_model(kind: str, models: tuple[str, ...], model: str) -> None:
    """Refuse a model the server does not list; llama.cpp and TGI answer any name with their one model."""
    if not models or model in models:
        return
    if kind in (LLAMA_CPP, TGI) and len(models) == 1:
        logger.info(
            "%s serves %r and answers any model name with it; %r is the name the annotations are stored under",
            kind, models[0], model,
        )  # fmt: skip
        return
    raise ModelNotServedError(
        f"the server does not serve the model {model!r}; it serves: {', '.join(models)} (pass one as --model)"
    )


def probe_server(
    client: httpx.Client, base_url: str, model: str, *, timeout: float = PROBE_TIMEOUT_S
) -> ServerInfo:
    """Ask the server at `base_url` what it is; raises `ModelNotServedError` only for an unlisted model.

    `GET /v1/models` gives the models, usually the kind (`owned_by`) and, from vLLM, the context. Where the
    kind is llama.cpp or still unknown, `GET /props` is asked for llama.cpp's slot context; where it is still
    unknown, `GET /info` for TGI's limits.
    """
    root = server_root(base_url)
    kind, models, context, source, max_prompt = UNKNOWN, (), None, None, None
    listing = _get_json(client, f"{root}/v1/models", timeout)
    if listing is not None:
        entries = [entry for entry in listing.get("data") or [] if isinstance(entry, dict)]
        models = tuple(str(entry["id"]) for entry in entries if entry.get("id") is not None)
        owners = {_OWNERS.get(str(entry.get("owned_by", "")).lower()) for entry in entries}
        kind = next((k for k in (VLLM, LLAMA_CPP, TGI) if k in owners), UNKNOWN)
        entry = _entry_for(entries, model)
        if entry is not None:
            if (value := _positive_int(entry.get("max_model_len"))) is not None:
                kind = VLLM if kind == UNKNOWN else kind
                context, source = value, "max_model_len in /v1/models"
            meta = entry.get("meta")
            if isinstance(meta, dict) and (value := _positive_int(meta.get("n_ctx_train"))) is not None:
                kind = LLAMA_CPP if kind == UNKNOWN else kind
                context, source = value, "the trained context (meta.n_ctx_train) in /v1/models"
    if kind in (LLAMA_CPP, UNKNOWN):
        props = _get_json(client, f"{root}/props", timeout)
        settings = props.get("default_generation_settings") if props is not None else None
        if isinstance(settings, dict):
            kind = LLAMA_CPP
            if (value := _positive_int(settings.get("n_ctx"))) is not None:
                context, source = value, "default_generation_settings.n_ctx in /props"
    if kind == UNKNOWN:
        info = _get_json(client, f"{root}/info", timeout)
        if info is not None and ("max_total_tokens" in info or "text-generation" in str(info.get("router"))):
            kind = TGI
            if (value := _positive_int(info.get("max_total_tokens"))) is not None:
                context, source = value, "max_total_tokens in /info"
            max_prompt = _positive_int(info.get("max_input_tokens"))
            if not models and isinstance(info.get("model_id"), str):
                models = (info["model_id"],)
    _check_model(kind, models, model)
    found = ServerInfo(kind, models, context, source, max_prompt)
    logger.info(
        "annotator server at %s: %s, serving %s, context %s",
        root, kind, ", ".join(models) or "(not listed)",
        f"{context} tokens ({source})" if context else "unknown",
    )  # fmt: skip
    return found
