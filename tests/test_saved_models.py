"""Saved models: safetensors weights and a JSON sidecar, through Storage; a model loaded
back predicts bit for bit as the one saved."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from robust_ray.models import build_model
from robust_ray.saved_models import load_model, read_sidecar, save_model
from robust_ray.storage import Storage

META = {"recipe": "erm", "options": {"lr": 0.001}, "seed": 3, "levels": {"gaussian": 0.2}, "spec_hash": "ab12"}


def model_and_images(arch: str = "lenet5"):
    torch.manual_seed(0)
    model = build_model(arch, 1, 10, (28, 28)).eval()
    return model, torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("where", ["folder", "object store"])
def test_a_saved_model_reloads_to_bit_identical_logits(tmp_path, where):
    model, x = model_and_images()
    # mock:// is pyarrow's in-memory filesystem: the object-store code path (stream, then move)
    place = str(tmp_path) if where == "folder" else Storage("mock:///bucket/sweep")
    uri = save_model(
        model, place, "trial_0007", arch="lenet5", shape=(1, 28, 28), num_classes=10, meta=META, folder="models"
    )
    assert uri.endswith("/models/trial_0007.safetensors")
    loaded, sidecar = load_model(place, "trial_0007", folder="models")
    assert type(loaded) is type(model) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert sidecar["arch"] == "lenet5" and sidecar["shape"] == [1, 28, 28] and sidecar["meta"] == META
    assert read_sidecar(place, "trial_0007", folder="models") == sidecar


def test_the_weights_are_safetensors_not_pickle(tmp_path):
    model, _ = model_and_images()
    save_model(
        model.to(memory_format=torch.channels_last), tmp_path, "t1", arch="lenet5", shape=(1, 28, 28), num_classes=10
    )
    raw = (tmp_path / "t1.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header length, then a JSON header
    header = json.loads(raw[8 : 8 + size])
    assert set(header) - {"__metadata__"} == set(model.state_dict())
    assert not raw.startswith(b"PK") and b"\x80\x02" not in raw[:2]  # neither torch.save's zip nor a pickle
    assert json.loads((tmp_path / "t1.json").read_text())["weights"] == "t1.safetensors"


def test_weights_that_do_not_match_their_sidecar_are_refused(tmp_path):
    a, _ = model_and_images()
    save_model(a, tmp_path, "t1", arch="lenet5", shape=(1, 28, 28), num_classes=10)
    torch.manual_seed(9)
    save_model(build_model("lenet5", 1, 10, (28, 28)), tmp_path, "t2", arch="lenet5", shape=(1, 28, 28), num_classes=10)
    (tmp_path / "t1.safetensors").write_bytes((tmp_path / "t2.safetensors").read_bytes())
    with pytest.raises(ValueError, match="SHA-256"):
        load_model(tmp_path, "t1")


def test_unusable_trial_ids_and_metadata_are_refused_before_writing(tmp_path):
    model, _ = model_and_images()
    with pytest.raises(ValueError, match="trial id"):
        save_model(model, tmp_path, "../x", arch="lenet5", shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError):
        save_model(model, tmp_path, "t3", arch="lenet5", shape=(1, 28, 28), num_classes=10, meta={"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_the_recorded_uri_keeps_the_query_and_masks_its_credentials():
    """model_uri goes into trials.parquet, which gets shared: the object-store options of the
    output URI stay after the path (not before the model's name), their secrets masked."""
    model, x = model_and_images()
    place = Storage("mock:///bucket/sweep?region=eu-west-1&secret_key=SECRET/KEY")
    uri = save_model(model, place, "trial_0007", arch="lenet5", shape=(1, 28, 28), num_classes=10, folder="models")
    assert uri == "mock:///bucket/sweep/models/trial_0007.safetensors?region=eu-west-1&secret_key=***"
    loaded, _ = load_model(place, "trial_0007", folder="models")
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
