"""Structured configs: the schema every composed config is checked against.

Types and key names are enforced by Hydra/OmegaConf when the YAML files are merged into
these dataclasses (a misspelt key fails at compose time, naming it). Ranges are checked by
``validate(cfg)``, which converts the config to these dataclasses so their
``__post_init__`` runs -- before any data is loaded or any epoch trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from experiments.errors import UserError

KINDS = ("conv", "fc")


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise UserError(f"invalid config value {key}={value!r}: {rule}")


@dataclass
class DataConf:
    _target_: str = MISSING
    name: str = MISSING
    root: Optional[str] = None
    batch_size: int = 64
    eval_batch_size: int = 1000
    val_size: int = 5000
    split_seed: int = 0
    download: bool = True
    num_workers: int = 0
    test_size: int = 1000            # mnist_sample only
    num_classes: int = 10
    image_size: int = 28
    in_channels: int = 1
    train_samples: int = 0           # fake_imagenet only
    val_samples: int = 0

    def __post_init__(self):
        for k in ("batch_size", "eval_batch_size", "val_size"):
            _check(getattr(self, k) >= 1, f"data.{k}", getattr(self, k), "must be >= 1")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, "must be >= 0")


@dataclass
class ModelConf:
    name: str = MISSING
    pretrained: bool = False          # torchvision ImageNet weights (alexnet, vgg16)
    checkpoint: Optional[str] = None  # start from a local state_dict


@dataclass
class TrainerConf:
    """Passed to ``pytorch_lightning.Trainer`` (plus max_epochs set per stage)."""
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    deterministic: bool = False
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    enable_progress_bar: bool = True
    log_every_n_steps: int = 50
    num_sanity_val_steps: int = 0
    epochs_cap: Optional[int] = None   # not a Lightning argument: caps every stage's epochs (smoke tests)

    def __post_init__(self):
        _check(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "must be >= 1")
        _check(self.epochs_cap is None or self.epochs_cap >= 1, "trainer.epochs_cap", self.epochs_cap, "must be >= 1")


@dataclass
class DenseConf:
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # cosine | step | constant
    step_size: int = 10
    gamma: float = 0.1

    def __post_init__(self):
        _check(self.epochs >= 0, "dense.epochs", self.epochs, "must be >= 0 (0 = evaluate only)")
        _check(self.lr > 0, "dense.lr", self.lr, "must be > 0")
        _check(0 <= self.momentum < 1, "dense.momentum", self.momentum, "must be in [0, 1)")
        _check(self.weight_decay >= 0, "dense.weight_decay", self.weight_decay, "must be >= 0")
        _check(self.schedule in ("cosine", "step", "constant"), "dense.schedule", self.schedule,
               "must be one of cosine, step, constant")


@dataclass
class PruneConf:
    enabled: bool = False
    method: str = "density"            # density | quality
    density: Dict[str, float] = field(default_factory=lambda: {"*": 1.0})
    quality: Dict[str, float] = field(default_factory=lambda: {"*": 0.0})
    uniform_density: Optional[float] = None  # set: every layer to this density (replaces the dict; sweeps)
    rounds: int = 1
    epochs_per_round: int = 0
    lr_scale: float = 0.1              # retraining LR = dense.lr * lr_scale (LWC: 1/10 for LeNet)
    schedule: str = "cosine"
    regularization: str = "l2"         # l2 (weight decay) | l1
    l1: float = 1e-5
    dropout_rescale: bool = True       # D_r = D_o * sqrt(C_ir / C_io)
    alternate: bool = False            # retrain fc with conv frozen, then conv with fc frozen
    remove_dead_neurons: bool = False  # also save a smaller dense model without dead units (same outputs)
    # Ours, not in the papers (0 = off = LWC's retraining): weight of a distillation term from the
    # run's own dense model during retraining, loss = (1 - a) CE + a T^2 KL(teacher_T || student_T)
    # (Hinton et al. 2015). Only the loss changes: masks, densities and the LR schedule are as above.
    distill: float = 0.0
    distill_temperature: float = 4.0
    # LWC section 3.4 ("pruning neurons"): after each pruning step also prune every connection into a
    # unit left with no outgoing connection (it cannot reach the output) and out of a unit left with
    # no incoming one (its constant output is folded into the next layer's bias). The outputs do not
    # change; the layer keeps fewer connections than its density target (the row's `density` is
    # what remains). False keeps them in the layer's budget, as runs before this option did.
    drop_dead_connections: bool = True

    def __post_init__(self):
        _check(self.method in ("density", "quality"), "prune.method", self.method, "must be density or quality")
        for k, v in self.density.items():
            _check(0 < v <= 1, f"prune.density.{k}", v, "a density must be in (0, 1]")
        for k, v in self.quality.items():
            _check(v >= 0, f"prune.quality.{k}", v, "a quality must be >= 0")
        if self.uniform_density is not None:
            _check(0 < self.uniform_density <= 1, "prune.uniform_density", self.uniform_density, "must be in (0, 1]")
        _check(self.rounds >= 1, "prune.rounds", self.rounds, "must be >= 1")
        _check(self.epochs_per_round >= 0, "prune.epochs_per_round", self.epochs_per_round, "must be >= 0")
        _check(self.lr_scale > 0, "prune.lr_scale", self.lr_scale, "must be > 0")
        _check(self.regularization in ("l1", "l2"), "prune.regularization", self.regularization, "must be l1 or l2")
        _check(0 <= self.distill <= 1, "prune.distill", self.distill, "must be in [0, 1] (0 = off)")
        _check(self.distill_temperature > 0, "prune.distill_temperature", self.distill_temperature, "must be > 0")


def _check_bits(group: str, bits: Dict[str, int], lo: int, hi: int) -> None:
    _check(all(k in bits for k in KINDS) or "*" in bits, f"{group}", dict(bits),
           "needs a value for each kind (conv, fc) or a '*' default")
    for k, v in bits.items():
        _check(lo <= v <= hi, f"{group}.{k}", v, f"must be in {lo}..{hi}")


@dataclass
class QuantizeConf:
    enabled: bool = False
    # bits per layer: a layer's own name first, then its kind (conv/fc), then '*'.
    # 0 leaves that layer unquantized (float weights; DC Fig. 7 "conv only" / "fc only" sweeps).
    bits: Dict[str, int] = field(default_factory=lambda: {"conv": 8, "fc": 5})
    init: str = "linear"               # linear | random | density
    epochs: int = 0                    # centroid fine-tuning epochs
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    # Ours, as prune.distill but for centroid fine-tuning (0 = off = DC's trained quantization).
    distill: float = 0.0
    distill_temperature: float = 4.0

    def __post_init__(self):
        _check_bits("quantize.bits", self.bits, 0, 16)
        _check(self.init in ("linear", "random", "density"), "quantize.init", self.init,
               "must be linear, random or density")
        _check(self.epochs >= 0, "quantize.epochs", self.epochs, "must be >= 0")
        _check(self.lr > 0, "quantize.lr", self.lr, "must be > 0")
        _check(0 <= self.distill <= 1, "quantize.distill", self.distill, "must be in [0, 1] (0 = off)")
        _check(self.distill_temperature > 0, "quantize.distill_temperature", self.distill_temperature, "must be > 0")


@dataclass
class EncodeConf:
    enabled: bool = False
    index_bits: Dict[str, int] = field(default_factory=lambda: {"conv": 5, "fc": 5})
    # Search each layer's gap width (2..12 bits) for the smallest Huffman-coded size instead of
    # using index_bits: fewer fillers pay for the larger gap alphabet (compression/accounting.py).
    optimize_index_bits: bool = False
    # How codebooks and biases are stored: float32 (the paper's 32-bit codebook entries) or
    # float16 (half the bytes; the decoded -- and evaluated -- model holds the rounded values).
    float_dtype: str = "float32"

    def __post_init__(self):
        _check_bits("encode.index_bits", self.index_bits, 1, 16)
        _check(self.float_dtype in ("float32", "float16"), "encode.float_dtype", self.float_dtype,
               "must be float32 or float16")


@dataclass
class LowrankConf:
    """Truncated-SVD baseline (DC Fig. 6): fc weights as U @ V keeping ``keep`` of their storage."""
    enabled: bool = False
    keep: float = 0.1                  # fraction of each fc layer's storage the factors may use
    epochs: int = 0                    # fine-tuning epochs for U and V
    lr_scale: float = 0.1              # fine-tuning LR = dense.lr * lr_scale

    def __post_init__(self):
        _check(0 < self.keep <= 1, "lowrank.keep", self.keep, "must be in (0, 1]")
        _check(self.epochs >= 0, "lowrank.epochs", self.epochs, "must be >= 0")
        _check(self.lr_scale > 0, "lowrank.lr_scale", self.lr_scale, "must be > 0")


@dataclass
class LoggerConf:
    name: str = "csv"                  # csv | tensorboard | wandb | none
    project: str = "deep-compression"
    wandb_mode: str = "offline"        # offline unless you turn it on: online

    def __post_init__(self):
        _check(self.name in ("csv", "tensorboard", "wandb", "none"), "logger.name", self.name,
               "must be csv, tensorboard, wandb or none")


@dataclass
class SensitivityConf:
    """python -m experiments.sensitivity: prune one layer at a time to each density, no retraining."""
    checkpoint: Optional[str] = None   # dense state_dict; default: train the dense stage first
    densities: List[float] = field(default_factory=lambda: [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15,
                                                             0.1, 0.08, 0.06, 0.04, 0.02, 0.01])

    def __post_init__(self):
        for d in self.densities:
            _check(0 < d <= 1, "sensitivity.densities", d, "a density must be in (0, 1]")


@dataclass
class PathsConf:
    root_dir: str = MISSING
    results_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class RunConf:
    data: DataConf = MISSING
    model: ModelConf = MISSING
    trainer: TrainerConf = field(default_factory=TrainerConf)
    logger: LoggerConf = field(default_factory=LoggerConf)
    paths: PathsConf = field(default_factory=PathsConf)
    dense: DenseConf = field(default_factory=DenseConf)
    prune: PruneConf = field(default_factory=PruneConf)
    quantize: QuantizeConf = field(default_factory=QuantizeConf)
    encode: EncodeConf = field(default_factory=EncodeConf)
    lowrank: LowrankConf = field(default_factory=LowrankConf)
    sensitivity: SensitivityConf = field(default_factory=SensitivityConf)
    experiment: str = "default"
    seed: int = 0
    run_id: Optional[str] = None       # default: a fresh id; give an old one to resume it
    write_row: bool = True
    storage_only: bool = False         # prune + quantize + encode the weights as they are: no data, no training
    tags: List[str] = field(default_factory=list)
    sweep: Optional[str] = None        # set by conf/sweep/<name>.yaml: rows go to results/sweeps/<experiment>/<sweep>/

    def __post_init__(self):
        _check(self.seed >= 0, "seed", self.seed, "must be >= 0")


def register_configs() -> None:
    ConfigStore.instance().store(name="base_config", node=RunConf)


def validate(cfg: DictConfig) -> RunConf:
    """Instantiate the schema dataclasses (running their range checks)."""
    try:
        return OmegaConf.to_object(cfg)
    except UserError:
        raise
    except Exception as e:  # OmegaConf validation errors name the key
        raise UserError(f"invalid config: {e}") from e


def per_layer(values: Dict[str, Any], name: str, kind: str, key: str) -> Any:
    """A layer's value from a dict keyed by layer name, then kind (conv/fc), then '*'."""
    for k in (name, kind, "*"):
        if k in values:
            return values[k]
    raise UserError(f"{key} has no value for layer {name} (kind {kind}); add {key}.{kind}=... or {key}.{name}=...")
