"""VGG-16 (configuration D), the network of DC Table 5."""

from __future__ import annotations

import torch
from torch import nn

from compression.specs import LayerSpec
from experiments.models.torchvision_weights import load_torchvision_weights


class VGG16(nn.Module):
    """torchvision's VGG-16 with the paper's names conv1_1..conv5_3, fc6..fc8.

    ``model.pretrained=true`` loads torchvision's ImageNet weights.
    """

    _convs = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
    _conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    dropout_inputs = {"net.classifier.2": "fc7", "net.classifier.5": "fc8"}

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224):
        super().__init__()
        import torchvision

        self.net = torchvision.models.vgg16(weights=None, num_classes=num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        names = [*self._convs, "fc6", "fc7", "fc8"]
        paths = [f"net.features.{i}" for i in self._conv_idx] + [f"net.classifier.{i}" for i in (0, 3, 6)]
        last = len(names) - 1
        return [LayerSpec(n, p, kind="conv" if n.startswith("conv") else "fc",
                          next=names[i + 1] if i < last else None, via="relu" if i < last else None,
                          sole_consumer=i < last)
                for i, (n, p) in enumerate(zip(names, paths))]

    def load_pretrained(self) -> None:
        load_torchvision_weights(self.net, "vgg16", "VGG16_Weights")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
