"""A proxy token that lives for one post-deploy command, scoped to one Modal environment.

Why: the snapshot and smoke jobs must call the model's endpoint through Modal's proxy
auth. A long-lived workspace token in CI's secrets opens every endpoint of the
workspace for as long as nobody rotates it. modal 1.6.4 manages proxy tokens from the
SDK (``modal.Workspace.from_context().proxy_tokens``: ``create``, ``allow``, ``delete``;
modal/_workspace.py; the CLI is ``modal workspace proxy-tokens create --json``), so each
job mints its own, limits it to the model's environment, and deletes it when done --
also when the job fails.

Modal shows a token's secret once, at creation, and its tokens do not expire. The name
says what made the token and when; a job killed before its cleanup leaves its token
behind, so each new one first deletes the fleet's temporary tokens older than any job
can run (GitHub Actions stops a job after 6 hours by default), which bounds how long a
leaked one lives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet.errors import FleetError
from modelfleet.runtime.tokens import Credentials

TOKEN_NAME_PREFIX = "fleet-temporary"
# Older than the longest job (6 h, GitHub Actions' default job timeout) plus a margin: no live job owns it.
STALE_AFTER = timedelta(hours=7)


class ProxyTokenError(FleetError):
    """Modal refused to create, scope or delete a proxy token."""


def token_name(purpose: str, environment: str, now: datetime | None = None) -> str:
    """``fleet-temporary-<purpose>-<environment>-<UTC time>``: who made it, for what, when."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{TOKEN_NAME_PREFIX}-{purpose}-{environment}-{stamp}"


@contextmanager
def temporary_proxy_token(environment: str, purpose: str) -> Iterator[Credentials]:
    """Create a proxy token allowed in ``environment`` only; delete it on the way out.

    The token is workspace-wide between ``create`` and ``allow`` (the SDK's ``create``
    takes no environment); nothing uses it in that instant, and a token that cannot be
    scoped is deleted before anything can.
    """
    import modal
    from modal.exception import Error as ModalError

    proxy_tokens = modal.Workspace.from_context().proxy_tokens
    name = token_name(purpose, environment)
    try:
        delete_stale_tokens(proxy_tokens)
        token = proxy_tokens.create(name=name)
    except ModalError as error:
        raise ProxyTokenError(f"cannot create a proxy token: {error}") from None
    try:
        try:
            proxy_tokens.allow(token.token_id, environment)
        except ModalError as error:
            raise ProxyTokenError(
                f"cannot limit proxy token {token.token_id} to environment {environment!r}: {error}"
            ) from None
        yield Credentials(token.token_id, token.token_secret)
    finally:
        try:
            proxy_tokens.delete(token.token_id)
        except ModalError as error:
            raise ProxyTokenError(
                f"cannot delete temporary proxy token {token.token_id} ({name}): {error}; "
                f"delete it with `modal workspace proxy-tokens delete {token.token_id} --yes`"
            ) from None


def delete_stale_tokens(proxy_tokens: Any, now: datetime | None = None) -> list[str]:
    """Delete the fleet's temporary tokens older than ``STALE_AFTER`` (left by killed jobs); their ids.

    ``proxy_tokens`` is ``modal.Workspace.from_context().proxy_tokens``; only tokens whose
    name starts with ``TOKEN_NAME_PREFIX`` are ever touched.
    """
    cutoff = (now or datetime.now(UTC)) - STALE_AFTER
    stale = [
        token.token_id
        for token in proxy_tokens.list()
        if token.name.startswith(f"{TOKEN_NAME_PREFIX}-") and token.created_at < cutoff
    ]
    for token_id in stale:
        proxy_tokens.delete(token_id)
    return stale
