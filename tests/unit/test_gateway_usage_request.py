"""How the gateway asks vLLM for a stream's usage: spliced into the body, or re-encoded when it must be."""

from __future__ import annotations

import json

import pytest

from modelfleet.gateway.app import ask_for_usage


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"m","stream":true,"messages":[{"role":"user","content":"{\\"a\\": 1}"}]}',
        b'  \n{ "model" : "m", "stream": true, "prompt": [1, 2, 3] }',
    ],
)
def test_usage_is_asked_for_by_adding_one_member_and_nothing_else_changes(body: bytes) -> None:
    asked = json.loads(ask_for_usage(body))
    assert asked.pop("stream_options") == {"include_usage": True}
    assert asked == json.loads(body)
