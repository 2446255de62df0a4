"""One driver per output folder: a lock naming its holder, taken before anything is written.

Two drivers on one ``--output`` would share one Tune experiment and overwrite each other's
files. On a local folder the lock is an ``flock`` on ``.robust_ray.lock``: the kernel drops
it when the holder dies, so a killed driver never leaves a stale lock, and the file holds
the holder's pid, host, sweep and start time for the message the second driver prints.
Object stores have no locks: there the lock is an object rewritten every ``HEARTBEAT_S`` by
a daemon thread, and one not rewritten for ``STALE_S`` is taken over (a crashed driver's).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time

from .errors import UserError
from .storage import Storage

LOCK_FILE = ".robust_ray.lock"
HEARTBEAT_S, STALE_S = 30.0, 180.0


class OutputInUse(UserError):
    """Another driver holds the output folder."""


def _holder_text(raw: str) -> str:
    try:
        h = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h["since"])))
        return f"robust-ray pid {h['pid']} on host {h['host']} (sweep {h['sweep']!r}, since {since})"
    except (ValueError, KeyError, TypeError):
        return "another robust-ray driver"


class OutputLock:
    """Held from ``acquire`` until ``release`` (or the process ends)."""

    def __init__(self, out: Storage, sweep: str):
        self.out, self.sweep = out, sweep
        self._fd: int | None = None
        self._made: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _record(self) -> bytes:
        return json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "sweep": self.sweep,
                "since": time.time(),
                "beat": time.time(),
            }  # fmt: skip
        ).encode()

    def _refuse(self, raw: str) -> OutputInUse:
        return OutputInUse(
            f"{self.out.shown} is in use by {_holder_text(raw)}: wait for it to finish, stop it, or "
            f"choose another --output"
        )

    # -- local folders -----------------------------------------------------------------------
    def _acquire_local(self) -> None:
        path = self.out.path(LOCK_FILE)
        folder = os.path.dirname(path)
        self._made = folder if not os.path.exists(folder) else None  # removed again if left empty
        os.makedirs(folder, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with open(path, errors="replace") as f:
                    raw = f.read()
                os.close(fd)
                raise self._refuse(raw) from None
            try:  # a holder that released unlinked the file we opened: lock the new one instead
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._record(), 0)
        self._fd = fd

    # -- object stores -----------------------------------------------------------------------
    def _acquire_remote(self) -> None:
        if self.out.exists(LOCK_FILE):
            raw = self.out.read_text(LOCK_FILE)
            try:
                beat = float(json.loads(raw)["beat"])
            except (ValueError, KeyError, TypeError):
                beat = 0.0
            if time.time() - beat < STALE_S:
                raise self._refuse(raw)
        self.out.write_bytes(LOCK_FILE, self._record())
        self._beat = threading.Thread(target=self._heartbeat, name="robust-ray-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.out.write_bytes(LOCK_FILE, self._record())
            except UserError:
                pass  # a missed beat is retried; STALE_S spans several

    # -- both ------------------------------------------------------------------------------
    def acquire(self) -> OutputLock:
        if self.out.remote:
            self._acquire_remote()
            return self
        try:
            self._acquire_local()
        except OSError as e:
            raise self.out._fail("taking the lock", e, "cannot write there") from None
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.out.path(LOCK_FILE))  # unlink first: the next holder locks a new file
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
            if self._made is not None:
                try:
                    os.removedirs(self._made)  # only empty folders: a run that wrote nothing leaves nothing
                except OSError:
                    pass
        if self._beat is not None:
            self._stop.set()
            self._beat.join(timeout=5)
            self._beat = None
            try:
                self.out.fs.delete_file(self.out.path(LOCK_FILE))
            except OSError:
                pass

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
