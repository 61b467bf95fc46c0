"""The pipeline: dense -> prune (iterative, retrain) -> quantize (k-means, fine-tune centroids)
-> encode (sparse format + Huffman into one file) -> decode that file -> evaluate it -> row.

``run(cfg)`` is the task function (``run.py`` is only its Hydra wrapper). Every number in
the row is measured on the test split; the validation split is what the progress bar shows
during training, and nothing here selects anything on the test split.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.utils import parametrize, prune

from compression.neurons import dead_units, drop_dead_connections
from compression.prune import current_mask, magnitude_prune, make_permanent, resolve_per_layer, schedule_densities
from compression.quantize import apply_weight_sharing, codebook_and_labels
from experiments.checkpoints import Progress, is_rank_zero, last_checkpoint, restore
from experiments.classifier import LitClassifier
from experiments.config import per_layer, validate
from experiments.errors import UserError
from experiments.models import build_model, param_counts, prunable_layers
from experiments.results import git_info, new_run_id, result_relevant, row_dir, write_row

from experiments.encode import encode_stage  # noqa: E402  (not lazily: a long run must not pick up edited code at its end)

log = logging.getLogger(__name__)
# Lightning repeats "GPU available: False ..." for every Trainer; keep warnings only.
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)

Distill = tuple  # (teacher model, loss weight, temperature): see Run.distill


class Run:
    """Everything one run needs: config, data, model, the growing row."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.conf = validate(cfg)
        ck = cfg.model.checkpoint
        if cfg.sweep and ck and not Path(ck).is_file():
            raise UserError(f"sweep {cfg.sweep!r} starts from model.checkpoint={ck}, which does not exist: run "
                            f"`python run.py +experiment={cfg.experiment}` first (it saves dense.pt and pruned.pt "
                            f"in outputs/{cfg.experiment}/default/), or pass model.checkpoint=PATH")
        self.out_dir = Path(cfg.paths.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        self.storage_only = bool(cfg.storage_only)
        if self.storage_only:  # no data at all: shapes come from the data config
            self.dm = None
            shape = dict(num_classes=cfg.data.num_classes, in_channels=cfg.data.in_channels,
                         image_size=cfg.data.image_size)
        else:
            self.dm = instantiate(cfg.data, seed=cfg.seed)
            self.dm.setup("fit")  # missing data fails here, before any training
            shape = dict(num_classes=self.dm.num_classes, in_channels=self.dm.in_channels,
                         image_size=self.dm.image_size)
        self.shape = shape
        self.model = build_model(cfg.model.name, **shape, pretrained=cfg.model.pretrained,
                                 checkpoint=cfg.model.checkpoint)
        self.layers = prunable_layers(self.model)
        self.names = [n for n, _, _ in self.layers]
        self._check_layer_keys()
        self.row = {
            "schema": 1, "experiment": cfg.experiment, "sweep": cfg.sweep, "run_id": cfg.run_id or new_run_id(),
            "model": cfg.model.name, "dataset": "none" if self.storage_only else self.dm.name, "seed": cfg.seed,
            **git_info(cfg.paths.root_dir), "storage_only": self.storage_only,
            "weights_source": "checkpoint" if cfg.model.checkpoint else
                              ("pretrained" if cfg.model.pretrained else
                               ("initialized" if self.storage_only else "trained")),
            **({"checkpoint_sha256": _sha256(cfg.model.checkpoint)} if cfg.model.checkpoint else {}),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "metrics": {}, "params": param_counts(self.model), "layers": [],
            "time_s": {}, "artifacts": {},
        }
        self.progress = Progress(self.out_dir)
        self._start_fresh_if_config_changed()
        state = None if self.progress.done("row") else self.progress.load_last()
        if state is not None:  # resume: the row so far and the model as the last finished unit left it
            git_now = {k: self.row[k] for k in ("git_commit", "git_dirty")}
            self.row = state["row"]
            self.row["resumed"] = self.row.get("resumed", 0) + 1
            if git_now["git_commit"] != self.row["git_commit"] or git_now["git_dirty"]:
                self.row["git_dirty"] = True  # code changed between the start and the resume
            restore(self.model, state["model"])
            log.info("resuming %s after unit %r", self.row["run_id"], self.progress.units[-1])

    def _start_fresh_if_config_changed(self) -> None:
        """Same command but a changed config (an edited experiment file): never resume the old run.

        A folder whose start config is unknown (checkpoints but no config.json) is not resumed either.
        """
        new_cfg = result_relevant(self.row["config"])
        if self.progress.has_anything():
            old = self.progress.started_config()
            old_cfg = None if old is None else result_relevant(old)
            if json.dumps(old_cfg, sort_keys=True, default=str) != json.dumps(new_cfg, sort_keys=True, default=str):
                moved = self.progress.archive(time.strftime("%Y%m%d-%H%M%S"))
                log.warning("%s holds a run with another config: starting a new run (old one moved to %s)",
                            self.out_dir, moved)
        if self.progress.started_config() is None:
            self.progress.start(self.row["config"])

    def _check_layer_keys(self) -> None:
        """Per-layer dicts may name only this model's layers (a typo must fail now, not after training)."""
        kinds = {"conv", "fc", "*"}
        checks = [("prune.density", self.cfg.prune.density, {"*"}), ("prune.quality", self.cfg.prune.quality, {"*"}),
                  ("quantize.bits", self.cfg.quantize.bits, kinds), ("encode.index_bits", self.cfg.encode.index_bits, kinds)]
        for key, values, extra in checks:
            unknown = sorted(set(values) - set(self.names) - extra)
            if unknown:
                raise UserError(f"{key} names unknown layer(s) {unknown}; {self.cfg.model.name} has layers "
                                f"{self.names} (or use {sorted(extra)})")

    # -- Lightning plumbing ----------------------------------------------------------------
    def lit(self, lr: float, weight_decay: float, momentum: float, schedule: str, l1: float = 0.0,
            distill: Distill | None = None) -> LitClassifier:
        d = self.cfg.dense
        teacher, weight, temperature = distill if distill is not None else (None, 0.0, 4.0)
        return LitClassifier(self.model, self.dm.num_classes, lr=lr, momentum=momentum, weight_decay=weight_decay,
                             schedule=schedule, step_size=d.step_size, gamma=d.gamma, l1=l1,
                             l1_params=[m for _, m, _ in self.layers], teacher=teacher,
                             distill=weight, temperature=temperature)

    def distill(self, group: str, epochs: int) -> Distill | None:
        """(teacher, weight, temperature) from ``<group>.distill``, or None when off or nothing trains."""
        c = self.cfg[group]
        if c.distill <= 0 or epochs <= 0:
            return None
        return self.dense_teacher(f"{group}.distill"), float(c.distill), float(c.distill_temperature)

    def dense_teacher(self, key: str = "prune.distill") -> nn.Module:
        """This run's dense model (``dense.pt``, written by the dense stage), for distillation."""
        path = self.out_dir / "dense.pt"
        if not path.is_file():
            raise UserError(f"{key} needs this run's dense weights at {path}; the dense stage writes them "
                            f"(rerun without resuming, or set {key}=0)")
        with torch.random.fork_rng(devices=[]):  # building it must not move this run's random stream
            return build_model(self.cfg.model.name, **self.shape, checkpoint=str(path))

    def trainer_kwargs(self) -> dict:
        t = OmegaConf.to_container(self.cfg.trainer, resolve=True)
        t.pop("epochs_cap", None)
        return t

    def trainer(self, stage: str, max_epochs: int) -> pl.Trainer:
        t = self.trainer_kwargs()
        cap = self.cfg.trainer.epochs_cap
        if cap:
            max_epochs = min(max_epochs, cap)
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(self.out_dir / "ckpt" / stage), save_last=True,
                                            save_top_k=0, every_n_epochs=1)
        return pl.Trainer(max_epochs=max_epochs, logger=self._logger(stage), callbacks=[ckpt],
                          default_root_dir=str(self.out_dir / stage), enable_model_summary=False, **t)

    def _logger(self, stage: str):
        lg = self.cfg.logger
        save = str(self.out_dir / "logs")
        if lg.name == "csv":
            return pl.loggers.CSVLogger(save, name=stage)
        if lg.name == "tensorboard":
            return pl.loggers.TensorBoardLogger(save, name=stage)
        if lg.name == "wandb":
            return pl.loggers.WandbLogger(project=lg.project, name=f"{self.row['run_id']}-{stage}",
                                          save_dir=save, mode=lg.wandb_mode)
        return False

    def fit(self, stage: str, epochs: int, lr: float, weight_decay: float, momentum: float,
            schedule: str, l1: float = 0.0, distill: Distill | None = None) -> None:
        if epochs <= 0:
            return
        ckpt_dir = self.out_dir / "ckpt" / stage
        self.trainer(stage, epochs).fit(self.lit(lr, weight_decay, momentum, schedule, l1, distill), datamodule=self.dm,
                                        ckpt_path=last_checkpoint(ckpt_dir))
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # the unit's snapshot supersedes it

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Top-1 (and top-5) error in percent on the test split."""
        if model is not None:
            saved, self.model = self.model, model
        try:
            lit = self.lit(1.0, 0.0, 0.0, "constant")
            t = self.trainer_kwargs()
            t["enable_progress_bar"] = False
            res = pl.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False,
                             default_root_dir=str(self.out_dir), **t).test(lit, datamodule=self.dm, verbose=False)[0]
        finally:
            if model is not None:
                self.model = saved
        out = {"top1_err": float(res["test/top1_err"])}
        if "test/top5_err" in res:
            out["top5_err"] = float(res["test/top5_err"])
        return out

    def record(self, stage: str, errs: dict[str, float]) -> None:
        for k, v in errs.items():
            self.row["metrics"][f"{stage}/{k}"] = round(v, 4)
        log.info("%s: %s", stage, ", ".join(f"{k} {v:.2f}%" for k, v in errs.items()))

    def layer_entry(self, name: str) -> dict:
        for e in self.row["layers"]:
            if e["name"] == name:
                return e
        e = {"name": name}
        self.row["layers"].append(e)
        return e


# -- stages ----------------------------------------------------------------------------------
def dense_stage(run: Run) -> None:
    d = run.cfg.dense
    run.fit("dense", d.epochs, d.lr, d.weight_decay, d.momentum, d.schedule)
    if is_rank_zero():
        torch.save(run.model.state_dict(), run.out_dir / "dense.pt")  # reusable: model.checkpoint=..., sensitivity
    run.row["artifacts"]["dense_checkpoint"] = str(run.out_dir / "dense.pt")
    run.record("dense", run.evaluate())
    run.row.setdefault("histograms", {})["dense"] = _weight_histograms(run, nonzero_only=False)
    for name, module, kind in run.layers:
        e = run.layer_entry(name)
        e.update(kind=kind, weights=int(module.weight.numel()), density=1.0)


def _rescale_dropout(run: Run, original_p: dict[str, float]) -> None:
    """LWC Eq. 2: D_r = D_o * sqrt(C_ir / C_io), C = connections of the layer the dropout feeds."""
    modules = {n: m for n, m, _ in run.layers}
    for path, layer in run.model.dropout_inputs.items():
        drop = run.model.get_submodule(path)
        m = modules[layer]
        ratio = float(current_mask(m).sum()) / m.weight.numel()
        drop.p = original_p[path] * math.sqrt(ratio)


def _set_trainable(run: Run, kinds: set[str]) -> None:
    for _, m, kind in run.layers:
        for p in m.parameters():
            p.requires_grad_(kind in kinds)


def prune_stage(run: Run) -> None:
    c, d = run.cfg.prune, run.cfg.dense
    rounds = c.rounds
    targets = prune_targets(run)
    plan = {n: schedule_densities(t, rounds) for n, t in targets.items()} if c.method == "density" else None
    original_p = {p: run.model.get_submodule(p).p for p in run.model.dropout_inputs}
    wd = d.weight_decay if c.regularization == "l2" else 0.0
    l1 = c.l1 if c.regularization == "l1" else 0.0
    phases = [{"conv", "fc"}]
    if c.alternate and any(k == "conv" for _, _, k in run.layers):
        phases = [{"fc"}, {"conv"}]  # LWC: retrain fc with conv frozen, then conv with fc frozen
    distill = run.distill("prune", c.epochs_per_round)
    run.row.setdefault("rounds", [])
    for r in range(rounds):
        if run.progress.done(f"prune_r{r + 1}"):
            continue
        prune_layers(run, {n: p[r] for n, p in plan.items()} if plan else targets)
        dropped = _drop_dead_connections(run) if c.drop_dead_connections else None
        info = {"round": r + 1,
                "density": _overall_density(run),
                "layer_density": {n: round(float(current_mask(m).float().mean()), 6) for n, m, _ in run.layers}}
        if dropped:
            info["dead_connections_dropped"] = dropped
        if c.epochs_per_round > 0:
            info["top1_err_pruned"] = round(run.evaluate()["top1_err"], 4)
            if c.dropout_rescale:
                _rescale_dropout(run, original_p)
            for kinds in phases:
                name = f"prune_r{r + 1}"
                if len(phases) > 1:
                    _set_trainable(run, kinds)
                    name += "_" + "+".join(sorted(kinds))  # each phase has its own epoch checkpoints
                run.fit(name, c.epochs_per_round, d.lr * c.lr_scale, wd, d.momentum, c.schedule, l1, distill)
            _set_trainable(run, {"conv", "fc"})
        info["top1_err_retrained" if c.epochs_per_round > 0 else "top1_err_pruned"] = \
            round(run.evaluate()["top1_err"], 4)
        log.info("prune round %d: %s", r + 1, info)
        run.row["rounds"].append(info)
        run.progress.save(f"prune_r{r + 1}", run.row, run.model)
    run.record("pruned", run.evaluate())
    _layer_report(run)
    run.row.setdefault("histograms", {})["pruned"] = _weight_histograms(run, nonzero_only=True)
    if is_rank_zero():  # the retrained sparse weights: start of the bits / init / trade-off sweeps
        torch.save(clean_state_dict(run.model), run.out_dir / "pruned.pt")
    run.row["artifacts"]["pruned_checkpoint"] = str(run.out_dir / "pruned.pt")
    if c.remove_dead_neurons:
        _export_without_dead_neurons(run)


def _export_without_dead_neurons(run: Run) -> None:
    """LWC "pruning neurons": save a physically smaller dense model with the same outputs."""
    from compression.neurons import remove_dead_units

    small, removed = remove_dead_units(clean_model_of(run.model), list(run.model.layer_paths.values()),
                                       run.model.activations)
    x, _ = next(iter(run.dm.test_dataloader()))
    ref = clean_model_of(run.model).eval()
    with torch.no_grad():
        diff = float((small.eval()(x) - ref(x)).abs().max())
    if diff > 1e-3:
        raise RuntimeError(f"dead-neuron removal changed the outputs by {diff}")
    path = run.out_dir / "pruned_neurons_removed.pt"
    torch.save(small, path)
    for (name, _, _), n in zip(run.layers, removed):
        run.layer_entry(name)["units_removed"] = n
    run.row["artifacts"]["neurons_removed_model"] = str(path)
    log.info("removed dead units %s (max output change %.2e) -> %s", removed, diff, path)


def _drop_dead_connections(run: Run) -> dict[str, int]:
    """LWC section 3.4: prune the connections of units that pruning left dead (outputs unchanged)."""
    chain = [m for _, m, _ in run.layers]
    dropped = drop_dead_connections(chain, run.model.activations)
    for (name, _, _), n in zip(run.layers, dropped):
        e = run.layer_entry(name)
        e["dead_connections_dropped"] = e.get("dead_connections_dropped", 0) + n
    return {name: n for (name, _, _), n in zip(run.layers, dropped) if n}


def _overall_density(run: Run) -> float:
    total = sum(m.weight.numel() for _, m, _ in run.layers)
    alive = sum(int(current_mask(m).sum()) for _, m, _ in run.layers)
    return round(alive / total, 6)


def quantize_stage(run: Run) -> None:
    c = run.cfg.quantize
    storage_quantize_stage(run)  # the same per-layer k-means; then centroid fine-tuning
    run.record("quantized_init", run.evaluate())  # before centroid fine-tuning
    _record_codebooks(run, "codebook_init")
    run.fit("quantize", c.epochs, c.lr, c.weight_decay, c.momentum, c.schedule, distill=run.distill("quantize", c.epochs))
    bad = [n for n, m, _ in run.layers if parametrize.is_parametrized(m, "weight")
           and not bool(torch.isfinite(m.parametrizations.weight.original).all())]
    if bad:  # DC Eq. 3 sums the gradients of every weight sharing a centroid: large steps can diverge
        raise UserError(f"centroid fine-tuning diverged: non-finite centroids in {bad}; lower quantize.lr "
                        f"(now {c.lr}) or set quantize.epochs=0")
    run.record("quantized", run.evaluate())
    _record_codebooks(run, "codebook")


def _record_codebooks(run: Run, key: str) -> None:
    """Each weight-shared layer's centroids in the row (DC Fig. 4: codebook over the weight histogram)."""
    for name, module, _ in run.layers:
        if parametrize.is_parametrized(module, "weight"):
            codebook, _, _ = codebook_and_labels(module)
            run.layer_entry(name)[key] = [round(float(v), 7) for v in codebook]


