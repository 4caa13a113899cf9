"""A user error prints its text as written: brackets in a message are TOML tables, not rich markup."""

from __future__ import annotations

import pytest
import typer

from modelfleet.cli.common import user_errors
from modelfleet.errors import FleetError


def test_a_message_naming_a_toml_table_keeps_its_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exit_info, user_errors():
        raise FleetError("fleet.toml: add the GPU to [prices.per_hour] (H200 = 4.54)")
    assert exit_info.value.exit_code == 1
    assert "[prices.per_hour]" in capsys.readouterr().err
