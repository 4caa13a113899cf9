"""One lint result, shared by every lint module of the spec layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Finding:
    """One lint result: ``error`` blocks validate/deploy, ``warning`` is printed."""

    level: Literal["error", "warning"]
    field: str
    message: str
