"""The two architectures of the core study (000 §2.1), for 28x28 grey digits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, ModelDef


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) as used in 000 §2.1: 28x28 digits padded to 32x32,
    C1 6@5x5, S2, C3 16@5x5, S4, F5 120, F6 84, output 10 (61,706 parameters for 1 channel).
    ReLU and max-pooling replace the original squashing and trainable subsampling, as in
    the common PyTorch rendition; the layer sizes are the paper's."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 28:
            x = F.pad(x, (2, 2, 2, 2))
        # relu(maxpool(.)) == maxpool(relu(.)) (relu is monotone), on a quarter of the values
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class AlexNet8(nn.Module):
    """AlexNet-8 of 000 §2.1: "5 convolutional layers and 3 fully connected layers",
    AlexNet (Krizhevsky et al. 2012) adjusted to 28x28 inputs. The paper gives no sizes;
    ours keep AlexNet's channel widths and layer order and shrink what the small input
    cannot carry:

    - conv 64@3x3 -> pool -> conv 192@3x3 -> pool -> conv 384@3x3 -> conv 256@3x3 ->
      conv 256@3x3 -> pool (ReLU after each conv, padding 1, 2x2 max-pools: 28 -> 14 -> 7 -> 3);
      3x3 kernels instead of 11x11/4 and 5x5, which would shrink 28 px to nothing;
    - FC 2304 -> 1024 -> 1024 -> classes with dropout 0.5 before the first two, as in
      AlexNet; 1024 instead of 4096 units because the input is 2304, not 9216, features.

    5,670,602 parameters for 1 channel and 10 classes (conv 2,250,432; FC 3,420,170);
    about 0.13 GMAC per image, ~300x LeNet-5: meant for a GPU.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(in_channels, 64), nn.MaxPool2d(2),
            *conv(64, 192), nn.MaxPool2d(2),
            *conv(192, 384), *conv(384, 256), *conv(256, 256), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 3 * 3, 1024), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(1024, 1024), nn.ReLU(inplace=True),
            nn.Linear(1024, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


MODELS.register("lenet5", ModelDef("lenet5", LeNet5, ((28, 28), (32, 32)), "LeNet-5, 000 §2.1"))
MODELS.register("alexnet8", ModelDef("alexnet8", AlexNet8, ((28, 28),), "AlexNet-8 for 28x28, 000 §2.1"))
