"""Errors a user can fix. The CLI turns these into one message and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a spec, a path, a flag); never a bug in robust_ray."""


class SpecError(UserError):
    """A sweep spec that fails validation: names the file and the key path."""

    def __init__(self, file: str | None, path: str, message: str):
        self.file, self.path, self.message = file, path, message
        where = f"{file}: " if file else ""
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{message}")


class DataError(UserError):
    """A dataset that cannot be found or read: says where we looked and how to get it."""


class RunAborted(Exception):
    """Ray Tune itself stopped mid-run (its controller raised: a worker killed by the OOM
    killer, a lost head). Not the user's input: the CLI says what finished, how to resume,
    and exits 1; the files written as trials finished are kept."""

    def __init__(self, output: str, cause: BaseException):
        first = (str(cause) or type(cause).__name__).strip().splitlines()
        self.output = output
        super().__init__(f"Ray Tune stopped: {type(cause).__name__}: {first[0] if first else ''}"[:400])
