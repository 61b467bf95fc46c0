"""AlexNet two ways: the paper's Caffe model (``model=alexnet_caffe``, DC Table 4's layer sizes)
and torchvision's variant (``model=alexnet``, which has torchvision's pretrained weights)."""

from __future__ import annotations

import torch
from torch import nn

from compression.specs import LayerSpec
from experiments.models.torchvision_weights import load_torchvision_weights


class AlexNetCaffe(nn.Module):
    """BVLC's Caffe AlexNet, the model DC Table 4 compresses (Krizhevsky et al. 2012, one-GPU form).

    conv1 96@11x11/4, ReLU, LRN, max-pool 3/2; conv2 256@5x5 pad 2 in two groups, ReLU, LRN,
    max-pool; conv3 384@3x3 pad 1; conv4 384@3x3 pad 1 in two groups; conv5 256@3x3 pad 1 in two
    groups, max-pool; fc6 9216->4096, fc7 4096->4096, fc8 4096->1000, dropout before fc6 and fc7.
    Weights per layer: 34,848 / 307,200 / 884,736 / 663,552 / 442,368 / 37,748,736 / 16,777,216 /
    4,096,000 (DC Table 4: 35K, 307K, 885K, 663K, 442K, 38M, 17M, 4M). LRN: size 5, alpha 1e-4,
    beta 0.75, k 1 (Caffe's; torch divides alpha by the size as Caffe does). Caffe feeds 227x227
    crops (pool5 is then 6x6); an adaptive average pool to 6x6 lets 224x224 inputs through too.
    """

    dropout_inputs = {"drop6": "fc6", "drop7": "fc7"}

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, image_size: int = 227):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 96, 11, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool = nn.MaxPool2d(3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.drop6, self.drop7 = nn.Dropout(0.5), nn.Dropout(0.5)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        # LRN mixes neighbouring channels, so conv1 and conv2 are not the sole consumers' only input
        # path (via None): neuron pruning leaves them alone. The grouped convolutions it refuses itself.
        return [LayerSpec("conv1", "conv1", kind="conv", next="conv2"),
                LayerSpec("conv2", "conv2", kind="conv", next="conv3"),
                LayerSpec("conv3", "conv3", kind="conv", next="conv4", via="relu", sole_consumer=True),
                LayerSpec("conv4", "conv4", kind="conv", next="conv5", via="relu", sole_consumer=True),
                LayerSpec("conv5", "conv5", kind="conv", next="fc6", via="relu", sole_consumer=True),
                LayerSpec("fc6", "fc6", kind="fc", next="fc7", via="relu", sole_consumer=True),
                LayerSpec("fc7", "fc7", kind="fc", next="fc8", via="relu", sole_consumer=True),
                LayerSpec("fc8", "fc8", kind="fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.norm(torch.relu(self.conv1(x))))
        x = self.pool(self.norm(torch.relu(self.conv2(x))))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))
        x = self.avgpool(self.pool(torch.relu(self.conv5(x))))
        x = torch.relu(self.fc6(self.drop6(x.flatten(1))))
        x = torch.relu(self.fc7(self.drop7(x)))
        return self.fc8(x)


class AlexNet(nn.Module):
    """torchvision's AlexNet with the paper's layer names conv1..conv5, fc6..fc8.

    Not the Caffe AlexNet of the paper (``AlexNetCaffe``): torchvision's has 64/192/384/256/256 conv
    channels and no grouping or LRN, so conv layer sizes differ from DC Table 4; fc6/fc7/fc8 have the
    paper's shapes (9216->4096->4096->1000). ``model.pretrained=true`` loads torchvision's weights.
    """

    _convs = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
    _fcs = {"fc6": 1, "fc7": 4, "fc8": 6}
    dropout_inputs = {"net.classifier.0": "fc6", "net.classifier.3": "fc7"}

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224):
        super().__init__()
        import torchvision

        self.net = torchvision.models.alexnet(weights=None, num_classes=num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        names = [*self._convs, *self._fcs]
        paths = [f"net.features.{i}" for i in self._convs.values()] + [f"net.classifier.{i}" for i in self._fcs.values()]
        return [LayerSpec(n, p, kind="conv" if n.startswith("conv") else "fc",
                          next=names[i + 1] if i + 1 < len(names) else None,
                          via="relu" if i + 1 < len(names) else None, sole_consumer=i + 1 < len(names))
                for i, (n, p) in enumerate(zip(names, paths))]

    def load_pretrained(self) -> None:
        load_torchvision_weights(self.net, "alexnet", "AlexNet_Weights")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
