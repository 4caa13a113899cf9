"""The quality declaration: ``models/<name>/golden.toml``, what a deploy must answer before it serves.

A server can be up and wrong (a broken chat template, a wrong revision, a degrading
quantization, an engine that wakes up different). ``model.toml`` says how to serve a
model; ``golden.toml`` says what the served model must answer, in three parts:

- ``[[prompt]]``: chat messages and the checks their answer must pass (contains, regex,
  exact, JSON Schema, finish_reason), generated with ``[generation]``'s settings;
- ``[fingerprint]``: which prompts' first greedy tokens and top-k logprobs are compared
  with the reviewed baseline (``postdeploy.fingerprint``);
- ``[eval]`` (optional): an lm-eval task from a local file with a statistical pass rule.

Strict like model.toml (``extra="forbid"``, descriptions feed ``models/golden.schema.json``),
and its errors are ``file: field: message`` lines through the same ``describe_errors``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from modelfleet.spec.base import StrictModel

GOLDEN_FILE = "golden.toml"
_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class Message(StrictModel):
    """One chat message, as the OpenAI chat API takes it."""

    role: Literal["system", "user", "assistant"] = Field(description="Who says it.")
    content: str = Field(min_length=1, description="What is said (plain text).")


class Generation(StrictModel):
    """How the golden answers are generated: greedy by default, so the same model gives the same answer."""

    greedy: bool = Field(
        default=True,
        description="Temperature 0 (the answer is a function of the model). false samples at temperature 0.7 with "
        "`seed` (checks must then hold for any likely answer).",
    )
    seed: int = Field(default=0, ge=0, description="Sampling seed sent with every request.")
    max_tokens: int = Field(default=32, ge=1, le=4096, description="Tokens generated per answer.")


class ContainsCheck(StrictModel):
    """The answer contains a text."""

    kind: Literal["contains"] = "contains"
    value: str = Field(min_length=1, description="Text that must appear in the answer.")
    case_sensitive: bool = Field(default=False, description="Compare case too.")


class RegexCheck(StrictModel):
    """The answer matches a regular expression (Python ``re.search``)."""

    kind: Literal["regex"] = "regex"
    pattern: str = Field(min_length=1, description="Python regular expression searched for in the answer.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {error}") from None
        return pattern


class ExactCheck(StrictModel):
    """The answer is exactly a text (surrounding whitespace ignored)."""

    kind: Literal["exact"] = "exact"
    value: str = Field(description="The whole expected answer.")


class JsonSchemaCheck(StrictModel):
    """The answer is JSON that validates against a JSON Schema (structured output)."""

    kind: Literal["json-schema"] = "json-schema"
    json_schema: dict[str, Any] = Field(description="A JSON Schema (draft 2020-12) as an inline table.")

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise ValueError(f"not a valid JSON Schema: {error.message}") from None
        return schema


class FinishReasonCheck(StrictModel):
    """The answer ended for a given reason (``stop``: the model finished; ``length``: it ran out of tokens)."""

    kind: Literal["finish_reason"] = "finish_reason"
    value: Literal["stop", "length"] = Field(description="Expected finish_reason.")


Check = Annotated[
    ContainsCheck | RegexCheck | ExactCheck | JsonSchemaCheck | FinishReasonCheck, Field(discriminator="kind")
]


class Prompt(StrictModel):
    """One golden prompt: the conversation, its checks, and what to change of ``[generation]`` for it."""

    name: str = Field(pattern=_NAME, description="Short unique name (lowercase, digits, - and _), used in reports.")
    messages: list[Message] = Field(min_length=1, description="The conversation; the last message is the user's.")
    max_tokens: int | None = Field(default=None, ge=1, le=4096, description="Overrides [generation].max_tokens.")
    response_schema: dict[str, Any] | None = Field(
        default=None,
        description="Ask for structured output: sent as response_format json_schema (vLLM guided decoding).",
    )
    checks: list[Check] = Field(default_factory=list, description="What the answer must satisfy.")

    @field_validator("messages")
    @classmethod
    def _ends_with_the_user(cls, messages: list[Message]) -> list[Message]:
        if messages[-1].role != "user":
            raise ValueError(f"the last message must be the user's, got {messages[-1].role!r}")
        return messages


class Fingerprint(StrictModel):
    """The logprob fingerprint: the first ``tokens`` greedy tokens of each listed prompt and their top-k logprobs.

    Compared with the baseline recorded for the same (revision, dtype, quantization,
    GPU, vLLM version); the tolerance is the platform's, derived from measured noise
    (``postdeploy.fingerprint``), unless ``mean_drift`` / ``max_drift`` override it.
    """

    prompts: list[str] = Field(
        default_factory=list, description="Names of [[prompt]]s fingerprinted (default: every prompt)."
    )
    tokens: int = Field(default=16, ge=1, le=128, description="Greedy tokens compared per prompt.")
    top_k: int = Field(default=5, ge=1, le=20, description="Alternatives (token id + logprob) kept per token.")
    mean_drift: float | None = Field(
        default=None,
        gt=0,
        le=5,
        description="Mean logprob move per token (nats) still taken as noise; default: the platform's measured one.",
    )
    max_drift: float | None = Field(
        default=None,
        gt=0,
        le=20,
        description="Largest logprob move of one token (nats) still taken as noise; default: the platform's.",
    )


class WilsonRule(StrictModel):
    """Pass when the Wilson score lower bound of the accuracy is at least ``min_accuracy``."""

    kind: Literal["wilson"] = "wilson"
    min_accuracy: float = Field(gt=0, le=1, description="Accuracy the lower bound must reach.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Two-sided confidence of the bound.")


class RelativeRule(StrictModel):
    """Pass when the accuracy is at least ``expected x (1 - rtol)`` (vLLM's CI lm-eval rule)."""

    kind: Literal["relative"] = "relative"
    expected: float = Field(gt=0, le=1, description="The accuracy measured for the reviewed model.")
    rtol: float = Field(default=0.05, gt=0, lt=1, description="Relative tolerance below `expected`.")


class EvalSpec(StrictModel):
    """An lm-eval task run against the endpoint (``local-chat-completions``) with a statistical pass rule."""

    task_file: str = Field(
        min_length=1,
        description="JSON lines file in the model folder: one object per line with `question` and `answer`.",
    )
    limit: int | None = Field(default=None, ge=1, description="Questions used (default: all).")
    max_tokens: int = Field(default=16, ge=1, le=1024, description="Tokens generated per answer.")
    rule: Annotated[WilsonRule | RelativeRule, Field(discriminator="kind")] = Field(
        description="When the score passes."
    )


class GoldenSpec(StrictModel):
    """Everything in golden.toml."""

    generation: Generation = Field(default_factory=Generation, description="Generation settings of every prompt.")
    prompt: list[Prompt] = Field(min_length=1, description="The golden prompts, one [[prompt]] table each.")
    fingerprint: Fingerprint = Field(default_factory=Fingerprint, description="The logprob fingerprint.")
    eval: EvalSpec | None = Field(default=None, description="Optional lm-eval benchmark gate.")

    @property
    def fingerprint_prompts(self) -> list[Prompt]:
        """The prompts the fingerprint covers, in file order."""
        chosen = set(self.fingerprint.prompts)
        return [p for p in self.prompt if not chosen or p.name in chosen]


def cross_check(golden: GoldenSpec) -> list[tuple[str, str]]:
    """(field, message) for rules across fields: unique prompt names, fingerprint names that exist.

    Not a model validator, so each message names the field to fix rather than "(top level)".
    """
    problems: list[tuple[str, str]] = []
    names = [p.name for p in golden.prompt]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append((f"prompt.{index}.name", f"{name!r} is already the name of prompt.{names.index(name)}"))
    unknown = [n for n in golden.fingerprint.prompts if n not in names]
    if unknown:
        problems.append(
            ("fingerprint.prompts", f"unknown prompt(s) {', '.join(map(repr, unknown))}; known: {', '.join(names)}")
        )
    return problems
