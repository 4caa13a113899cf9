"""Turn pydantic's validation errors into one friendly line per problem.

pydantic says "Extra inputs are not permitted" at ``vllm.max_model_length``; a user
needs "unknown field 'max_model_length'; did you mean 'max_model_len'?".
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError


def describe_errors(error: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """(field path, message) for every error, with close matches for unknown fields."""
    described = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        path, model = _walk(root, loc)
        message = _message(item, model, path)
        described.append((".".join(path) or "(top level)", message))
    return described


def _walk(root: type[BaseModel], loc: list[str]) -> tuple[list[str], type[BaseModel] | None]:
    """Follow ``loc`` through the models, dropping the union tags pydantic inserts."""
    path: list[str] = []
    candidates: list[type[BaseModel]] = [root]
    for part in loc:
        if not candidates or part.isdigit():
            # A list index keeps the item's models (list[Prompt] -> Prompt) for the parts after it.
            path.append(part)
            continue
        tagged = [m for m in candidates if _tag_of(m) == part]
        if len(candidates) > 1 and tagged:
            candidates = tagged
            continue
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is None:
            path.append(part)
            break
        path.append(part)
        candidates = _models_in(owner.model_fields[part].annotation)
    return path, candidates[0] if candidates else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found = []
    for candidate in [annotation, *_flatten(annotation)]:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in found:
            found.append(candidate)
    return found


def _flatten(annotation: Any) -> list[Any]:
    out: list[Any] = []
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple) or origin is typing.Annotated:
        for arg in get_args(annotation):
            out.append(arg)
            out.extend(_flatten(arg))
    return out


def _tag_of(model: type[BaseModel]) -> str | None:
    """The discriminator value of a tagged union member (its single-value Literal field)."""
    for field in model.model_fields.values():
        if get_origin(field.annotation) is typing.Literal:
            values = get_args(field.annotation)
            if len(values) == 1 and isinstance(values[0], str):
                return values[0]
    return None


def _message(item: Any, model: type[BaseModel] | None, path: list[str]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        name = path[-1] if path else "?"
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; known fields: {', '.join(known)}" if known else "")
        return f"unknown field {name!r}{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        got = item.get("input")
        options = [o.strip(" '") for o in str(expected).replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(str(got), options, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{got!r} is not one of: {', '.join(options)}{hint}"
    if kind == "union_tag_invalid":
        ctx = item.get("ctx", {})
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        return f"{ctx.get('tag')!r} is not a known {discriminator}; use one of {ctx.get('expected_tags')}"
    message = str(item["msg"])
    return message.removeprefix("Value error, ")