HIST_BINS = 81


def _weight_histograms(run: Run, nonzero_only: bool) -> dict:
    """Per-layer weight histogram, symmetric bins over +-max|w| (LWC Fig. 7); pruned: survivors only."""
    out = {}
    for name, module, _ in run.layers:
        w = module.weight.detach()
        if hasattr(module, "weight_mask"):  # torch prune: weight is refreshed only in forward
            w = module.weight_orig.detach() * module.weight_mask
        w = w.flatten().double()
        if nonzero_only:
            w = w[w != 0]
        top = float(w.abs().max()) if w.numel() else 1.0
        counts = torch.histc(w, bins=HIST_BINS, min=-top, max=top) if w.numel() else torch.zeros(HIST_BINS)
        edges = torch.linspace(-top, top, HIST_BINS + 1)
        out[name] = {"edges": [round(float(e), 7) for e in edges], "counts": [int(c) for c in counts]}
    return out


def _sha256(path: str) -> str | None:
    import hashlib

    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def clean_model_of(model: nn.Module) -> nn.Module:
    """A plain copy of a pruned (not weight-shared) model: masks folded into the weights."""
    import copy

    if any(parametrize.is_parametrized(m) for _, m, _ in prunable_layers(model)):
        # deepcopy shares parametrize's generated classes, so removing them would break the original
        raise ValueError("clean_model_of: weight-shared model; use clean_state_dict")
    model = copy.deepcopy(model)
    for _, module, _ in prunable_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_orig"):
            prune.remove(module, "weight")
    return model


