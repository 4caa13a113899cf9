"""The golden checks: ask each golden prompt, and check the answer the way golden.toml says.

Each prompt is one chat request through the official SDK, with ``[generation]``'s
settings (greedy: temperature 0; the seed; max tokens) and, where the prompt asks for
structured output, ``response_format`` with its JSON Schema. A prompt passes when every
one of its checks does; the result names the first check that failed and what it
expected. The answer itself is never put into a result (reports and CI logs must not
carry completions): a failure says what was expected and how the answer differed in
shape (its length, its finish_reason, the JSON error), which is enough to know what to
look at with ``fleet call``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import openai

from modelfleet.postdeploy.record import Record
from modelfleet.spec.golden import Check as GoldenCheck
from modelfleet.spec.golden import (
    ContainsCheck,
    ExactCheck,
    FinishReasonCheck,
    GoldenSpec,
    JsonSchemaCheck,
    Prompt,
    RegexCheck,
)

SAMPLING_TEMPERATURE = 0.7


class Answer(Record):
    """What one golden prompt got back: its text (kept in memory only), finish_reason and length."""

    text: str
    finish_reason: str
    completion_tokens: int


def ask(client: openai.OpenAI, served_name: str, golden: GoldenSpec, prompt: Prompt) -> Answer:
    """One golden prompt, with the file's generation settings."""
    extra: dict[str, Any] = {}
    if prompt.response_schema is not None:
        extra["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": prompt.name.replace("-", "_"), "schema": prompt.response_schema},
        }
    reply = client.chat.completions.create(
        model=served_name,
        messages=[m.model_dump() for m in prompt.messages],  # type: ignore[misc]
        temperature=0 if golden.generation.greedy else SAMPLING_TEMPERATURE,
        seed=golden.generation.seed,
        max_tokens=prompt.max_tokens or golden.generation.max_tokens,
        **extra,
    )
    if not reply.choices:
        return Answer(text="", finish_reason="none", completion_tokens=0)
    choice = reply.choices[0]
    return Answer(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason or "",
        completion_tokens=reply.usage.completion_tokens if reply.usage else 0,
    )


def judge(prompt: Prompt, answer: Answer) -> tuple[bool, str]:
    """(passed, detail) of every check of ``prompt`` on ``answer``; the detail never quotes the answer."""
    shape = f"{answer.completion_tokens} tokens, finish_reason {answer.finish_reason}"
    for index, check in enumerate(prompt.checks):
        failure = _failure(check, answer)
        if failure:
            return False, f"check {index + 1} ({check.kind}): {failure} (answer: {shape})"
    return True, f"{len(prompt.checks)} check(s) passed ({shape})"


def _failure(check: GoldenCheck, answer: Answer) -> str:
    text = answer.text
    if isinstance(check, ContainsCheck):
        found = check.value in text if check.case_sensitive else check.value.lower() in text.lower()
        return "" if found else f"expected the answer to contain {check.value!r}"
    if isinstance(check, RegexCheck):
        return "" if re.search(check.pattern, text) else f"expected a match for /{check.pattern}/"
    if isinstance(check, ExactCheck):
        return "" if text.strip() == check.value.strip() else f"expected exactly {check.value!r}"
    if isinstance(check, FinishReasonCheck):
        return "" if answer.finish_reason == check.value else f"expected finish_reason {check.value}"
    if isinstance(check, JsonSchemaCheck):
        return _schema_failure(check.json_schema, text)
    raise AssertionError(f"unhandled check {check!r}")


def _schema_failure(schema: dict[str, Any], text: str) -> str:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return f"expected JSON, got text that fails to parse at char {error.pos}: {error.msg}"
    try:
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return f"expected JSON matching the schema; at {where}: {error.validator} {error.validator_value!r} fails"
    return ""
