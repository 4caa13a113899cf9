"""The base of every typed record a post-deploy step writes into a model's report file.

Records are written by one ``fleet`` process and read by another, maybe of a later
version, so they are strict about what they accept (``extra="forbid"``: a file of an
unknown shape fails loudly with the field named) but tolerant of what they computed
themselves: values derived from other fields (``ok``, the cold-start seconds) are
written for readers of the JSON and recomputed on load, never trusted from the file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Record(BaseModel):
    """A frozen, strict pydantic model whose computed fields are output only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_derived_values(cls, data: Any) -> Any:
        """Ignore the computed fields a written record carries: they are derived again from the rest."""
        if isinstance(data, dict):
            derived = cls.model_computed_fields.keys()
            return {key: value for key, value in data.items() if key not in derived}
        return data
