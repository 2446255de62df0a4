"""Where a sweep writes: a local folder or an object-store URI (s3://, gs://, ...), through
pyarrow filesystems, so every node of a cluster can share one output location.

Every storage failure is a ``StorageError`` (a ``UserError``: one line, exit 2) naming the
URI with its credentials masked (``mask_uri``). Looking at a remote location before a run
(opening it, checking for an earlier run, the write probe) runs in a child process bounded
by ``$ROBUST_RAY_STORAGE_TIMEOUT`` seconds (default 20): an unreachable endpoint or missing
credentials answer within that, and Ctrl-C ends the wait at once. Writes during a run keep
pyarrow's own, patient, retries.
"""

from __future__ import annotations

import datetime
import os
import pickle
import re
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa
import pyarrow.fs as pafs

from .errors import UserError

TIMEOUT_ENV = "ROBUST_RAY_STORAGE_TIMEOUT"
DEFAULT_TIMEOUT_S = 20.0
MASK = "***"
# query parameters that carry a secret: S3's access_key/secret_key/session_token, SAS
# signatures (sig=), presigned URLs (X-Amz-Credential, X-Amz-Signature, X-Amz-Security-Token)
_SECRET_PARAM = re.compile(r"key|secret|token|passw|pwd|credential|signature|^sig$", re.IGNORECASE)
_KEY_AS_USER = ("s3", "s3a", "s3n", "gs", "gcs")  # user:password@ here is access key:secret key

T = TypeVar("T")
# what pyarrow raises: OSError subclasses, ArrowInvalid (a ValueError), ArrowNotImplementedError
_FAILURES = (OSError, ValueError, pa.ArrowException)


class StorageError(UserError):
    """A location that cannot be opened, reached or written (the URI in it is masked)."""


class _Deadline(Exception):
    """No answer in time (not TimeoutError: that is an OSError pyarrow may raise itself)."""


def _split(uri: str) -> tuple[str, str | None, str, str | None, str | None]:
    """(scheme, userinfo, authority and path, query, fragment); None where absent. By hand
    rather than urlsplit: a secret key may hold '/' or '+', where urlsplit ends the authority."""
    scheme, sep, tail = uri.partition("://")
    if not sep:
        return "", None, uri, None, None
    tail, hash_, fragment = tail.partition("#")
    body, qmark, query = tail.partition("?")
    user, at, host = body.rpartition("@")
    # an '@' in a path (s3://bucket/runs/a@b) is not a userinfo: that has a ':' or no '/'
    if not (at and (":" in user or "/" not in user)):
        user, host = None, body
    return scheme, user, host, query if qmark else None, fragment if hash_ else None


def _is_secret(param: str) -> bool:
    return bool(_SECRET_PARAM.search(urllib.parse.unquote(param)))


def _secrets(uri: str) -> list[str]:
    """The secret values inside ``uri``, as written and percent-decoded, longest first."""
    scheme, user, _, query, _ = _split(uri)
    found = []
    if user:
        name, colon, password = user.partition(":")
        found += [password] if colon else []
        found += [name] if scheme.lower() in _KEY_AS_USER else []
    for key, _, value in (pair.partition("=") for pair in (query or "").split("&")):
        found += [value] if _is_secret(key) else []
    found += [urllib.parse.unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)  # longest first: no partial masks


def mask_uri(uri: str) -> str:
    """``uri`` safe to print: the password of ``user:password@`` (and the user too where it is
    an access key: s3, gs) and the value of every query parameter that names a key, secret,
    token, password, credential or signature replaced by ``***``.

    >>> mask_uri("s3://AKID:pa/ss@bucket/x?region=eu-west-1&session_token=abc")
    's3://***:***@bucket/x?region=eu-west-1&session_token=***'
    """
    scheme, user, rest, query, fragment = _split(uri)
    if not scheme:
        return uri
    shown = f"{scheme}://"
    if user is not None:
        name, colon, _ = user.partition(":")
        name = MASK if scheme.lower() in _KEY_AS_USER and name else name
        shown += f"{name}:{MASK}@" if colon else f"{name}@"
    shown += rest
    if query is not None:
        pairs = [pair.partition("=") for pair in query.split("&")]
        shown += "?" + "&".join(f"{k}={MASK}" if eq and v and _is_secret(k) else k + eq + v for k, eq, v in pairs)
    return shown + (f"#{fragment}" if fragment is not None else "")


