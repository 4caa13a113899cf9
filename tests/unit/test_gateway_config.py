"""fleet.toml's [gateway] table: defaults without it, one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.gateway.config import GatewayConfigError, load_gateway_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


def test_a_fleet_without_the_table_gets_a_working_local_gateway(tmp_path: Path) -> None:
    config = load_gateway_config(write(tmp_path, 'target = "local"\n'))
    assert (config.host, config.key_store, config.aliases) == ("127.0.0.1", "auto", {})
    assert config.keys_path(tmp_path / ".fleet") == tmp_path / ".fleet" / "gateway-keys.json"
    assert load_gateway_config(tmp_path / "absent.toml") == config


def test_aliases_and_limits_are_read_from_the_table(tmp_path: Path) -> None:
    text = '[gateway]\nport = 9100\ncold_start_hold_s = 60\n[gateway.aliases]\ngpt-4o-mini = "llama-3.1-8b-instruct"\n'
    config = load_gateway_config(write(tmp_path, text))
    assert config.port == 9100 and config.cold_start_hold_s == 60
    assert config.aliases == {"gpt-4o-mini": "llama-3.1-8b-instruct"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("cold_start_hold_s = 200", "gateway.cold_start_hold_s: Input should be less than 150"),
        ("key_cache_ttl_s = 30", "gateway.key_cache_ttl_s: Input should be less than or equal to 5"),
        ("prot = 1", "gateway.prot: Extra inputs are not permitted"),
        ('aliases = { a = "b", b = "c" }', "aliases.a: points at 'b', itself an alias"),
    ],
)
def test_a_bad_value_is_one_line_naming_file_and_field(tmp_path: Path, table: str, message: str) -> None:
    path = write(tmp_path, f"[gateway]\n{table}\n")
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
