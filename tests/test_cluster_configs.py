"""cluster.yaml (AWS) and the on-prem example pass Ray's own validator offline, and keep
Ray's unauthenticated ports off the internet."""

from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from robust_ray.clusters import ONPREM

AWS = Path(__file__).resolve().parents[1] / "cluster.yaml"


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