def scrub(text: str, uri: str) -> str:
    """``text`` (an error message) on one line, with ``uri`` masked and no secret of it left."""
    text = text.replace(uri, mask_uri(uri)).split(" error_info={")[0]  # gcloud's repeats the message
    for secret in _secrets(uri):
        text = text.replace(secret, MASK)
    return " ".join(text.split())


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 86400:  # also refuses nan and inf
        raise UserError(f"${TIMEOUT_ENV}={raw!r}: must be a number of seconds in (0, 86400)")
    return value


def _bounded(fs: pafs.FileSystem, seconds: float) -> pafs.FileSystem:
    """A copy of ``fs`` whose own timeouts answer within ``seconds`` where pyarrow takes them
    (the URI's own settings kept): S3's connect and stalled-request timeouts (unset, an
    unanswering endpoint hangs for minutes), GCS's retry limit (unset, 15 min of retrying,
    e.g. for credentials from a metadata server that is not there). A quarter of the
    deadline each, so S3's three attempts still end inside it, with pyarrow's reason."""
    rebuild, (kwargs,) = fs.__reduce__()
    if isinstance(fs, pafs.S3FileSystem):
        for k in ("connect_timeout", "request_timeout"):
            kwargs[k] = seconds / 4 if kwargs.get(k, -1) <= 0 else kwargs[k]
    elif isinstance(fs, pafs.GcsFileSystem) and kwargs.get("retry_time_limit") is None:
        kwargs["retry_time_limit"] = datetime.timedelta(seconds=seconds / 4)
    else:
        return fs
    return rebuild(kwargs)


def _write_and_delete(fs: pafs.FileSystem, root: str, name: str) -> None:
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root.rstrip('/')}/{name}") as f:
        f.write(b"ok")
    fs.delete_file(f"{root.rstrip('/')}/{name}")


