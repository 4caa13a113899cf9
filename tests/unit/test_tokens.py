"""The local token store and the two header forms of Modal's proxy auth."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from modelfleet.runtime.tokens import TokenError, TokenStore, parse_credentials


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "state" / "tokens.json")


def test_created_token_has_modal_shape_and_verifies(store: TokenStore) -> None:
    key, secret = store.create("ci")
    assert key.startswith("wk-") and secret.startswith("ws-")
    assert "." not in key and "." not in secret
    assert store.verify(key, secret)


def test_wrong_secret_wrong_key_and_swapped_pairs_are_refused(store: TokenStore) -> None:
    key, secret = store.create("ci")
    other_key, other_secret = store.create("laptop")
    assert not store.verify(key, secret + "x")
    assert not store.verify("wk-nosuchkey", secret)
    assert not store.verify(key, other_secret)
    assert not store.verify(other_key, secret)
    assert not store.verify(key, "")


def test_file_holds_only_salted_hashes_and_is_private(store: TokenStore) -> None:
    _, secret = store.create("ci")
    _, secret2 = store.create("other")
    text = store.path.read_text()
    assert secret not in text and secret[3:] not in text and secret2 not in text
    entries = json.loads(text)["tokens"].values()
    assert len({entry["salt"] for entry in entries}) == 2
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_list_shows_names_and_key_ids_never_secrets(store: TokenStore) -> None:
    key, secret = store.create("ci")
    listed = store.list()
    assert [(t.name, t.key) for t in listed] == [("ci", key)]
    assert secret not in repr(listed)


def test_revoked_token_fails_even_after_being_verified_once(store: TokenStore) -> None:
    key, secret = store.create("ci")
    watcher = TokenStore(store.path)  # another process's view, e.g. a running edge
    assert watcher.verify(key, secret)
    store.revoke("ci")
    assert not watcher.verify(key, secret)
    assert not watcher.remembered(key, secret)


def test_duplicate_and_unknown_names_are_clear_errors(store: TokenStore) -> None:
    store.create("ci")
    with pytest.raises(TokenError, match="exists"):
        store.create("ci")
    with pytest.raises(TokenError, match=r"no token named 'nope' \(known: ci\)"):
        store.revoke("nope")


def test_corrupt_store_is_a_clear_error_naming_the_file(store: TokenStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(TokenError, match=r"tokens\.json: token store unreadable"):
        store.verify("wk-a", "ws-b")


def test_modal_key_and_secret_headers_are_parsed() -> None:
    assert parse_credentials({"modal-key": "wk-abc", "modal-secret": "ws-def"}) == ("wk-abc", "ws-def")


def test_bearer_form_splits_on_the_first_dot_after_the_key() -> None:
    assert parse_credentials({"authorization": "Bearer wk-abc.ws-d.e.f"}) == ("wk-abc", "ws-d.e.f")
    assert parse_credentials({"authorization": "bearer wk-abc.ws-def"}) == ("wk-abc", "ws-def")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"modal-key": "wk-abc"},
        {"authorization": "Bearer wk-abc"},
        {"authorization": "Bearer wk-abc."},
        {"authorization": "Basic wk-abc.ws-def"},
        {"authorization": "Bearer sk-openai-style-key"},
    ],
)
def test_incomplete_or_foreign_credentials_parse_to_none(headers: dict[str, str]) -> None:
    assert parse_credentials(headers) is None


def test_fleet_token_create_writes_the_store_every_local_edge_reads(
    fleet_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from modelfleet.cli.app import app
    from modelfleet.settings import FleetSettings

    monkeypatch.setenv("FLEET_STATE_DIR", str(fleet_repo / "elsewhere"))
    result = CliRunner().invoke(app, ["token", "create", "ci"])
    assert result.exit_code == 0, result.output
    tokens_path = FleetSettings().tokens_path
    assert tokens_path == fleet_repo / "elsewhere" / "tokens.json"
    assert [entry.name for entry in TokenStore(tokens_path).list()] == ["ci"]
