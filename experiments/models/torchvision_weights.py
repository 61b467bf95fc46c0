"""torchvision's pretrained ImageNet weights for the models that wrap a torchvision network."""

from __future__ import annotations

from torch import nn

from experiments.errors import UserError


def load_torchvision_weights(net: nn.Module, arch: str, weights_enum: str) -> None:
    """Load torchvision's IMAGENET1K_V1 weights of ``arch`` into ``net`` (1000 classes only)."""
    import torchvision

    classes = net.classifier[-1].out_features
    if classes != 1000:
        raise UserError(f"model.pretrained=true needs num_classes=1000 (ImageNet), got {classes}")
    weights = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as e:  # no network, no cache
        raise UserError(
            f"could not load torchvision's pretrained {arch} weights ({e.__class__.__name__}: {e}). "
            f"Download them once on a machine with network (they are cached under ~/.cache/torch/hub), "
            f"or pass model.checkpoint=PATH to a local state_dict."
        ) from e
    net.load_state_dict(state)
