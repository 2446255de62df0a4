"""The base of every analysis step's options model (the keys a recipe step takes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Strict):
    id: str | None = Field(None, description="name used for this step's tables and plots")


def levels_list(value, arch: str | None = None) -> list[float]:
    """A list of numbers (bools are YAML's yes/no, not levels; strings are typos)."""
    at = f"{arch}: " if arch else ""
    if not isinstance(value, list):
        raise ValueError(f"{at}{value!r} is not a list of levels (e.g. [8.0])")  # noqa: TRY004 (pydantic reports ValueError only)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise ValueError(f"{at}{bad[0]!r} is not a level (a number)")
    return [float(v) for v in value]
