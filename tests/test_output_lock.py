"""One driver per output folder: a second one is refused at once, naming the holder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from robust_ray.lock import LOCK_FILE, OutputInUse, OutputLock
from robust_ray.storage import Storage

HOLD = """
import sys, time
from robust_ray.lock import OutputLock
from robust_ray.storage import Storage
OutputLock(Storage(sys.argv[1]), "held").acquire()
print("locked", flush=True)
time.sleep(60)
"""


def _holder(folder):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_driver_is_refused_naming_pid_host_and_sweep(tmp_path):
    p = _holder(tmp_path)
    try:
        with pytest.raises(OutputInUse) as e:
            OutputLock(Storage(str(tmp_path)), "mine").acquire()
        msg = str(e.value)
        assert f"pid {p.pid}" in msg and socket.gethostname() in msg and "'held'" in msg and str(tmp_path) in msg
    finally:
        p.kill()
        p.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    p = _holder(tmp_path)
    p.kill()
    p.wait()
    with OutputLock(Storage(str(tmp_path)), "mine"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_release_removes_the_lock_and_the_next_driver_takes_it(tmp_path):
    out = Storage(str(tmp_path))
    OutputLock(out, "a").acquire().release()
    assert not (tmp_path / LOCK_FILE).exists()
    with OutputLock(out, "b"):
        with pytest.raises(OutputInUse):
            OutputLock(out, "c").acquire()


def test_object_store_lock_refuses_a_fresh_holder_and_takes_over_a_stale_one(tmp_path, monkeypatch):
    out = Storage(str(tmp_path))
    monkeypatch.setattr(out, "remote", True)  # the object-store path, on a local folder
    first = OutputLock(out, "a").acquire()
    try:
        with pytest.raises(OutputInUse, match="'a'"):
            OutputLock(out, "b").acquire()
    finally:
        first._stop.set()  # the holder dies without releasing: its beats stop
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    record["beat"] -= 3600
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    taker = OutputLock(out, "b").acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["sweep"] == "b"
    taker.release()
    assert not (tmp_path / LOCK_FILE).exists()