def clean_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict a plain model would have: effective weights, no masks or parametrization internals."""
    state = {}
    paths = {path for path in model.layer_paths.values()}
    for k, v in model.state_dict().items():
        if ".parametrizations." in k or k.endswith("weight_orig") or k.endswith("weight_mask"):
            continue
        state[k] = v.detach()
    for path in paths:
        state[f"{path}.weight"] = model.get_submodule(path).weight.detach().clone()
    return state


def storage_prune_stage(run: Run) -> None:
    """Storage-only: prune once, straight to the configured densities (no data, no retraining)."""
    prune_layers(run, prune_targets(run))
    _layer_report(run)


def prune_targets(run: Run) -> dict[str, float]:
    """Each layer's final density (prune.method=density) or quality (method=quality) from the config."""
    c = run.cfg.prune
    if c.method == "density":
        if c.uniform_density is not None:
            return {n: float(c.uniform_density) for n in run.names}
        return resolve_per_layer(dict(c.density), run.names)
    return resolve_per_layer(dict(c.quality), run.names)


def prune_layers(run: Run, values: dict[str, float]) -> None:
    """Magnitude-prune every layer to ``values[name]`` (a density or a quality, per prune.method)."""
    key = "density" if run.cfg.prune.method == "density" else "quality"
    for name, module, _ in run.layers:
        magnitude_prune(module, "weight", **{key: values[name]})


