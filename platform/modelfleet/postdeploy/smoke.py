"""The smoke test: prove a freshly deployed endpoint serves, streams and guards itself.

Every check talks to the public URL the way a client would -- the OpenAI routes
through the official ``openai`` SDK with the proxy token as its ``api_key`` (so it
sends ``Authorization: Bearer wk-....ws-...``, Modal's one-header form, and nothing
else) -- so a pass means a real client works, on Modal and locally alike. The auth and
blocked-route checks use raw HTTP because they are about status codes, not answers.

Each check gets ``timeout`` seconds in total, however long Modal keeps answering
``303`` while a container boots (``waiting``): the first request after a deploy or a
forced cold start waits for the boot.

A failed check says what was expected and what came back; messages never contain the
secret (only the key id, which is not secret, to tell tokens apart).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx2
import openai
from pydantic import computed_field

from modelfleet.postdeploy.record import Record
from modelfleet.postdeploy.waiting import Deadline, WaitExpired, deadline_client
from modelfleet.runtime.tokens import Credentials

SMOKE_PROMPT = "What is the capital of France? Answer in one word."
# Routes vLLM serves in dev mode (needed for sleep/wake) that must never be reachable.
BLOCKED_ROUTES = (("POST", "/collective_rpc"), ("GET", "/server_info"))
MAX_DETAIL = 300
T = TypeVar("T")


class Check(Record):
    """One smoke check: its name, whether it passed, what was seen, how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float


