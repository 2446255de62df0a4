"""cluster.yaml (AWS) and the on-prem example pass Ray's own validator offline, start Ray
with token authentication on every node, and keep Ray's ports off the internet."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from robust_ray.clusters import ONPREM

REPO = Path(__file__).resolve().parents[1]
AWS = REPO / "cluster.yaml"


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_validates_with_rays_validator(path):
    config = prepare_config(yaml.safe_load(path.read_text()))
    validate_config(config)
    starts = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in starts  # never 0.0.0.0
    assert any("robust_ray" in c for c in config["setup_commands"])


def test_aws_security_group_admits_ssh_only():
    """What Ray puts in a group it creates (its own rules and ours): nothing but port 22 is
    open to any address range; everything else only to the group's own members."""
    from ray.autoscaler._private.aws.config import _create_default_inbound_rules

    config = yaml.safe_load(AWS.read_text())
    ours = config["provider"]["security_group"]["IpPermissions"]
    cidrs = [ip["CidrIp"] for r in ours for ip in r["IpRanges"]]
    assert cidrs and "0.0.0.0/0" not in cidrs  # the range a user-made group admits
    for rule in _create_default_inbound_rules({"sg-self"}, ours):
        if rule.get("IpRanges"):
            assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 22, 22)
        else:
            assert rule["UserIdGroupPairs"] == [{"GroupId": "sg-self"}]


def test_aws_nodes_run_a_python_robust_ray_supports():
    config = prepare_config(yaml.safe_load(AWS.read_text()))
    images = [config["docker"]["head_image"], config["docker"]["worker_image"]]
    assert all("py311" in i for i in images) and config["docker"]["worker_image"].endswith("-gpu")


def test_aws_has_a_cpu_head_and_autoscaling_gpu_workers_with_whole_gpus():
    config = prepare_config(yaml.safe_load(AWS.read_text()))
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert "GPU" not in head["resources"]
    assert workers and all(w["min_workers"] == 0 < w["max_workers"] for w in workers)
    assert all(w["node_config"]["InstanceType"].startswith(("g", "p")) for w in workers)  # GPU instance families
    assert all(float(w["resources"].get("GPU", 1)).is_integer() for w in workers)


# -- Ray token authentication (issue 14) ----------------------------------------------------

CONFIGS = pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])


def prepared(path: Path) -> dict:
    config = prepare_config(yaml.safe_load(path.read_text()))
    validate_config(config)
    return config


def start_commands(config: dict) -> list[str]:
    """Every start command Ray would run, the per-node-type ones included."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("start_ray_commands"):
                    found.extend(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return found


def bash(command: str, home: Path, stubs: str = "") -> subprocess.CompletedProcess:
    """``command`` as a node's shell runs it (HOME, RAY_HEAD_IP), with shell functions
    ``stubs`` standing in for programs (functions come before builtins and PATH)."""
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "RAY_HEAD_IP": "10.0.0.10"}
    return subprocess.run(["bash", "-c", f"{stubs}\n{command}"], env=env, capture_output=True, text=True, timeout=30)


RAY_START_SEES = (  # ray start prints what it would start with; -n 65536 may exceed this machine's hard limit
    'ray() { [ "$1" = start ] && echo "mode=${RAY_AUTH_MODE-} path=${RAY_AUTH_TOKEN_PATH-} token=${RAY_AUTH_TOKEN-}'
    ' core=$(ulimit -c)"; true; }\n'
    'ulimit() { [ "$1" = -n ] || builtin ulimit "$@"; }'
)


@CONFIGS
def test_every_ray_start_requires_the_token_from_the_folder_file_mounts_copies(path, tmp_path):
    """What ``ray start`` sees in its environment on each node, by running the rendered
    command in bash with ``ray`` stubbed: token mode, and the token file inside a folder
    that file_mounts copies to every node (the head copies its mounts on to the workers)."""
    config = prepared(path)
    starts = [c for c in start_commands(config) if "ray start" in c]
    assert any("--head" in c for c in starts) and any("--address" in c for c in starts)
    mounted = {str(tmp_path / target.removeprefix("~/")) for target in config["file_mounts"]}
    for command in starts:
        seen = bash(command, tmp_path, RAY_START_SEES).stdout.split()
        assert "mode=token" in seen, command
        token_path = Path(next(s for s in seen if s.startswith("path=")).removeprefix("path="))
        assert str(token_path.parent) in mounted, command
        assert "token=" in seen  # no token inline: it would sit in the config and every log


@CONFIGS
def test_the_token_comes_from_outside_the_repository_and_is_checked_before_setup(path, tmp_path):
    config = prepared(path)
    ((target, source),) = [(t, s) for t, s in config["file_mounts"].items() if "auth" in t]
    assert source.startswith("~/") and REPO not in Path(os.path.expanduser(source)).parents
    check = config["setup_commands"][0]
    refused = bash(check, tmp_path)
    assert refused.returncode != 0 and "no Ray token" in refused.stderr and path.name in refused.stderr
    token = tmp_path / target.removeprefix("~/") / "auth_token"
    token.parent.mkdir(parents=True)
    token.write_text("0" * 64)
    assert bash(check, tmp_path).returncode == 0


@CONFIGS
def test_shells_on_the_nodes_find_the_token_and_setup_adds_it_once(path, tmp_path):
    """Ray runs ``ray exec`` commands as ``source ~/.bashrc; ...``: drivers started there
    (``robust-ray run --address auto``) must see the same token as ``ray start``."""
    config = prepared(path)
    (line,) = [c for c in config["setup_commands"] if ".bashrc" in c]
    for _ in range(2):  # `ray up` again runs setup again
        assert bash(line, tmp_path).returncode == 0
    assert (tmp_path / ".bashrc").read_text().count("RAY_AUTH_MODE") == 1
    seen = bash('source ~/.bashrc; echo "$RAY_AUTH_MODE $RAY_AUTH_TOKEN_PATH"', tmp_path).stdout.split()
    head = next(c for c in start_commands(config) if "--head" in c)
    started = bash(head, tmp_path, RAY_START_SEES).stdout.split()
    assert seen == ["token", next(s for s in started if s.startswith("path=")).removeprefix("path=")]


def test_no_token_is_committed():
    """Ray's tokens are 64 hex digits (``secrets.token_hex(32)``, ``ray get-auth-token``)."""
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in filter(None, files.decode().split("\0")):
        assert "auth_token" not in Path(name).name, name
        file = REPO / name
        if file.is_file() and not file.is_symlink():
            assert not re.search(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])", file.read_bytes()), name


@CONFIGS
def test_no_core_dumps_of_processes_holding_the_token(path, tmp_path):
    for command in [c for c in start_commands(prepared(path)) if "ray start" in c]:
        assert "core=0" in bash(f"ulimit -c unlimited 2>/dev/null; {command}", tmp_path, RAY_START_SEES).stdout, command


def test_the_ssh_rule_description_is_true_and_one_aws_accepts():
    config = yaml.safe_load(AWS.read_text())
    (rule,) = config["provider"]["security_group"]["IpPermissions"]
    desc = rule["IpRanges"][0]["Description"]
    assert "only" not in desc.lower() and "0.0.0.0/0" in desc  # Ray's own rule admits everyone
    assert re.fullmatch(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}", desc)  # EC2's rule for descriptions


def test_the_onprem_example_names_the_ports_to_firewall():
    text = ONPREM.read_text()
    for port in ("22", "6379", "8265", "10001", "52365", "10002-19999"):
        assert re.search(rf"\b{port}\b", text), port
