"""Structured configs: the schema every composed config is checked against, and what each key means.

Types and key names are enforced by Hydra/OmegaConf when the YAML files are merged into these
dataclasses. ``validate(cfg)`` turns the composed config into them (running each
``__post_init__`` range check) before any data is loaded, and refuses keys the schema lacks however
they were added (``+dense.epoch=3`` bypasses Hydra's check); the ``RunConf`` it returns is the
config every stage reads. ``run.py`` calls it through ``experiments.gate`` before the run starts.

Plug-ins are open nodes with a ``_target_`` (a class or function) and its keyword arguments:
``data``, ``model``, ``logger``, ``prune.criterion``, ``quantize.quantizer``, ``encode.coder``,
``lowrank.method``. Their keys are checked against the target's signature
(``experiments.plugins.check_plugins``).

Each field may say, in its ``metadata``, how a results row is read against this schema
(``experiments.canonical``):

* ``result=False``: the key cannot change a result (where files go, progress bars);
* ``absent=V``: what a row *without* the key did, when that differs from the default (a value,
  or a function of the row's group dict): e.g. rows from before ``prune.drop_dead_connections``
  existed kept their dead connections, so they read as ``False`` although the default is ``True``;
* ``meaningful=f``: a predicate on (the group dict, the whole config); where false the key cannot
  have mattered (a distillation temperature while distillation is off);
* ``per_layer=True``: a dict keyed by layer name, kind or ``'*'`` (compared layer by layer);
* ``ignore_keys=(...)``: keys of an open node that cannot change a result (``data.root``);
  ``own_keys=(...)``: keys of an open node the pipeline reads itself (not its target's arguments);
  ``absent_keys={key: V}``: as ``absent``, for a key of an open node.
An open node's other keys are its target's arguments: a missing one takes the target's default,
and one the target does not take cannot have mattered.
A group whose ``enabled`` is false means nothing beyond that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from compression.prune import DENSITY_SCHEDULES
from experiments.errors import UserError
from experiments.schema_keys import omegaconf_message, unknown_key_error

KINDS = ("conv", "fc", "recurrent", "embedding")  # compression.specs.KINDS (kept torch-free here)


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise UserError(f"invalid config value {key}={value!r}: {rule}")


def _meta(**kw) -> dict:
    return kw


def _plugin(target: str, **meta) -> Any:
    return field(default_factory=lambda: {"_target_": target}, metadata=meta)


def _per_layer_default(value: Any) -> Any:
    return field(default_factory=lambda: {"*": value}, metadata=_meta(per_layer=True))


def _check_per_layer(key: str, values: Dict[str, Any], ok, rule: str) -> None:
    _check(len(values) > 0, key, dict(values),
           f"a per-layer dict needs at least one entry (a layer name, a kind or '*'), e.g. '{key}={{*:...}}'; "
           f"leave {key} out to keep the experiment's values")
    for k, v in values.items():
        _check(ok(v), f"{key}.{k}", v, rule)


NOT_RESULT = _meta(result=False)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "16", "32", "64", "bf16")
SCHEDULES = ("cosine", "step", "constant")


def _limit_ok(v: Any) -> bool:
    """Lightning's limit_*_batches: a fraction of the epoch (float in [0, 1]) or a number of batches (int >= 0)."""
    if isinstance(v, bool):
        return False
    return (isinstance(v, int) and v >= 0) or (isinstance(v, float) and 0.0 <= v <= 1.0)


