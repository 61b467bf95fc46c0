"""The papers' two MNIST networks, with their layer names (DC Tables 2 and 3)."""

from __future__ import annotations

import torch
from torch import nn

from compression.specs import LayerSpec


class LeNet300(nn.Module):
    """LeNet-300-100: ip1 784->300, ip2 300->100, ip3 100->10 (266,200 weights)."""

    dropout_inputs: dict[str, str] = {}

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.ip1 = nn.Linear(in_channels * image_size * image_size, 300)
        self.ip2 = nn.Linear(300, 100)
        self.ip3 = nn.Linear(100, num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        return [LayerSpec("ip1", "ip1", kind="fc", next="ip2", via="relu", sole_consumer=True),
                LayerSpec("ip2", "ip2", kind="fc", next="ip3", via="relu", sole_consumer=True),
                LayerSpec("ip3", "ip3", kind="fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.ip1(x.flatten(1)))
        x = torch.relu(self.ip2(x))
        return self.ip3(x)


class LeNet5(nn.Module):
    """Caffe's LeNet-5: conv1 20@5x5, max-pool, conv2 50@5x5, max-pool, ip1 800->500, ReLU, ip2 500->10.

    As in Caffe's lenet_train_test.prototxt, the conv layers have no non-linearity of their
    own; the only ReLU is after ip1. 430,500 weights.
    """

    dropout_inputs: dict[str, str] = {}

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        side = ((image_size - 4) // 2 - 4) // 2
        self.ip1 = nn.Linear(50 * side * side, 500)
        self.ip2 = nn.Linear(500, num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        # max-pooling (and the flatten before ip1) sit between the layers: they keep a constant a constant
        return [LayerSpec("conv1", "conv1", kind="conv", next="conv2", via="identity", sole_consumer=True),
                LayerSpec("conv2", "conv2", kind="conv", next="ip1", via="identity", sole_consumer=True),
                LayerSpec("ip1", "ip1", kind="fc", next="ip2", via="relu", sole_consumer=True),
                LayerSpec("ip2", "ip2", kind="fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = torch.relu(self.ip1(x.flatten(1)))
        return self.ip2(x)
