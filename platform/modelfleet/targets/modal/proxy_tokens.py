"""A proxy token that lives for one post-deploy command, scoped to one Modal environment.

Why: the snapshot and smoke jobs must call the model's endpoint through Modal's proxy
auth. A long-lived workspace token in CI's secrets opens every endpoint of the
workspace for as long as nobody rotates it. modal 1.6.4 manages proxy tokens from the
SDK (``modal.Workspace.from_context().proxy_tokens``: ``create``, ``allow``, ``delete``;
modal/_workspace.py; the CLI is ``modal workspace proxy-tokens create --json``), so each
job mints its own, limits it to the model's environment, and deletes it when done --
also when the job fails.

Modal shows a token's secret once, at creation. The name says what made the token and
when, so one a killed job leaves behind is recognisable in ``modal workspace
proxy-tokens list`` (names are labels: Modal does not require them to be unique).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from modelfleet.errors import FleetError
from modelfleet.targets.base import Credentials

TOKEN_NAME_PREFIX = "fleet-temporary"


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