def _devices_ok(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return v >= 1 or v == -1
    if isinstance(v, str):
        return v == "auto" or all(p.strip().lstrip("-").isdigit() for p in v.split(",") if p.strip())
    return isinstance(v, (list, tuple)) and all(isinstance(i, int) and i >= 0 for i in v)


@dataclass
class TrainerConf:
    """Passed to ``pytorch_lightning.Trainer`` (plus max_epochs set per stage); ``epochs_cap`` and
    ``threads`` are ours, not Lightning arguments."""
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    deterministic: bool = False
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    enable_progress_bar: bool = field(default=True, metadata=NOT_RESULT)
    log_every_n_steps: int = field(default=50, metadata=NOT_RESULT)
    num_sanity_val_steps: int = 0
    epochs_cap: Optional[int] = None   # not a Lightning argument: caps every stage's epochs (smoke tests)
    # Not a Lightning argument: torch's intra- and inter-op threads and numba's for this run (0 = every
    # usable core); parallel sweep jobs divide the usable cores (experiments/pipeline/plan.py, set_threads).
    # It changes float summation order, not the recipe: the row records the counts under "machine"
    # (docs/cli.md). The default is measured (benchmarks/bench_threads.py).
    threads: int = field(default=1, metadata=NOT_RESULT)

    def __post_init__(self):
        _check(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "must be >= 1")
        _check(self.epochs_cap is None or self.epochs_cap >= 1, "trainer.epochs_cap", self.epochs_cap, "must be >= 1")
        _check(self.threads >= 0, "trainer.threads", self.threads, "must be >= 0 (0 = every usable core)")
        _check(self.accelerator in ACCELERATORS, "trainer.accelerator", self.accelerator,
               f"must be one of {', '.join(ACCELERATORS)}")
        _check(str(self.precision) in PRECISIONS, "trainer.precision", self.precision,
               f"must be one of {', '.join(PRECISIONS)}")
        _check(_devices_ok(self.devices), "trainer.devices", self.devices,
               "must be a count >= 1, -1 (all), 'auto', or a list of device indices")
        for k in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            _check(_limit_ok(getattr(self, k)), f"trainer.{k}", getattr(self, k),
                   "must be a fraction of the epoch in [0.0, 1.0] or a number of batches >= 0")
        _check(self.log_every_n_steps >= 1, "trainer.log_every_n_steps", self.log_every_n_steps, "must be >= 1")
        _check(self.num_sanity_val_steps >= -1, "trainer.num_sanity_val_steps", self.num_sanity_val_steps,
               "must be >= 0, or -1 (the whole validation set)")


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
        _check(self.schedule in SCHEDULES, "dense.schedule", self.schedule, "must be one of cosine, step, constant")
        _check(self.step_size >= 1, "dense.step_size", self.step_size, "must be >= 1")
        _check(self.gamma > 0, "dense.gamma", self.gamma, "must be > 0")


def _distilling(g: dict, _config: dict) -> bool:
    return bool(g.get("distill"))


@dataclass
class PruneConf:
    enabled: bool = False
    # Which connections go (conf/prune/criterion/*.yaml): a compression.prune.Criterion.
    criterion: Dict[str, Any] = _plugin("compression.criteria.magnitude.Magnitude")
    # How many stay: density = keep exactly round(density * weights) per layer; quality = as many as
    # LWC's rule |w| >= quality * std(w) keeps (the criterion then chooses which).
    method: str = "density"
    density: Dict[str, float] = field(default_factory=lambda: {"*": 1.0}, metadata=_meta(
        per_layer=True, meaningful=lambda g, _: g.get("method", "density") == "density" and g.get("uniform_density") is None
        and g.get("allocation") is None))
    quality: Dict[str, float] = field(default_factory=lambda: {"*": 0.0}, metadata=_meta(
        per_layer=True, meaningful=lambda g, _: g.get("method") == "quality"))
    # set: every layer to this density (replaces the dict; sweeps)
    uniform_density: Optional[float] = field(default=None, metadata=_meta(
        meaningful=lambda g, _: g.get("method", "density") == "density"))
    # set: the per-layer densities come from this plug-in (conf/prune/allocation/*.yaml), a global budget
    # of weights allocated across layers from data (compression/allocation.py), instead of the dict
    allocation: Optional[Dict[str, Any]] = field(default=None, metadata=_meta(
        meaningful=lambda g, _: g.get("method", "density") == "density"))
    # Ours: the density (or LWC's std rule) holds in each row block a layer spec declares (``blocks``: an
    # LSTM matrix's four gates) rather than over the whole tensor. Rows from before it pruned whole tensors.
    per_block: bool = field(default=False, metadata=_meta(absent=False))
    rounds: int = 1
    # How the per-round densities approach the target (method density): geometric (LWC section 3.3: the
    # same fraction of the survivors each round) or cubic (Zhu & Gupta 2017, Eq. 1). Rows from before it
    # were geometric.
    density_schedule: str = field(default="geometric", metadata=_meta(
        absent="geometric", meaningful=lambda g, _: g.get("method", "density") == "density"))
    epochs_per_round: int = 0
    lr_scale: float = 0.1              # retraining LR = dense.lr * lr_scale (LWC: 1/10 for LeNet)
    schedule: str = "cosine"
    regularization: str = "l2"         # l2 (weight decay) | l1
    # Ours: the retraining's weight decay when regularization is l2; unset, the dense stage's (LWC retrains as it
    # trained). The row-LSTM's recipe sets it alone (docs/captioning.md, "Seeds 5-9").
    weight_decay: Optional[float] = field(default=None, metadata=_meta(
        meaningful=lambda g, _: g.get("regularization", "l2") == "l2"))
    l1: float = field(default=1e-5, metadata=_meta(meaningful=lambda g, _: g.get("regularization") == "l1"))
    dropout_rescale: bool = True       # D_r = D_o * sqrt(C_ir / C_io)
    alternate: bool = False            # retrain fc with conv frozen, then conv with fc frozen
    remove_dead_neurons: bool = field(default=False, metadata=NOT_RESULT)  # also export a smaller model
    # Ours, not in the papers (0 = off = LWC's retraining): weight of a distillation term from the
    # run's own dense model during retraining, loss = (1 - a) CE + a T^2 KL(teacher_T || student_T)
    # (Hinton et al. 2015). Only the loss changes: masks, densities and the LR schedule are as above.
    distill: float = 0.0
    distill_temperature: float = field(default=4.0, metadata=_meta(meaningful=_distilling))
    # LWC section 3.4 ("pruning neurons"): after each pruning step also prune every connection into a
    # unit left with no outgoing connection (it cannot reach the output) and out of a unit left with
    # no incoming one (its constant output is folded into the next layer's bias), where the model's
    # layer specs prove it safe (compression.neurons.links). The outputs do not change; the layer keeps
    # fewer connections than its density target. Rows from before this option kept them (absent=False);
    # storage-only runs prune once and never drop them.
    drop_dead_connections: bool = field(default=True, metadata=_meta(
        absent=False, meaningful=lambda _, c: not c.get("storage_only")))

    def __post_init__(self):
        _check(self.method in ("density", "quality"), "prune.method", self.method, "must be density or quality")
        _check_per_layer("prune.density", self.density, lambda v: 0 < v <= 1, "a density must be in (0, 1]")
        _check_per_layer("prune.quality", self.quality, lambda v: v >= 0, "a quality must be >= 0")
        if self.allocation is not None:
            _check(self.method == "density" and self.uniform_density is None, "prune.allocation",
                   dict(self.allocation).get("_target_"), "chooses the densities itself: use it with prune.method=density "
                   "and without prune.uniform_density")
        if self.uniform_density is not None:
            _check(0 < self.uniform_density <= 1, "prune.uniform_density", self.uniform_density, "must be in (0, 1]")
        _check(self.rounds >= 1, "prune.rounds", self.rounds, "must be >= 1")
        _check(self.density_schedule in DENSITY_SCHEDULES, "prune.density_schedule", self.density_schedule,
               "must be one of " + ", ".join(DENSITY_SCHEDULES))
        _check(self.epochs_per_round >= 0, "prune.epochs_per_round", self.epochs_per_round, "must be >= 0")
        _check(self.lr_scale > 0, "prune.lr_scale", self.lr_scale, "must be > 0")
        _check(self.schedule in SCHEDULES, "prune.schedule", self.schedule, "must be one of cosine, step, constant")
        _check(self.regularization in ("l1", "l2"), "prune.regularization", self.regularization, "must be l1 or l2")
        _check(self.l1 >= 0, "prune.l1", self.l1, "must be >= 0")
        _check(self.weight_decay is None or self.weight_decay >= 0, "prune.weight_decay", self.weight_decay,
               "must be >= 0 (leave it unset to retrain with dense.weight_decay)")
        _check(0 <= self.distill <= 1, "prune.distill", self.distill, "must be in [0, 1] (0 = off)")
        _check(self.distill_temperature > 0, "prune.distill_temperature", self.distill_temperature, "must be > 0")


def _kmeans_of_old_rows(g: dict) -> dict:
    """Rows from before quantizers were plug-ins ran k-means with ``quantize.init``."""
    return {"_target_": "compression.quantize.KMeans", "init": g.get("init", "linear")}


@dataclass
class QuantizeConf:
    enabled: bool = False
    # Weight sharing per layer (conf/quantize/quantizer/*.yaml): codebook + assignments, DC section 3.
    quantizer: Dict[str, Any] = field(default_factory=lambda: {"_target_": "compression.quantize.KMeans"},
                                      metadata=_meta(absent=_kmeans_of_old_rows, ignore_keys=("progress",)))
    # bits per layer: a layer's own name first, then its kind, then '*'.
    # 0 leaves that layer unquantized (float weights; DC Fig. 7 "conv only" / "fc only" sweeps).
    bits: Dict[str, int] = field(default_factory=lambda: {"conv": 8, "fc": 5}, metadata=_meta(per_layer=True))
    epochs: int = 0                    # centroid fine-tuning epochs
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    # Ours, as prune.distill but for centroid fine-tuning (0 = off = DC's trained quantization).
    distill: float = 0.0
    distill_temperature: float = field(default=4.0, metadata=_meta(meaningful=_distilling))

    def __post_init__(self):
        _check_per_layer("quantize.bits", self.bits, lambda v: 0 <= v <= 16, "must be in 0..16 (0 = unquantized)")
        _check(self.epochs >= 0, "quantize.epochs", self.epochs, "must be >= 0")
        _check(self.lr > 0, "quantize.lr", self.lr, "must be > 0")
        _check(0 <= self.momentum < 1, "quantize.momentum", self.momentum, "must be in [0, 1)")
        _check(self.weight_decay >= 0, "quantize.weight_decay", self.weight_decay, "must be >= 0")
        _check(self.schedule in SCHEDULES, "quantize.schedule", self.schedule, "must be one of cosine, step, constant")
        _check(0 <= self.distill <= 1, "quantize.distill", self.distill, "must be in [0, 1] (0 = off)")
        _check(self.distill_temperature > 0, "quantize.distill_temperature", self.distill_temperature, "must be > 0")


@dataclass
class EncodeConf:
    enabled: bool = False
    # Entropy coder of both streams (conf/encode/coder/*.yaml); the file records which one wrote them.
    coder: Dict[str, Any] = _plugin("compression.coders.huffman.Huffman")
    index_bits: Dict[str, int] = field(default_factory=lambda: {"conv": 5, "fc": 5}, metadata=_meta(per_layer=True))
    # Search each layer's gap width (2..12 bits) for the smallest coded size instead of using
    # index_bits: fewer fillers pay for the larger gap alphabet (compression/accounting.py).
    optimize_index_bits: bool = False
    # How codebooks and biases are stored: float32 (the paper's 32-bit codebook entries) or
    # float16 (half the bytes; the decoded -- and evaluated -- model holds the rounded values).
    float_dtype: str = "float32"

    def __post_init__(self):
        _check_per_layer("encode.index_bits", self.index_bits, lambda v: 1 <= v <= 16, "must be in 1..16")
        _check(self.float_dtype in ("float32", "float16"), "encode.float_dtype", self.float_dtype,
               "must be float32 or float16")


@dataclass
class LowrankConf:
    """Low-rank baseline (DC Fig. 6 "SVD"): fc weights factored, keeping ``keep`` of their storage."""
    enabled: bool = False
    method: Dict[str, Any] = _plugin("compression.lowrank.TruncatedSVD")
    keep: float = 0.1                  # fraction of each fc layer's storage the factors may use
    epochs: int = 0                    # fine-tuning epochs for the factors
    lr_scale: float = 0.1              # fine-tuning LR = dense.lr * lr_scale

    def __post_init__(self):
        _check(0 < self.keep <= 1, "lowrank.keep", self.keep, "must be in (0, 1]")
        _check(self.epochs >= 0, "lowrank.epochs", self.epochs, "must be >= 0")
        _check(self.lr_scale > 0, "lowrank.lr_scale", self.lr_scale, "must be > 0")


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


def _model_of_old_rows(g: dict) -> str | None:
    """Rows from before models were plug-ins named the model only; these are the classes meant."""
    from compression.architecture import LEGACY_TARGETS

    return LEGACY_TARGETS.get(g.get("name"))


def _check_data(data: Dict[str, Any]) -> None:
    for k in ("batch_size", "eval_batch_size", "val_size"):
        if k in data:
            _check(isinstance(data[k], int) and data[k] >= 1, f"data.{k}", data[k], "must be an integer >= 1")
    if "num_workers" in data:
        _check(isinstance(data["num_workers"], int) and data["num_workers"] >= 0, "data.num_workers",
               data["num_workers"], "must be an integer >= 0")


@dataclass
class RunConf:
    # The datamodule (conf/data/*.yaml): _target_, name (the rows' "dataset") and its arguments.
    data: Dict[str, Any] = field(default=MISSING, metadata=_meta(ignore_keys=("root", "download", "num_workers"),
                                                                 own_keys=("name",)))
    # The network (conf/model/*.yaml): _target_, name (the rows' "model"), pretrained, checkpoint, and
    # its constructor's arguments (experiments/models/__init__.py).
    model: Dict[str, Any] = field(default_factory=lambda: {"pretrained": False, "checkpoint": None}, metadata=_meta(
        ignore_keys=("checkpoint",), own_keys=("name", "pretrained"),
        absent_keys={"_target_": _model_of_old_rows, "pretrained": False}))
    # The LightningModule the stages train and evaluate with (conf/task/*.yaml): its loss and test metrics.
    task: Dict[str, Any] = _plugin("experiments.classifier.LitClassifier")
    trainer: TrainerConf = field(default_factory=TrainerConf)
    # A Lightning logger class, called with save_dir= and name= per stage; {} = no logger.
    logger: Dict[str, Any] = field(default_factory=dict, metadata=NOT_RESULT)
    paths: PathsConf = field(default_factory=PathsConf, metadata=NOT_RESULT)
    dense: DenseConf = field(default_factory=DenseConf)
    prune: PruneConf = field(default_factory=PruneConf)
    quantize: QuantizeConf = field(default_factory=QuantizeConf)
    encode: EncodeConf = field(default_factory=EncodeConf)
    lowrank: LowrankConf = field(default_factory=LowrankConf)
    sensitivity: SensitivityConf = field(default_factory=SensitivityConf, metadata=NOT_RESULT)
    experiment: str = field(default="default", metadata=NOT_RESULT)
    seed: int = 0
    run_id: Optional[str] = field(default=None, metadata=NOT_RESULT)  # default: a fresh id
    write_row: bool = field(default=True, metadata=NOT_RESULT)
    # prune + quantize + encode the weights as they are: no data, no training (a kind of row, not a setting)
    storage_only: bool = field(default=False, metadata=NOT_RESULT)
    tags: List[str] = field(default_factory=list, metadata=NOT_RESULT)
    # set by conf/sweep/<name>.yaml: rows go to results/sweeps/<experiment>/<sweep>/
    sweep: Optional[str] = field(default=None, metadata=NOT_RESULT)

    def __post_init__(self):
        _check(self.seed >= 0, "seed", self.seed, "must be >= 0")
        for group in ("data", "model"):
            node = getattr(self, group)
            for k in ("_target_", "name"):
                _check(isinstance(node.get(k), str) and node.get(k), f"{group}.{k}", node.get(k),
                       f"conf/{group}/<name>.yaml must set {k}")
        _check_data(self.data)


def run_key(override_dirname: str) -> str:
    """The run folder name (conf/hydra/default.yaml): the command's overrides, so re-running the same
    command resumes it."""
    import hashlib

    key = (override_dirname or "default").replace("/", "_")
    if len(key) > 80:
        key = key[:60] + "-" + hashlib.sha1(key.encode()).hexdigest()[:10]
    return key


def register_configs() -> None:
    """The schema, and the ``run_key`` resolver the config files name run folders with (every Hydra
    entry point: run.py, experiments.sensitivity)."""
    ConfigStore.instance().store(name="base_config", node=RunConf)
    OmegaConf.register_new_resolver("run_key", run_key, replace=True)


def validate(cfg: DictConfig) -> RunConf:
    """Instantiate the schema dataclasses (running their range checks); keys the schema lacks are errors."""
    err = unknown_key_error(RunConf, cfg)
    if err is not None:
        raise err
    try:
        return OmegaConf.to_object(cfg)
    except UserError:
        raise
    except Exception as e:  # OmegaConf validation errors name the key
        raise UserError(f"invalid config: {omegaconf_message(e)}") from None
