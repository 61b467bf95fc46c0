"""Evaluate a compressed model file on a dataset's test split.

    python -m experiments.evaluate FILE.dcz data=fashion_mnist [data.root=...]

The model is rebuilt from the file alone (its header names the architecture), the weights
are decoded from its bitstreams, and top-1 / top-5 error in percent is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from compression.container import CompressedFileError
from experiments.errors import UserError
from experiments.results import metric_text


@torch.no_grad()
def test_errors(model: torch.nn.Module, loader, num_classes: int) -> dict[str, float]:
    model.eval()
    n = top1 = top5 = 0
    for x, y in loader:
        logits = model(x)
        top1 += int((logits.argmax(1) == y).sum())
        if num_classes > 5:
            top5 += int((logits.topk(5, dim=1).indices == y[:, None]).any(1).sum())
        n += y.numel()
    out = {"top1_err": 100.0 * (1 - top1 / n)}
    if num_classes > 5:
        out["top5_err"] = 100.0 * (1 - top5 / n)
    return out


def _config_error(e: Exception) -> str:
    """Hydra's composition error in one or two lines (no traceback), with the options it offers."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    options = getattr(e, "options", None)
    if lines and options:
        return f"{lines[0]}; options: {', '.join(sorted(options))}"
    return " ".join(lines[:2]) if lines else type(e).__name__


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from compression.architecture import decode_model
    from experiments.config import register_configs

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from compression.container import inspect

    path, overrides = argv[0], argv[1:]
    try:
        inspect(path, decode=False)  # a missing or damaged file is named before anything else
        register_configs()
        conf_dir = str(Path(__file__).resolve().parents[1] / "conf")
        with initialize_config_dir(version_base="1.3", config_dir=conf_dir):
            cfg = compose(config_name="config", overrides=[f"paths.root_dir={Path.cwd()}", "paths.output_dir=.",
                                                           "paths.results_dir=results", *overrides])
        dm = instantiate(cfg.data)
        dm.setup("test")
        model = decode_model(path)
        errs = test_errors(model, dm.test_dataloader(), dm.num_classes)
    except (HydraException, OmegaConfBaseException) as e:
        print(f"error: {_config_error(e)}", file=sys.stderr)
        return 2
    except (UserError, CompressedFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or path}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"{path} on {dm.name} test split ({len(dm.test_set)} images):")
    print("  " + ", ".join(f"{k} {metric_text(k, v)}" for k, v in errs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
