"""The gateway's own logic through real HTTP (uvicorn + httpx + the openai SDK) in front of a recording upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest

from modelfleet.gateway.keys import now_text
from modelfleet.gateway.ledger import Ledger
from tests.support.gateway_fixtures import CHAT, OTHER, SERVED, Fleet, bearer, error_of
from tests.support.waiting import wait_until


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with ExitStack() as stack:
        yield Fleet(tmp_path, stack)


def test_each_bad_request_gets_its_openai_error_and_never_reaches_the_model(fleet: Fleet) -> None:
    url = fleet.gateway(max_body_bytes=2048)
    key = fleet.key("alice", models=(SERVED,))
    revoked = fleet.key("gone")
    fleet.store.revoke("gone", now_text())
    expired = fleet.key("old", expires="2020-01-01")
    chat = f"{url}/v1/chat/completions"
    cases: list[tuple[str, int, dict[str, str], bytes]] = [
        ("no key", 401, {}, json.dumps(CHAT).encode()),
        ("malformed key", 401, bearer("sk-not-a-fleet-key"), json.dumps(CHAT).encode()),
        ("unknown key id", 401, bearer("fk-" + "a" * 12 + "-" + "b" * 40), json.dumps(CHAT).encode()),
        ("wrong secret", 401, bearer(key[:-1] + ("x" if key[-1] != "x" else "y")), json.dumps(CHAT).encode()),
        ("revoked", 401, bearer(revoked), json.dumps(CHAT).encode()),
        ("expired", 401, bearer(expired), json.dumps(CHAT).encode()),
        ("malformed JSON", 400, bearer(key), b"{not json"),
        ("not an object", 400, bearer(key), b"[1, 2]"),
        ("missing model", 400, bearer(key), json.dumps({"messages": []}).encode()),
        ("non-string model", 400, bearer(key), json.dumps({**CHAT, "model": 7}).encode()),
        ("too large", 413, bearer(key), json.dumps({**CHAT, "pad": "x" * 4096}).encode()),
        ("unknown model", 404, bearer(key), json.dumps({**CHAT, "model": "nope"}).encode()),
        ("wrong scope", 403, bearer(key), json.dumps({**CHAT, "model": OTHER}).encode()),
    ]
    for case, status, headers, body in cases:
        response = httpx.post(chat, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == status, (case, response.text)
        assert error_of(response)["message"], case
    assert fleet.upstream.received == []
    unknown = error_of(httpx.post(chat, json={**CHAT, "model": "nope"}, headers=bearer(key)))
    # The 404 lists what the key may use: its served name and the alias pointing at it, not the other model.
    assert "gpt-4o-mini" in str(unknown["message"]) and SERVED in str(unknown["message"])
    assert OTHER not in str(unknown["message"])
    assert "revoked" in str(error_of(httpx.post(chat, json=CHAT, headers=bearer(revoked)))["message"])
    assert "expired" in str(error_of(httpx.post(chat, json=CHAT, headers=bearer(expired)))["message"])
    assert httpx.get(f"{url}/sleep", headers=bearer(key)).status_code == 404


def test_alias_is_rewritten_to_the_served_name_with_the_models_credentials_not_the_clients(fleet: Fleet) -> None:
    url = fleet.gateway()
    key = fleet.key("alice")
    response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gpt-4o-mini"}, headers=bearer(key))
    assert response.status_code == 200, response.text
    (received,) = fleet.upstream.received
    assert received.body["model"] == SERVED
    assert received.headers["modal-key"] == "wk-up" and received.headers["modal-secret"] == "ws-up"
    assert "authorization" not in received.headers
    assert received.headers["x-request-id"] == response.headers["x-request-id"]


def test_models_lists_exactly_what_each_key_may_use(fleet: Fleet) -> None:
    url = fleet.gateway()
    everything = fleet.key("all")
    scoped = fleet.key("scoped", models=(OTHER,))
    by_alias = fleet.key("by-alias", models=("gpt-4o-mini",))
    ids = {
        name: [m.id for m in openai.OpenAI(base_url=f"{url}/v1", api_key=key).models.list()]
        for name, key in (("all", everything), ("scoped", scoped), ("by-alias", by_alias))
    }
    assert ids == {
        "all": ["gpt-4o-mini", SERVED, OTHER],
        "scoped": [OTHER],
        "by-alias": ["gpt-4o-mini", SERVED],
    }


def test_stream_usage_is_counted_and_its_extra_event_removed_unless_the_client_asked(fleet: Fleet) -> None:
    url = fleet.gateway()
    key = fleet.key("alice")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    plain = list(
        client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": "x"}], max_tokens=3, stream=True
        )
    )
    assert [c.usage for c in plain] == [None, None, None]
    assert fleet.upstream.received[-1].body["stream_options"] == {"include_usage": True}
    asked = list(
        client.chat.completions.create(
            model=SERVED,
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert asked[-1].choices == [] and asked[-1].usage is not None and asked[-1].usage.completion_tokens == 2
    ledger = Ledger(fleet.ledger_path)
    assert wait_until(lambda: sum(r.counts.requests for r in ledger.rows()) == 2, 10)
    (row,) = ledger.rows()
    assert (row.key, row.model, row.counts.prompt_tokens, row.counts.completion_tokens) == ("alice", SERVED, 14, 5)
    assert row.counts.gpu_seconds > 0 and row.counts.cost_usd == pytest.approx(row.counts.gpu_seconds / 1000)


def test_a_model_answering_503_is_held_until_it_answers(fleet: Fleet) -> None:
    url = fleet.gateway(cold_start_hold_s=30)
    key = fleet.key("alice")
    fleet.upstream.unavailable = 2
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(key), timeout=30)
    assert response.status_code == 200 and fleet.upstream.refused == 2


def test_a_model_still_starting_at_the_deadline_gets_a_503_with_retry_after(fleet: Fleet) -> None:
    url = fleet.gateway(cold_start_hold_s=0.5)
    key = fleet.key("alice")
    fleet.upstream.unavailable = 1000
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(key), timeout=30)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "still starting" in str(error_of(response)["message"])


def test_a_revoked_key_is_refused_by_every_gateway_within_five_seconds(fleet: Fleet) -> None:
    first, second = fleet.gateway(key_cache_ttl_s=2), fleet.gateway(key_cache_ttl_s=2)
    key = fleet.key("alice")
    for url in (first, second):
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(key)).status_code == 200
    fleet.store.revoke("alice", now_text())
    for url in (first, second):

        def refused(url: str = url) -> bool:
            return httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(key)).status_code == 401

        assert wait_until(refused, 5.0, interval=0.2), url


def test_a_client_hanging_up_while_held_is_never_sent_to_the_waking_model(fleet: Fleet) -> None:
    url = fleet.gateway(cold_start_hold_s=60)
    key = fleet.key("alice")
    fleet.upstream.unavailable = 10_000
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(key), timeout=1.0)
    fleet.upstream.unavailable = 0  # the model is up now: a request still held would go through
    ledger = Ledger(fleet.ledger_path)
    assert wait_until(lambda: sum(r.counts.requests for r in ledger.rows()) == 1, 10)
    assert fleet.upstream.received == [] and ledger.rows()[0].counts.errors == 0