def _layer_report(run: Run) -> None:
    chain = [m for _, m, _ in run.layers]
    for (name, module, kind), dead in zip(run.layers, dead_units(chain)):
        e = run.layer_entry(name)
        nz = int((module.weight != 0).sum())
        e.update(kind=kind, weights=int(module.weight.numel()), nonzeros=nz, density=nz / module.weight.numel(),
                 dead_in=dead["dead_in"], dead_out=dead["dead_out"], units=dead["units"])
    total = sum(e["weights"] for e in run.row["layers"])
    remaining = sum(e["nonzeros"] for e in run.row["layers"])
    run.row.setdefault("ratio", {})["p"] = round(total / max(remaining, 1), 4)
    if not run.storage_only:
        run.row["ratio"]["p_sparse"] = _pruned_storage_ratio(run)


def _pruned_storage_ratio(run: Run) -> float:
    """Pruning alone, stored (DC Fig. 6 "pruning only"): 32-bit values + relative index gaps
    (encode.index_bits, fillers counted) per layer, other tensors as fp32; dense model / that."""
    from compression.sparse_format import encode_relative

    bits = 0
    for name, module, kind in run.layers:
        ib = int(per_layer(run.cfg.encode.index_bits, name, kind, "encode.index_bits"))
        nonzero = (current_mask(module).flatten() != 0).to(torch.uint8).numpy()
        symbols, _ = encode_relative(nonzero, ib)
        bits += int(symbols.size) * (32 + ib)
    weights, raw = _weight_and_raw_elements(run)
    return round(4 * (weights + raw) / (math.ceil(bits / 8) + 4 * raw), 4)


