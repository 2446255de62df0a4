"""A remote --output that cannot be reached is refused on one line, with exit 2, within a
bounded time, its credentials masked, and Ctrl-C ends the wait at once (issue 14).

The CLI cases run the real ``robust-ray run`` in a subprocess against endpoints on this
machine: a closed port (connection refused) and a listening socket that never answers."""

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robust_ray.errors import UserError
from robust_ray.storage import TIMEOUT_ENV, Storage, StorageError, join_uri, mask_uri, scrub

REPO = Path(__file__).resolve().parents[1]
SPEC = str(REPO / "sweeps" / "quickstart.yaml")
CLOSED = "127.0.0.1:9"  # discard port: nothing listens, so connections are refused


@pytest.fixture
def silent_endpoint():
    """host:port of a socket that accepts connections (the kernel's backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s, f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


def robust_ray_run(output: str, cwd: Path, **env) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "robust_ray", "run", SPEC, "--output", output],
        capture_output=True, text=True, timeout=180, cwd=cwd, env={**os.environ, **env},
    )  # fmt: skip
    return r, time.time() - t0


def assert_refused_on_one_line(r: subprocess.CompletedProcess, elapsed: float, cwd: Path) -> str:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robust-ray: error: output "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert elapsed < 60
    assert not any(cwd.iterdir())  # nothing written, not even a local results/ folder
    return lines[0]


def test_s3_endpoint_refusing_connections_masks_the_credentials(tmp_path):
    uri = f"s3://AKIDEXAMPLE:s3cr3tPASSWORD@bucket/x?endpoint_override={CLOSED}&scheme=http"
    r, elapsed = robust_ray_run(uri, tmp_path)
    line = assert_refused_on_one_line(r, elapsed, tmp_path)
    assert f"s3://***:***@bucket/x?endpoint_override={CLOSED}&scheme=http" in line
    assert "Could not connect" in line  # pyarrow's reason, kept
    assert "s3cr3tPASSWORD" not in r.stderr + r.stdout and "AKIDEXAMPLE" not in r.stderr + r.stdout


def test_gcs_endpoint_out_of_reach_answers_instead_of_hanging(tmp_path):
    """Without a retry limit, pyarrow's GCS client retries for 15 minutes (no credentials,
    no metadata server), deaf to Ctrl-C."""
    r, elapsed = robust_ray_run(f"gs://bucket/x?endpoint_override={CLOSED}&scheme=http", tmp_path)
    line = assert_refused_on_one_line(r, elapsed, tmp_path)
    assert f"gs://bucket/x?endpoint_override={CLOSED}&scheme=http" in line


def test_ctrl_c_during_a_probe_of_an_endpoint_that_never_answers_exits_at_once(tmp_path, silent_endpoint):
    server, endpoint = silent_endpoint
    output = f"s3://bucket/x?endpoint_override={endpoint}&scheme=http"
    cmd = [sys.executable, "-m", "robust_ray", "run", SPEC, "--output", output]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, TIMEOUT_ENV: "300"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert select.select([server], [], [], 120)[0], "the probe never connected"
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == proc.pid]
        assert children  # the probe runs in a child process
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert time.time() - t0 < 10 and proc.returncode != 0
        assert not [c for c in children if os.path.exists(f"/proc/{c}")]  # the probe ended with us
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_an_endpoint_that_never_answers_is_given_up_after_the_timeout(silent_endpoint, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "2")
    _, endpoint = silent_endpoint
    t0 = time.time()
    with pytest.raises(StorageError, match=r"(no answer within 2 s|Timeout was reached) \(?looking up tune") as e:
        Storage(f"s3://bucket/x?endpoint_override={endpoint}&scheme=http").exists("tune")
    assert time.time() - t0 < 10 and "\n" not in str(e.value)


@pytest.mark.parametrize("raw", ["0", "-1", "inf", "nan", "soon"])
def test_a_bad_timeout_setting_is_refused_by_name(raw, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    with pytest.raises(UserError, match=TIMEOUT_ENV):
        Storage("s3://bucket/x?region=us-east-1")


def test_a_token_in_a_query_the_uri_parser_refuses_is_not_echoed():
    with pytest.raises(StorageError) as e:
        Storage("s3://bucket/x?region=us-east-1&session_token=SESSIONSECRET")
    assert "session_token=***" in str(e.value) and "SESSIONSECRET" not in str(e.value)


def test_local_folders_stay_in_process():
    s = Storage(".")
    assert not s.remote and s.exists("pyproject.toml") is (Path("pyproject.toml").exists())


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("s3://AKID:pa/ss+w@bucket/x?region=eu-west-1", "s3://***:***@bucket/x?region=eu-west-1"),
        ("s3://bucket/x?access_key=AK&secret_key=S%2Fk&session_token=T&region=us",
         "s3://bucket/x?access_key=***&secret_key=***&session_token=***&region=us"),
        ("hdfs://alice:pw@namenode:9000/p", "hdfs://alice:***@namenode:9000/p"),
        ("https://acct.blob.example/c?sv=1&sig=abc%3D&se=2", "https://acct.blob.example/c?sv=1&sig=***&se=2"),
        ("s3://bucket/runs/a@b/x", "s3://bucket/runs/a@b/x"),  # an '@' in a path is no password
        ("gs://bucket/x?endpoint_override=127.0.0.1:9#f", "gs://bucket/x?endpoint_override=127.0.0.1:9#f"),
        ("/tmp/results", "/tmp/results"),
    ],
)  # fmt: skip
def test_mask_uri(uri, shown):
    assert mask_uri(uri) == shown


@pytest.mark.parametrize(
    "uri, joined",
    [
        ("s3://bucket/out?region=eu-west-1&endpoint_override=127.0.0.1:9000",
         "s3://bucket/out/models?region=eu-west-1&endpoint_override=127.0.0.1:9000"),
        ("s3://bucket/out/?scheme=http#f", "s3://bucket/out/models?scheme=http#f"),
        ("s3://AK:S/K@bucket/out", "s3://AK:S/K@bucket/out/models"),
        ("/tmp/odd?name/", "/tmp/odd?name/models"),  # a local path: '?' is a character of it
    ],
)  # fmt: skip
def test_a_name_goes_into_a_uris_path_not_after_its_query(uri, joined):
    assert join_uri(uri, "models") == joined


# secrets from upper case, digits and URL punctuation; the rest of the URI in lower case, so
# that a masked secret cannot hide a part of the URI that should stay readable
SECRET = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/!$*-_.~"), min_size=4, max_size=30)
SAFE = st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(user=SECRET, password=SECRET | SECRET.map(lambda s: s[:2] + ":" + s[2:]), token=SECRET,
       bucket=SAFE, key=SAFE, region=SAFE)  # fmt: skip
def test_no_secret_survives_in_a_message_about_the_uri(user, password, token, bucket, key, region):
    uri = f"s3://{user}:{password}@{bucket}/{key}?region={region}&session_token={token}"
    message = f"When reading {uri}: bad password {password!s} for {user} (token {token})\nsecond line"
    for text in (mask_uri(uri), scrub(message, uri)):
        assert password not in text and token not in text and user not in text
        assert f"{bucket}/{key}?region={region}" in text  # where it is stays readable
    assert "\n" not in scrub(message, uri)
