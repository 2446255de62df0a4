"""Architectures: every registered name builds, scores [B, K], has the documented number of
parameters, and says which input sizes it takes; MoCSE follows 004 §3.5/§4.3."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from robust_ray.models import MODELS, MoCSE, build_model, count_parameters, training_loss


def conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def fc(n_in, n_out):
    return n_in * n_out + n_out


# name -> (channels, size, parameters for 10 classes), each count derived from the layer
# list in the model's docstring or from torchvision's own network minus what we changed
EXPECTED = {
    "lenet5": (1, 28, conv(1, 6, 5) + conv(6, 16, 5) + fc(400, 120) + fc(120, 84) + fc(84, 10)),
    "alexnet8": (
        1,
        28,
        conv(1, 64, 3) + conv(64, 192, 3) + conv(192, 384, 3) + conv(384, 256, 3) + conv(256, 256, 3)
        + fc(2304, 1024) + fc(1024, 1024) + fc(1024, 10),
    ),
    "alexnet": (
        3,
        32,
        count_parameters(tvm.alexnet(num_classes=10))
        - conv(3, 64, 11) + conv(3, 64, 3)
        - fc(256 * 6 * 6, 4096) + fc(256 * 3 * 3, 4096),
    ),
    "resnet50": (
        3,
        32,
        count_parameters(tvm.resnet50(num_classes=10)) - conv(3, 64, 7, False) + conv(3, 64, 3, False),
    ),
    "vgg19": (
        3,
        32,
        count_parameters(tvm.vgg19(num_classes=10).features) + fc(512, 512) + fc(512, 512) + fc(512, 10),
    ),
    "vgg19_bn": (
        3,
        32,
        count_parameters(tvm.vgg19_bn(num_classes=10).features) + fc(512, 512) + fc(512, 512) + fc(512, 10),
    ),
    # resnet18 has the same convolutions and linear layer; pre-activation moves the BNs
    # (stem BN -> final BN, same size) and replaces identity-shortcut BNs: 1x1 shortcut
    # convs keep, their BNs go (128+256+512 channels x 2 parameters)
    "preact_resnet18": (
        3,
        32,
        count_parameters(tvm.resnet18(num_classes=10)) - conv(3, 64, 7, False) + conv(3, 64, 3, False)
        - 2 * (128 + 256 + 512),
    ),
}  # fmt: skip


def test_every_plain_architecture_is_covered():
    assert set(MODELS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_shape_and_parameter_count(name):
    c, s, params = EXPECTED[name]
    model = build_model(name, c, 10, (s, s))
    assert count_parameters(model) == params
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(3, c, s, s))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


def test_documented_counts():
    """The numbers written in the docstrings are the ones the layer arithmetic gives."""
    assert EXPECTED["lenet5"][2] == 61_706
    assert EXPECTED["alexnet8"][2] == 5_670_602
    assert EXPECTED["alexnet"][2] == 28_711_754
    assert EXPECTED["resnet50"][2] == 23_520_842
    assert EXPECTED["vgg19"][2] == 20_554_826
    assert EXPECTED["vgg19_bn"][2] == 20_565_834
    assert EXPECTED["preact_resnet18"][2] == 11_172_170


@pytest.mark.parametrize("name", ["lenet5", "alexnet8", "preact_resnet18"])
def test_channels_and_classes_are_free(name):
    c, s, _ = EXPECTED[name]
    other = {1: 3, 3: 1}[c]
    model = build_model(name, other, 7, (s, s)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, other, s, s)).shape == (2, 7)


@pytest.mark.parametrize(
    "name, size, takes",
    [("alexnet8", (32, 32), "28x28"), ("resnet50", (28, 28), "32x32"), ("lenet5", (64, 64), "28x28, 32x32"),
     ("mocse:preact_resnet18", (28, 28), "32x32")],
)  # fmt: skip
def test_wrong_input_size_says_which_sizes_it_takes(name, size, takes):
    with pytest.raises(ValueError, match=f"{name} takes inputs of size {takes}, not {size[0]}x{size[1]}"):
        build_model(name, 1, 10, size)


def test_unknown_names_list_what_exists():
    for bad in ["lenet", "mocse:lenet", "moe:lenet5"]:
        assert bad not in MODELS
        with pytest.raises(KeyError, match="known: alexnet, alexnet8, lenet5.*mocse:<any of these>"):
            MODELS.get(bad)


def test_wrapped_names_resolve_for_every_base():
    for base in MODELS:
        assert f"mocse:{base}" in MODELS
        assert MODELS.get(f"mocse:{base}").input_sizes == MODELS.get(base).input_sizes


# --- MoCSE (004 §3.5, §4.3) -----------------------------------------------------------


def mocse_lenet(k=10) -> MoCSE:
    torch.manual_seed(0)
    return build_model("mocse:lenet5", 1, k, (28, 28))


def test_mocse_is_one_binary_base_per_class():
    m = mocse_lenet()
    assert len(m.experts) == 10
    assert count_parameters(m) == 10 * count_parameters(build_model("lenet5", 1, 2, (28, 28)))
    assert all(e(torch.rand(1, 1, 28, 28)).shape == (1, 2) for e in m.experts)


def test_mocse_aggregates_each_experts_true_probability():
    """F(x)_n = softmax(f_θn(x))_True, nothing learnt in the aggregator (004 §3.5)."""
    m = mocse_lenet().eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        expected = torch.stack([F.softmax(e(x), 1)[:, 1] for e in m.experts], 1)
        torch.testing.assert_close(m(x), expected)
    assert not any("aggregat" in n for n, _ in m.named_parameters())


def test_mocse_loss_is_ce_on_aggregate_plus_bce_per_expert():
    m = mocse_lenet()
    x, y = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 9, 9])
    p = torch.stack([F.softmax(e(x), 1)[:, 1] for e in m.experts], 1)
    onehot = F.one_hot(y, 10).float()
    bce = sum(F.binary_cross_entropy(p[:, n], onehot[:, n]) for n in range(10))
    expected = F.cross_entropy(p, y) + bce
    torch.testing.assert_close(training_loss(m, x, y), expected, rtol=1e-5, atol=1e-5)
    # soft targets (Mixup/TLAT): the same loss with probabilities in place of one-hots
    torch.testing.assert_close(training_loss(m, x, onehot), expected, rtol=1e-5, atol=1e-5)


def test_each_experts_bce_reaches_only_its_own_parameters():
    m = mocse_lenet()
    x = torch.rand(4, 1, 28, 28)
    margin = m.margins(x)
    F.binary_cross_entropy_with_logits(margin[:, 3], torch.ones(4)).backward()
    grads = [sum(float(p.grad.abs().sum()) if p.grad is not None else 0.0 for p in e.parameters()) for e in m.experts]
    assert grads[3] > 0 and sum(grads) == grads[3]


def test_mocse_predicts_the_largest_margin_under_bf16_autocast():
    """The GPU evaluates under bf16 autocast: close-to-1 expert probabilities must not tie."""

    def expert(margin: float) -> nn.Module:
        head = nn.Linear(4, 2)
        nn.init.zeros_(head.weight)
        head.bias.data = torch.tensor([0.0, margin])
        return head

    margins = iter([4.0, 6.0, 7.5, 9.0, 8.0])
    m = MoCSE(lambda: expert(next(margins)), 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = m(torch.rand(3, 4))
    assert scores.dtype == torch.float32
    assert scores.argmax(1).tolist() == [3, 3, 3]


def test_plain_models_train_on_cross_entropy():
    model = build_model("lenet5", 1, 10, (28, 28))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    torch.testing.assert_close(training_loss(model, x, y), F.cross_entropy(model(x), y))
    assert not hasattr(nn.Module, "training_loss")


@pytest.mark.parametrize(
    "dataset, archs, bad",
    [("cifar10", ["lenet5", "alexnet8"], 1), ("mnist", ["alexnet8", "mocse:vgg19"], 1),
     ("fashion-mnist", ["resnet50"], 0)],
)  # fmt: skip
def test_spec_validation_rejects_an_architecture_for_the_wrong_image_size(dataset, archs, bad):
    from robust_ray.config import parse_spec
    from robust_ray.errors import SpecError

    spec = {"name": "t", "dataset": {"name": dataset}, "architectures": archs,
            "design": {"factors": {"label_error": {"levels": [0.1]}}}}  # fmt: skip
    with pytest.raises(SpecError) as e:
        parse_spec(spec, "s.yaml")
    assert e.value.path == f"architectures[{bad}]"
    assert f"{archs[bad]} takes inputs of size" in e.value.message and dataset in e.value.message
