"""The proxy token travels one way only: ``Authorization: Bearer wk-....ws-...``.

Modal takes the ``Modal-Key`` + ``Modal-Secret`` pair or the one Bearer header; the
post-deploy steps used to send the pair next to ``Authorization: Bearer unused`` (the
openai SDK's placeholder key), leaving which one counts to the proxy (issue 12, #13).
"""

from __future__ import annotations

from starlette.datastructures import Headers

from modelfleet.postdeploy.probe import probe_boot
from modelfleet.postdeploy.smoke import run_smoke
from modelfleet.runtime.tokens import Credentials, parse_credentials
from tests.unit.test_smoke_endpoint import KEY, SECRET, SERVED, FakeEndpoint

CREDENTIALS = Credentials(KEY, SECRET)


def test_credentials_are_one_bearer_header_that_the_edge_reads_back() -> None:
    assert CREDENTIALS.headers() == {"Authorization": f"Bearer {KEY}.{SECRET}"}
    assert CREDENTIALS.api_key == f"{KEY}.{SECRET}"
    assert parse_credentials(Headers(CREDENTIALS.headers())) == (KEY, SECRET)
    assert SECRET not in repr(CREDENTIALS)


def test_the_edge_parser_takes_modals_two_forms_and_nothing_else() -> None:
    assert parse_credentials(Headers({"Modal-Key": KEY, "Modal-Secret": SECRET})) == (KEY, SECRET)
    assert parse_credentials(Headers({"authorization": f"bearer {KEY}.{SECRET}"})) == (KEY, SECRET)
    assert parse_credentials(Headers({"Authorization": "Bearer unused"})) is None
    assert parse_credentials(Headers({"Authorization": f"Bearer {KEY}"})) is None
    assert parse_credentials(Headers({"Modal-Key": KEY})) is None


def test_every_authenticated_smoke_and_probe_request_carries_only_the_bearer_header() -> None:
    with FakeEndpoint() as endpoint:
        assert run_smoke(endpoint.url, CREDENTIALS, SERVED, timeout=10).ok
        probe_boot(endpoint.url, CREDENTIALS, SERVED, timeout=10)
    sent = set(endpoint.credential_headers)
    # Authenticated requests send the Bearer form alone; the 401 check sends nothing.
    assert sent == {frozenset({"authorization"}), frozenset()}
