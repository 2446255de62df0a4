"""Analysis steps, registered once: a step is its options model (the recipe keys, a pydantic
model with a ``type`` literal), the function that turns it into report sections, and
optionally the checks it makes against the results before anything is written.

The recipe's union of step models (:mod:`.recipes`) and the report's dispatch
(:mod:`.report`) are both read from :data:`STEPS`; the step modules in :mod:`.steps`
register themselves on import.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class StepDef:
    options: type  # pydantic model of the step's recipe keys
    run: Callable  # (ctx, step, design) -> list[Section]
    check: Callable | None = None  # (step, index, checker) -> None; raises RecipeError
    needs_metrics: bool = False  # refused on results without per-level metrics


STEPS: Registry[StepDef] = Registry("analysis step")


def step_type(options: type) -> str:
    """The name in the options model's ``type: Literal[...]`` field."""
    return typing.get_args(options.model_fields["type"].annotation)[0]


def register(options: type, check: Callable | None = None, needs_metrics: bool = False):
    """Decorator: register the decorated function as the step ``options`` describes."""

    def add(fn: Callable) -> Callable:
        STEPS.register(step_type(options), StepDef(options, fn, check, needs_metrics))
        return fn

    return add