def _weight_and_raw_elements(run: Run) -> tuple[int, int]:
    """Elements of the prunable weights, and of every other tensor the model stores (biases, ...)."""
    keys = {f"{p}.weight" for p in run.model.layer_paths.values()}
    raw = sum(v.numel() for k, v in clean_state_dict(run.model).items() if k not in keys)
    return sum(int(m.weight.numel()) for _, m, _ in run.layers), int(raw)


def lowrank_stage(run: Run) -> None:
    """SVD baseline (DC Fig. 6): every fc weight -> U @ V at lowrank.keep of its storage, then fine-tune."""
    from compression.lowrank import apply_low_rank

    c, d = run.cfg.lowrank, run.cfg.dense
    stored = other = 0
    for name, module, kind in run.layers:
        if kind != "fc":
            other += module.weight.numel()
            continue
        r = apply_low_rank(module, c.keep)
        m, n = module.weight.shape
        stored += r * (m + n)
        run.layer_entry(name).update(kind=kind, weights=int(m * n), rank=r, lowrank_numbers=int(r * (m + n)))
    run.record("lowrank_init", run.evaluate())
    run.fit("lowrank", c.epochs, d.lr * c.lr_scale, d.weight_decay, d.momentum, d.schedule)
    run.record("lowrank", run.evaluate())
    weights, raw = _weight_and_raw_elements(run)
    run.row.setdefault("ratio", {})["svd"] = round((weights + raw) / (stored + other + raw), 4)