def _probe_read(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


_PROBES = {
    "open": lambda uri: pafs.FileSystem.from_uri(uri),  # S3 without ?region= asks the bucket's
    "exists": lambda fs, path: fs.get_file_info(path).type != pafs.FileType.NotFound,
    "read": _probe_read,
    "probe": _write_and_delete,
}


def _serve() -> None:
    """The child side of ``_isolated``: one probe, its answer pickled to stdout."""
    op, seconds, args = pickle.load(sys.stdin.buffer)
    try:
        if op != "open":
            args = (_bounded(args[0], seconds), *args[1:])
        answer = ("ok", _PROBES[op](*args))
    except Exception as e:  # any failure is the answer; the parent decides what it means
        answer = ("error", f"{e}" or type(e).__name__)
    sys.stdout.buffer.write(pickle.dumps(answer))
    sys.stdout.flush()
    os._exit(0)  # not pyarrow's S3 finalizer at exit: it waits for requests still under way


def _isolated(seconds: float, op: str, *args):
    """``_PROBES[op](*args)`` in a child Python, killed after ``seconds`` or on Ctrl-C.

    Not a thread: a pyarrow call stuck in C++ (an endpoint that never answers, 15 minutes
    of GCS credential retries) would keep this process from exiting, since pyarrow's S3
    finalizer at exit waits for it. The child has its own session, so a terminal's Ctrl-C
    reaches only us, and we end it. The filesystem travels both ways pickled (its options,
    credentials and resolved region), so our own copy never has to touch the network to open.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this robust_ray, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from robust_ray.storage import _serve; _serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env,
    )  # fmt: skip
    try:
        out, err = proc.communicate(pickle.dumps((op, seconds, args)), timeout=seconds)
    except subprocess.TimeoutExpired:
        raise _Deadline from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not out:
        last = (err.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise OSError(f"the probe process failed: {last}")
    status, value = pickle.loads(out)  # our own child's answer
    if status == "error":
        raise OSError(value)
    return value


def _durable_replace(tmp: str, final: str, data: bytes) -> None:
    """Write, fsync, rename, fsync the folder: after a power cut the file is the old one or
    the new one, never a renamed but empty file (rename before data reaches disk)."""
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fd = os.open(os.path.dirname(final) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def join_uri(uri: str, name: str) -> str:
    """``name`` inside the folder ``uri``: in a URI's path, before its ``?query`` (where
    endpoint and credential options ride) and ``#fragment``; a local path is joined as is
    (a '?' there is part of a file name)."""
    if "://" not in uri:
        return f"{uri.rstrip('/')}/{name}"
    head, hash_, fragment = uri.partition("#")
    head, qmark, query = head.partition("?")
    return f"{head.rstrip('/')}/{name}{qmark}{query}{hash_}{fragment}"


class Storage:
    _opened: dict[str, tuple[pafs.FileSystem, str]] = {}  # remote URIs already reached, this process

    def __init__(self, uri: str, what: str = "output"):
        self.uri = uri if "://" in uri else os.path.abspath(uri)
        self.shown = mask_uri(self.uri)  # for every message: the URI without its credentials
        self.what = what
        self.remote = "://" in uri and not uri.lower().startswith(("file:", "mock:"))
        if not self.remote:
            opened = self._doing("opening it", lambda: pafs.FileSystem.from_uri(self.uri), "not a usable location")
            self.fs, self.root = opened
        elif self.uri in Storage._opened:
            self.fs, self.root = Storage._opened[self.uri]
        else:
            self.fs, self.root = self._looking("opening it", "open", self.uri, verdict="not a usable location")
            Storage._opened[self.uri] = self.fs, self.root

    # -- errors ------------------------------------------------------------------------------
    def _fail(self, doing: str, e: BaseException, verdict: str) -> StorageError:
        reason = scrub(str(e) or type(e).__name__, self.uri)
        return StorageError(f"{self.what} {self.shown}: {verdict} ({doing}: {reason})")

    def _looking(self, doing: str, op: str, *args, verdict: str = "cannot reach it"):
        """A look before a run (``_PROBES[op]``): where remote, in a child bounded in time."""
        try:
            if not self.remote:
                return _PROBES[op](*args)
            seconds = timeout_s()
            return _isolated(seconds, op, *args)
        except _Deadline:
            raise StorageError(
                f"{self.what} {self.shown}: no answer within {seconds:g} s ({doing}); check the "
                f"endpoint, the network and the credentials, or wait longer with {TIMEOUT_ENV}=SECONDS"
            ) from None
        except _FAILURES as e:
            raise self._fail(doing, e, verdict) from None

    def _doing(self, doing: str, fn: Callable[[], T], verdict: str) -> T:
        try:
            return fn()
        except _FAILURES as e:
            raise self._fail(doing, e, verdict) from None

    # -- paths -------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def uri_of(self, name: str) -> str:
        return join_uri(self.uri, name)

    def shown_of(self, name: str) -> str:
        """``uri_of(name)`` safe to print."""
        return mask_uri(self.uri_of(name))

    # -- operations --------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self._looking(f"looking up {name}", "exists", self.fs, self.path(name))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write to a temporary name, then move: readers see the old file or the new one.
        In this process, with pyarrow's own patient retries: a run's results must land."""
        folder, slash, base = name.rpartition("/")
        tmp = self.path(f"{folder}{slash}.{base}.tmp-{uuid.uuid4().hex[:8]}")

        def write() -> None:
            self.fs.create_dir(self.path(folder) if folder else self.root, recursive=True)
            if isinstance(self.fs, pafs.LocalFileSystem):
                _durable_replace(tmp, self.path(name), data)
                return
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, self.path(name))

        self._doing(f"writing {name}", write, "cannot write there")

    def delete_dir(self, name: str) -> None:
        """Remove a folder and what it holds; a folder already gone is not an error."""

        def delete() -> None:
            try:
                self.fs.delete_dir(self.path(name))
            except FileNotFoundError:
                pass

        self._doing(f"removing {name}", delete, "cannot write there")

    def list_dirs(self, name: str) -> list[str]:
        """Names of the folders directly under ``name`` (none when it does not exist)."""
        infos = self._doing(
            f"listing {name}",
            lambda: self.fs.get_file_info(pafs.FileSelector(self.path(name), allow_not_found=True)),
            "cannot read it",
        )
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def read_text(self, name: str) -> str:
        data = self._looking(f"reading {name}", "read", self.fs, self.path(name), verdict="cannot read it")
        return self._doing(f"reading {name}", data.decode, "cannot read it")

    def probe(self) -> None:
        """Fail now, with the reason, if we cannot write here (before any trial starts)."""
        name = f".robust_ray_probe-{uuid.uuid4().hex[:8]}"
        self._looking("writing a probe file", "probe", self.fs, self.root, name, verdict="cannot write there")
