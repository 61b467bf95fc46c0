"""The paper's four networks, with the paper's layer names.

Every model exposes ``layer_paths`` (paper layer name -> module path, in forward order)
and ``dropout_inputs`` (dropout module path -> the paper layer whose input it drops, for
LWC's dropout rescaling). ``prunable_layers(model)`` turns that into
``[(name, module, kind)]`` with kind ``conv`` or ``fc``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from experiments.errors import UserError


class LeNet300(nn.Module):
    """LeNet-300-100: ip1 784->300, ip2 300->100, ip3 100->10 (266,200 weights)."""

    layer_paths = {"ip1": "ip1", "ip2": "ip2", "ip3": "ip3"}
    activations = ["relu", "relu"]   # between consecutive layers (for dead-neuron removal)
    dropout_inputs: dict[str, str] = {}

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.ip1 = nn.Linear(in_channels * image_size * image_size, 300)
        self.ip2 = nn.Linear(300, 100)
        self.ip3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.ip1(x.flatten(1)))
        x = torch.relu(self.ip2(x))
        return self.ip3(x)


class LeNet5(nn.Module):
    """Caffe's LeNet-5: conv1 20@5x5, max-pool, conv2 50@5x5, max-pool, ip1 800->500, ReLU, ip2 500->10.

    As in Caffe's lenet_train_test.prototxt, the conv layers have no non-linearity of their
    own; the only ReLU is after ip1. 430,500 weights.
    """

    layer_paths = {"conv1": "conv1", "conv2": "conv2", "ip1": "ip1", "ip2": "ip2"}
    activations = ["identity", "identity", "relu"]
    dropout_inputs: dict[str, str] = {}

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        side = ((image_size - 4) // 2 - 4) // 2
        self.ip1 = nn.Linear(50 * side * side, 500)
        self.ip2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = torch.relu(self.ip1(x.flatten(1)))
        return self.ip2(x)


def _torchvision_model(arch: str, num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision

    if pretrained:
        if num_classes != 1000:
            raise UserError(f"model.pretrained=true needs num_classes=1000 (ImageNet), got {num_classes}")
        weights = {"alexnet": torchvision.models.AlexNet_Weights.IMAGENET1K_V1,
                   "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1}[arch]
        try:
            return getattr(torchvision.models, arch)(weights=weights)
        except Exception as e:  # no network, no cache
            raise UserError(
                f"could not load torchvision's pretrained {arch} weights ({e.__class__.__name__}: {e}). "
                f"Download them once on a machine with network (they are cached under ~/.cache/torch/hub), "
                f"or pass model.checkpoint=PATH to a local state_dict."
            ) from e
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


class AlexNet(nn.Module):
    """torchvision's AlexNet with the paper's layer names conv1..conv5, fc6..fc8.

    Not the Caffe AlexNet of the paper: torchvision's has 64/192/384/256/256 conv channels
    (Caffe: 96/256/384/384/256, grouped conv2/4/5), so conv layer sizes differ from DC Table 4;
    fc6/fc7/fc8 have the paper's shapes (9216->4096->4096->1000).
    """

    layer_paths = {"conv1": "net.features.0", "conv2": "net.features.3", "conv3": "net.features.6",
                   "conv4": "net.features.8", "conv5": "net.features.10",
                   "fc6": "net.classifier.1", "fc7": "net.classifier.4", "fc8": "net.classifier.6"}
    activations = ["relu"] * 7
    dropout_inputs = {"net.classifier.0": "fc6", "net.classifier.3": "fc7"}

    def __init__(self, num_classes: int = 1000, pretrained: bool = False, **_: object):
        super().__init__()
        self.net = _torchvision_model("alexnet", num_classes, pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VGG16(nn.Module):
    """torchvision's VGG-16 (configuration D) with the paper's names conv1_1..conv5_3, fc6..fc8."""

    _convs = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
    _conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    layer_paths = {**{n: f"net.features.{i}" for n, i in zip(_convs, _conv_idx)},
                   "fc6": "net.classifier.0", "fc7": "net.classifier.3", "fc8": "net.classifier.6"}
    activations = ["relu"] * 15
    dropout_inputs = {"net.classifier.2": "fc7", "net.classifier.5": "fc8"}

    def __init__(self, num_classes: int = 1000, pretrained: bool = False, **_: object):
        super().__init__()
        self.net = _torchvision_model("vgg16", num_classes, pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


MODELS = {"lenet300": LeNet300, "lenet5": LeNet5, "alexnet": AlexNet, "vgg16": VGG16}


def build_model(name: str, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                pretrained: bool = False, checkpoint: str | None = None) -> nn.Module:
    """Instantiate a model by name; optionally start from torchvision weights or a local checkpoint."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if name in ("alexnet", "vgg16"):
        model = MODELS[name](num_classes=num_classes, pretrained=pretrained)
    else:
        if pretrained:
            raise UserError(f"model.pretrained=true exists only for alexnet and vgg16, not {name}")
        model = MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a state_dict (or a Lightning checkpoint holding one) into ``model``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"model.checkpoint={path} does not exist; give the path of a saved state_dict")
    state = torch.load(p, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"checkpoint {path} does not match the model: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """[(paper name, module, 'conv'|'fc')] in forward order."""
    out = []
    for name, path in model.layer_paths.items():
        module = model.get_submodule(path)
        kind = "conv" if isinstance(module, nn.Conv2d) else "fc"
        out.append((name, module, kind))
    return out


def param_counts(model: nn.Module) -> dict:
    """Weights and biases per paper layer and in total (weights count only weight tensors)."""
    layers = {}
    for name, module, _ in prunable_layers(model):
        w = getattr(module, "weight")
        b = getattr(module, "bias", None)
        layers[name] = {"weights": int(w.numel()), "biases": int(b.numel()) if b is not None else 0}
    weights = sum(v["weights"] for v in layers.values())
    biases = sum(v["biases"] for v in layers.values())
    return {"layers": layers, "weights": weights, "biases": biases, "total": weights + biases}