def storage_quantize_stage(run: Run) -> None:
    """Per-layer k-means weight sharing (no fine-tuning): the whole stage in storage-only runs."""
    c = run.cfg.quantize
    for i, (name, module, kind) in enumerate(run.layers):
        bits = int(per_layer(c.bits, name, kind, "quantize.bits"))
        if bits == 0:  # this layer stays float (and keeps its pruning mask, if any)
            run.layer_entry(name).update(kind=kind, weights=int(module.weight.numel()), weight_bits_pq=32)
            continue
        mask = make_permanent(module) if run.cfg.prune.enabled else None
        apply_weight_sharing(module, bits, mask=mask, init=c.init, seed=run.cfg.seed + i)
        run.layer_entry(name).update(kind=kind, weights=int(module.weight.numel()), weight_bits_pq=bits)


STAGES = [("dense", dense_stage, None), ("lowrank", lowrank_stage, "lowrank"), ("prune", prune_stage, "prune"),
          ("quantize", quantize_stage, "quantize")]
STORAGE_STAGES = [("prune", storage_prune_stage, "prune"), ("quantize", storage_quantize_stage, "quantize")]


def run(cfg: DictConfig) -> dict:
    """Run every enabled stage and write the results row. Returns the row."""
    t0 = time.time()
    r = Run(cfg)
    _check_stage_combination(r)
    if r.progress.done("row"):
        log.info("run %s is complete (row written); nothing to do", r.row["run_id"])
        return r.progress.final_row()
    for stage, fn, switch in (STORAGE_STAGES if r.storage_only else STAGES):
        if (switch is not None and not cfg[switch].enabled) or r.progress.done(stage):
            continue
        t = time.time()
        fn(r)
        r.row["time_s"][stage] = round(r.row["time_s"].get(stage, 0.0) + time.time() - t, 2)
        r.progress.save(stage, r.row, r.model)
    if cfg.encode.enabled:
        t = time.time()
        encode_stage(r)
        r.row["time_s"]["encode"] = round(time.time() - t, 2)
    r.row["time_s"]["total"] = round(sum(v for k, v in r.row["time_s"].items() if k != "total"), 2)
    if cfg.write_row and is_rank_zero():
        publish(r, cfg)
    r.progress.finish(r.row)
    return r.row


