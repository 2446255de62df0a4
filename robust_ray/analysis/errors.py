"""The analysis stage's user errors: a results file that cannot be read, a recipe that is
wrong. A leaf module, so readers (``load``, ``conditions``) and checkers (``recipes``,
``reference``) import them without importing each other."""

from __future__ import annotations

from ..errors import UserError


class ResultsError(UserError):
    """A results file that cannot be analysed: names the file (and the column)."""


class RecipeError(UserError):
    """A recipe that is malformed or names something the results do not have."""

    def __init__(self, file: str | None, path: str, message: str):
        where = f"{file}: " if file else ""
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{message}")
