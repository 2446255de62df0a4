"""Architectures, registered by name (see :mod:`.base` for the contract).

- 000 (MNIST, 28x28): ``lenet5``, ``alexnet8``;
- 003/004 (CIFAR-10, 32x32): ``alexnet``, ``resnet50``, ``vgg19``, ``vgg19_bn``,
  ``preact_resnet18``;
- 004 §3.5: ``mocse:<base>``, a Mixture of Class-Specific Experts around any base.
"""

from . import cifar, mnist, mocse  # noqa: F401  (registration)
from .base import MODELS, ModelDef, Wrapper, build_model, count_parameters, training_loss
from .mnist import AlexNet8, LeNet5
from .mocse import MoCSE

__all__ = [
    "MODELS", "ModelDef", "Wrapper", "build_model", "count_parameters", "training_loss",
    "LeNet5", "AlexNet8", "MoCSE",
]  # fmt: skip