class SmokeReport(Record):
    """Every check run against one endpoint; the endpoint passes only if all do.

    ``checks`` prove it serves (routes, streaming, auth); ``quality`` are the quality gate's
    (golden prompts, fingerprint, eval: ``postdeploy.gate``), empty for a model without a
    golden.toml and in reports written before the gate existed.
    """

    url: str
    served_name: str
    checks: tuple[Check, ...] = ()
    quality: tuple[Check, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True when every check passed (and there was at least one serving check)."""
        return bool(self.checks) and all(c.ok for c in (*self.checks, *self.quality))

    @property
    def failures(self) -> list[Check]:
        """The checks that failed, serving checks first, in the order they ran."""
        return [c for c in (*self.checks, *self.quality) if not c.ok]


class CheckFailed(Exception):
    """Raised inside a check with the message the report shows."""


def run_smoke(
    url: str,
    credentials: Credentials,
    served_name: str,
    *,
    auth_required: bool = True,
    timeout: float = 300.0,
) -> SmokeReport:
    """Run every check against ``url`` and return them all; one failure never skips the rest.

    ``auth_required`` is False only for a model declared ``auth.public = true``: then the
    401 checks do not apply. ``timeout`` is each check's whole wait, redirects included
    (a scaled-to-zero Modal app boots on the first request).
    """
    url = url.rstrip("/")
    key_hint = f"key {credentials.key}"

    def sdk(check: Callable[[openai.OpenAI], str]) -> Callable[[], str]:
        """Run ``check`` with an SDK client whose every hop stops at this check's deadline."""

        def run() -> str:
            with deadline_client(Deadline(timeout)) as http:
                # The token is the api_key: the SDK sends it as the one Bearer header.
                client = openai.OpenAI(
                    base_url=f"{url}/v1", api_key=credentials.api_key, http_client=http, max_retries=0
                )
                return check(client)

        return run

    wrong = Credentials(credentials.key, "ws-smoke-wrong-secret")
    checks: list[tuple[str, Callable[[], str]]] = [
        ("health", lambda: _health(url, credentials, timeout)),
        ("models lists the served name", sdk(lambda c: _models(c, served_name, key_hint))),
        ("chat completion answers", sdk(lambda c: _chat(c, served_name, key_hint))),
        ("streaming works", sdk(lambda c: _stream(c, served_name, key_hint))),
    ]
    if auth_required:
        chat = ("POST", "/v1/chat/completions")
        checks += [
            ("no credentials -> 401", lambda: _expect_status(url, *chat, {}, 401, served_name, timeout)),
            ("wrong secret -> 401", lambda: _expect_status(url, *chat, wrong.headers(), 401, served_name, timeout)),
        ]
    for method, path in BLOCKED_ROUTES:
        checks.append(
            (
                f"{method} {path} -> 404",
                lambda m=method, p=path: _expect_status(url, m, p, credentials.headers(), 404, served_name, timeout),  # type: ignore[misc]
            )
        )
    return SmokeReport(url=url, served_name=served_name, checks=tuple(run_timed(name, run) for name, run in checks))


def run_timed(name: str, run: Callable[[], str]) -> Check:
    """Run one check: its detail on success, the failure's message (a CheckFailed, an HTTP error) otherwise."""
    started = time.monotonic()
    try:
        detail, ok = run(), True
    except CheckFailed as failure:
        detail, ok = str(failure), False
    except openai.APIStatusError as error:
        detail, ok = f"expected 200, got {error.status_code}: {_short(_error_message(error))}", False
    except openai.APIConnectionError as error:
        # The SDK wraps the transport error; its cause says what happened (a WaitExpired, say).
        cause = error.__cause__ or error
        detail, ok = f"no answer: {cause.__class__.__name__}: {_short(str(cause))}", False
    except httpx2.HTTPError as error:
        detail, ok = f"no answer: {error.__class__.__name__}: {_short(str(error))}", False
    return Check(name=name, ok=ok, detail=_short(detail), seconds=round(time.monotonic() - started, 3))


def _health(url: str, credentials: Credentials, timeout: float) -> str:
    """Wait (up to ``timeout`` in all) for ``/health`` 200; report the boot kind the edge says."""
    deadline = Deadline(timeout)
    last = ""
    with deadline_client(deadline) as client:
        while True:
            try:
                response = client.get(f"{url}/health", headers=credentials.headers())
                if response.status_code == 200:
                    return _describe_health(response)
                last = f"{response.status_code}"
                if response.status_code in (401, 403):
                    raise CheckFailed(f"expected 200 from /health, got {response.status_code}: the token was rejected")
            except WaitExpired:
                last = last or "none (still waiting for the boot)"
            except httpx2.TransportError as error:
                last = error.__class__.__name__
            if deadline.expired:
                raise CheckFailed(f"expected /health 200 within {timeout:.0f}s, last answer: {last}")
            time.sleep(min(1.0, deadline.remaining))


def _describe_health(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "200 (no JSON body)"
    if not isinstance(body, dict):
        return "200"
    parts = [f"{k}={body[k]}" for k in ("boot", "boot_seconds") if k in body]
    return "200 " + " ".join(parts) if parts else "200"


def _models(client: openai.OpenAI, served_name: str, key_hint: str) -> str:
    listed = [m.id for m in _authed(client.models.list, key_hint).data]
    if served_name not in listed:
        raise CheckFailed(f"expected {served_name!r} in /v1/models, got {listed}")
    return f"{len(listed)} model(s): {', '.join(listed)}"


def _chat(client: openai.OpenAI, served_name: str, key_hint: str) -> str:
    reply = _authed(
        lambda: client.chat.completions.create(
            model=served_name,
            messages=[{"role": "user", "content": SMOKE_PROMPT}],
            temperature=0,
            max_tokens=8,
        ),
        key_hint,
    )
    if not reply.choices:
        raise CheckFailed("expected one choice in the chat completion, got none")
    text = reply.choices[0].message.content or ""
    finish = reply.choices[0].finish_reason
    if not text.strip():
        raise CheckFailed(f"expected a non-empty answer, got {len(text)} blank character(s) (finish_reason {finish})")
    # The answer's shape, never its text: reports and CI logs carry no completion.
    return f"answered {len(text.strip())} characters, finish_reason {finish}"


def _stream(client: openai.OpenAI, served_name: str, key_hint: str) -> str:
    stream = _authed(
        lambda: client.chat.completions.create(
            model=served_name,
            messages=[{"role": "user", "content": SMOKE_PROMPT}],
            temperature=0,
            max_tokens=16,
            stream=True,
        ),
        key_hint,
    )
    pieces: list[str] = []
    finish: str | None = None
    for event in stream:
        if event.choices:
            choice = event.choices[0]
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    if len(pieces) < 2:
        raise CheckFailed(f"expected several content chunks, got {len(pieces)}: {''.join(pieces)!r}")
    if finish is None:
        raise CheckFailed(f"expected the stream to end with a finish_reason, got none after {len(pieces)} chunks")
    return f"{len(pieces)} chunks, finish_reason {finish}"


def _authed(call: Callable[[], T], key_hint: str) -> T:
    """Run an SDK call; a 401/403 says the configured token was refused (which one, never its secret)."""
    try:
        return call()
    except openai.AuthenticationError as error:
        raise CheckFailed(
            f"expected 200 with the configured token, got 401: the endpoint rejected {key_hint}"
        ) from error
    except openai.PermissionDeniedError as error:
        raise CheckFailed(
            f"expected 200 with the configured token, got 403: {key_hint} may not use this endpoint"
        ) from error


def _expect_status(
    url: str, method: str, path: str, headers: dict[str, str], expected: int, served_name: str, timeout: float
) -> str:
    body = {"model": served_name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    with deadline_client(Deadline(timeout)) as client:
        response = client.request(method, f"{url}{path}", headers=headers, json=body if method == "POST" else None)
    if response.status_code != expected:
        raise CheckFailed(
            f"expected {expected} for {method} {path}, got {response.status_code}: {_short(response.text)}"
        )
    return f"{expected}"


def _error_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
    return error.message


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."
