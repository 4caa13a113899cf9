"""Client keys: shown once, stored as salted hashes (0600), checked in constant time, revoked within the cache TTL."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.gateway.auth import Authenticator, AuthFailure
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import ClientKeyError, KeyLimits, KeyScope, new_key, now_text, parse_key

runner = CliRunner()


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_stored_only_as_a_salted_hash_in_a_0600_file(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits(rpm=5))
    store.add(record)
    key_id, secret = parse_key(key) or ("", "")
    text = store.path.read_text()
    assert key_id in text and secret not in text and key not in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    again, other = new_key("alice", KeyLimits())
    assert again.salt != record.salt and other != key


def test_key_text_must_have_the_fleet_shape() -> None:
    assert parse_key("sk-proj-abc") is None
    assert parse_key("fk-" + "a" * 12 + "-" + "b" * 39) is None
    assert parse_key("fk-" + "a" * 12 + "-" + "b" * 40) == ("a" * 12, "b" * 40)


def test_names_are_unique_among_live_keys_and_reusable_after_revoke(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    store.add(new_key("alice", KeyLimits())[0])
    with pytest.raises(ClientKeyError, match="exists"):
        store.add(new_key("alice", KeyLimits())[0])
    store.revoke("alice", now_text())
    store.add(new_key("alice", KeyLimits())[0])
    with pytest.raises(ClientKeyError, match="no live key named 'bob'"):
        store.revoke("bob", now_text())
    assert sorted(r.revoked is None for r in store.load().values()) == [False, True]


def test_authenticator_accepts_the_key_and_refuses_each_kind_of_bad_one(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits())
    store.add(record)
    old, old_key = new_key("old", KeyLimits(expires="2020-01-01"))  # type: ignore[arg-type]
    store.add(old)
    auth = Authenticator(store, ttl=2)

    def failure(header: str | None) -> AuthFailure:
        with pytest.raises(AuthFailure) as caught:
            asyncio.run(auth.authenticate(header))
        return caught.value

    assert asyncio.run(auth.authenticate(f"Bearer {key}")).name == "alice"
    assert failure(None).status == 401 and "missing" in failure(None).message
    assert "malformed" in failure("Bearer sk-abc").message
    assert failure(f"Bearer {key[:-1]}{'a' if key[-1] != 'a' else 'b'}").message == "invalid API key"
    assert failure("Bearer fk-" + "z" * 12 + "-" + "z" * 40).message == "invalid API key"
    assert failure(f"Basic {key}").status == 401
    assert failure(f"Bearer {old_key}").code == "key_expired"


def test_a_revoke_is_seen_once_the_cache_ttl_has_passed(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits())
    store.add(record)
    clock = Clock()
    auth = Authenticator(store, ttl=2, clock=clock)

    async def check() -> str:
        try:
            return (await auth.authenticate(f"Bearer {key}")).name
        except AuthFailure as failure:
            return failure.code

    assert asyncio.run(check()) == "alice"
    store.revoke("alice", now_text())
    clock.now = 1.9
    assert asyncio.run(check()) == "alice"  # within the TTL the old copy may still be trusted
    clock.now = 2.0
    assert asyncio.run(check()) == "key_revoked"


def test_cli_creates_lists_and_revokes_keys_without_ever_listing_a_secret(fleet_repo: Path) -> None:
    created = runner.invoke(
        app, ["keys", "create", "alice", "--rpm", "5", "--expires", "2099-01-31", "--format", "json"]
    )
    assert created.exit_code == 0, created.output
    shown = json.loads(created.output)
    assert shown["rpm"] == 5 and shown["expires"] == "2099-01-31" and parse_key(shown["key"])
    listed = runner.invoke(app, ["keys", "list", "--format", "json"])
    assert shown["key"] not in listed.output and "hash" not in listed.output and "salt" not in listed.output
    assert json.loads(listed.output)[0]["key_id"] == shown["key_id"]
    assert runner.invoke(app, ["keys", "revoke", "alice"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--format", "json"]).output)[0]["revoked"]


def test_cli_refuses_unknown_models_a_bad_date_and_a_bad_format_with_one_line(fleet_repo: Path) -> None:
    unknown = runner.invoke(app, ["keys", "create", "alice", "--models", "nope"])
    assert unknown.exit_code == 1 and "--models: unknown nope" in unknown.output
    bad_day = runner.invoke(app, ["keys", "create", "alice", "--expires", "tomorrow"])
    assert bad_day.exit_code == 1 and "--expires: 'tomorrow' is not a day" in bad_day.output
    assert runner.invoke(app, ["keys", "list", "--format", "xml"]).exit_code == 2


def test_a_key_created_after_the_last_read_works_without_waiting_for_the_ttl(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    store.add(new_key("first", KeyLimits())[0])
    clock = Clock()
    auth = Authenticator(store, ttl=5, clock=clock)
    asyncio.run(auth.records())
    record, key = new_key("second", KeyLimits())
    store.add(record)
    clock.now = 0.1  # well inside the TTL, and sooner than the unknown-id re-read interval
    assert asyncio.run(auth.authenticate(f"Bearer {key}")).name == "second"


def test_a_key_file_written_before_scopes_loads_its_keys_as_client_keys(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits(rpm=5))
    old_entry = record.model_dump(mode="json")
    del old_entry["scope"]  # what a store written before the field existed holds
    store.path.write_text(json.dumps({"keys": {record.key_id: old_entry}}))
    (loaded,) = store.load().values()
    assert loaded.scope == "client" and loaded.limits.rpm == 5
    assert asyncio.run(Authenticator(store, ttl=2).authenticate(f"Bearer {key}")).name == "alice"


def test_each_scope_opens_only_its_own_door_and_the_other_gets_403(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    client_record, client_key = new_key("app", KeyLimits())
    admin_record, admin_key = new_key("prometheus", KeyLimits(), "admin")
    store.add(client_record)
    store.add(admin_record)
    auth = Authenticator(store, ttl=2)

    def outcome(key: str, scope: KeyScope) -> str | tuple[int, str, str]:
        try:
            return asyncio.run(auth.authenticate(f"Bearer {key}", scope)).name
        except AuthFailure as failure:
            return failure.status, failure.code, failure.message

    assert outcome(admin_key, "admin") == "prometheus"
    assert outcome(client_key, "client") == "app"
    status, code, message = outcome(admin_key, "client")  # type: ignore[misc]
    assert (status, code) == (403, "wrong_key_scope") and "call models with a client key" in message
    status, code, message = outcome(client_key, "admin")  # type: ignore[misc]
    assert (status, code) == (403, "wrong_key_scope") and "fleet keys create NAME --admin" in message
    # A wrong secret of an admin key is a bad key (401), not a scope question.
    assert outcome(admin_key[:-1] + ("a" if admin_key[-1] != "a" else "b"), "admin")[0] == 401  # type: ignore[index]


def test_a_revoked_admin_key_is_refused_once_the_cache_ttl_has_passed(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("prometheus", KeyLimits(), "admin")
    store.add(record)
    clock = Clock()
    auth = Authenticator(store, ttl=2, clock=clock)

    async def check() -> str:
        try:
            return (await auth.authenticate(f"Bearer {key}", "admin")).name
        except AuthFailure as failure:
            return failure.code

    assert asyncio.run(check()) == "prometheus"
    store.revoke("prometheus", now_text())
    clock.now = 2.0
    assert asyncio.run(check()) == "key_revoked"


def test_an_admin_key_takes_no_model_limits() -> None:
    with pytest.raises(ClientKeyError, match="admin key opens /metrics only"):
        new_key("prometheus", KeyLimits(rpm=5), "admin")
    record, _ = new_key("prometheus", KeyLimits(expires="2099-01-01"), "admin")  # type: ignore[arg-type]
    assert record.scope == "admin"


def test_cli_creates_an_admin_key_and_lists_its_scope(fleet_repo: Path) -> None:
    created = runner.invoke(app, ["keys", "create", "prometheus", "--admin", "--format", "json"])
    assert created.exit_code == 0, created.output
    shown = json.loads(created.output)
    assert shown["scope"] == "admin" and parse_key(shown["key"])
    listed = json.loads(runner.invoke(app, ["keys", "list", "--format", "json"]).output)
    assert [(k["name"], k["scope"]) for k in listed] == [("prometheus", "admin")]
    refused = runner.invoke(app, ["keys", "create", "scraper", "--admin", "--rpm", "5"])
    assert refused.exit_code == 1 and "admin key opens /metrics only" in refused.output
    text = runner.invoke(app, ["keys", "create", "scraper", "--admin"])
    assert text.exit_code == 0 and "admin key 'scraper'" in text.output and "/metrics" in text.output
    table = runner.invoke(app, ["keys", "list"])
    assert table.exit_code == 0 and "admin" in table.output and "scope" in table.output