def _check_stage_combination(r: Run) -> None:
    """Combinations that cannot work fail before any training."""
    cfg = r.cfg
    if r.storage_only and not cfg.encode.enabled:
        raise UserError("storage_only=true measures storage: it needs encode=huffman (and usually prune/quantize)")
    if cfg.lowrank.enabled and (cfg.prune.enabled or cfg.quantize.enabled or cfg.encode.enabled or r.storage_only):
        raise UserError("lowrank=svd is the SVD baseline on its own: use it with prune=none quantize=none encode=none")
    if cfg.encode.enabled:
        if not cfg.quantize.enabled:
            raise UserError("encode=huffman stores weight-shared layers: it needs quantize=kmeans")
        floats = [n for n, _, k in r.layers if int(per_layer(cfg.quantize.bits, n, k, "quantize.bits")) == 0]
        if floats:
            raise UserError(f"quantize.bits is 0 (unquantized) for {floats}, which encode=huffman cannot store; "
                            f"give them bits or use encode=none")


def publish(r: Run, cfg: DictConfig) -> None:
    """Move the compressed file next to the row, then write the row (both renames, in that order)."""
    staged = r.row["artifacts"].get("compressed_file")
    if staged:
        final = row_dir(cfg.paths.results_dir, cfg.experiment, cfg.sweep) / Path(staged).name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        r.row["artifacts"]["compressed_file"] = str(final)
    path = write_row(cfg.paths.results_dir, relative_paths(r.row, cfg.paths.root_dir))
    r.row["artifacts"]["row"] = str(path)


def relative_paths(obj, root: str):
    """The row names files relative to the repository, never by this machine's absolute paths."""
    root = str(root).rstrip("/")
    if isinstance(obj, dict):
        return {k: relative_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, root) for v in obj]
    if isinstance(obj, str) and root and (obj == root or obj.startswith(root + "/")):
        return obj[len(root) + 1:] or "."
    return obj

