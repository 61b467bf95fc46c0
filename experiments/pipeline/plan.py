"""A run's plan: its config, data module, model and layer specs, and plug-ins, checked -- every check a
run makes before it writes anything or trains. ``Run`` (``context.py``) is a Plan that then runs; the
gate (``experiments.gate``) makes one on the meta device before Hydra creates the run folder, and the
run takes over the data module the gate set up instead of loading it again."""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from compression.architecture import ArchitectureError, build, model_class
from compression.specs import LayerSpec, SpecError, module_of, per_layer, specs_of, unknown_keys
from experiments.canonical import _arguments
from experiments.config import RunConf, validate
from experiments.errors import UserError
from experiments.models import architecture_of, build_model
from experiments.plugins import build_all
from experiments.results import jobs_at_once, thread_share

log = logging.getLogger(__name__)

# Data modules the gate set up in this process, by config: the run takes its own instead of loading twice.
_checked_data: dict[str, Any] = {}


def forget_checked_data() -> None:
    _checked_data.clear()


def _data_key(cfg: DictConfig, seed: int) -> str:
    return json.dumps([OmegaConf.to_container(cfg.data, resolve=True), seed], sort_keys=True, default=str)


def sweep_jobs_at_once() -> int:
    """Sweep jobs running at once beside this one (the joblib launcher's n_jobs); 1 outside a sweep."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or "MULTIRUN" not in str(HydraConfig.get().mode):
        return 1
    return jobs_at_once(OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=None))


def set_threads(requested: int, parallel_jobs: int = 1) -> dict[str, int]:
    """Size torch's intra- and inter-op pools and numba's to ``trainer.threads`` (0 = every usable core),
    sharing the usable cores with parallel sweep jobs. Torch's default, one spinning thread per core, is
    what makes a run several times slower beside one other busy process (benchmarks/bench_threads.py)."""
    n = thread_share(requested, parallel_jobs)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # once per process, before inter-op work: an in-process sweep's later jobs
        pass
    out = {"requested": int(requested), "parallel_jobs": int(parallel_jobs), "torch": torch.get_num_threads(),
           "torch_interop": torch.get_num_interop_threads()}
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        out["numba"] = numba.get_num_threads()
    else:  # sizes numba's pool when something imports it
        os.environ["NUMBA_NUM_THREADS"] = str(n)
        out["numba"] = n
    return out


_LIGHTNING_KEYS = ("accelerator", "devices", "strategy", "num_nodes", "precision")


def _check_logger_keys(logger: dict) -> None:
    """A logger's keys are arguments of its class (save_dir and name are the run's); where its constructor
    passes unknown keys on (``**kwargs``), its own checks come when it first logs."""
    target = logger.get("_target_") if logger else None
    if not isinstance(target, str):
        return
    module, _, name = target.rpartition(".")
    try:
        init = inspect.signature(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        raise UserError(f"logger._target_={target}: cannot import it ({e})") from None
    if any(p.kind is p.VAR_KEYWORD for p in init.parameters.values()):
        return
    for k in logger:
        if k != "_target_" and k not in init.parameters:
            raise UserError(f"unknown config key logger.{k}: {target} takes "
                            f"{', '.join(p for p in init.parameters if p not in ('save_dir', 'name'))}")


def _model_error(model: dict, e: Exception) -> str:
    msg = str(e)
    if "unexpected keyword argument" in msg and "'" in msg:
        bad = msg.split("'")[1]
        args = _arguments(model["_target_"]) or {}
        return f"unknown config key model.{bad}: {model['_target_']} takes {', '.join(args) or 'no arguments'}"
    return f"model ({model.get('_target_')}): {msg}"


def _check_data_keys(data: dict) -> None:
    """Every key of the data node is an argument of its class, one the pipeline reads, or a restatement of
    a class attribute (``num_classes: 1000``): a key the data module swallows would silently do nothing."""
    target = data.get("_target_")
    args = _arguments(target) if isinstance(target, str) else None
    if args is None:
        return
    meta = RunConf.__dataclass_fields__["data"].metadata
    known = set(args) | set(meta.get("own_keys", ())) | set(meta.get("ignore_keys", ())) | {"_target_"}
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name, None)
    for k, v in data.items():
        if k in known:
            continue
        if cls is not None and hasattr(cls, k) and getattr(cls, k) == v:
            continue
        close = difflib.get_close_matches(k, list(args), n=3)
        raise UserError(f"unknown config key data.{k} (value {v!r}): {target} does not take it"
                        + (f" (did you mean {' or '.join('data.' + c for c in close)}?)" if close else
                           f"; it takes {', '.join(sorted(args))}"))


class Plan:
    """A run's validated config, data module, model and layer specs, and plug-ins: every check a run
    makes before it writes anything or trains. ``meta=True`` (the gate) builds the model on the meta
    device without loading weights; ``check_data=False`` leaves the data files to the run."""

    def __init__(self, cfg: DictConfig, meta: bool = False, check_data: bool = True):
        self.cfg = cfg
        self.conf = conf = validate(cfg)
        ck = conf.model.get("checkpoint")
        if conf.sweep and ck and not Path(ck).is_file():
            raise UserError(f"sweep {conf.sweep!r} starts from model.checkpoint={ck}, which does not exist: run "
                            f"`python run.py +experiment={conf.experiment}` first (it saves dense.pt and pruned.pt "
                            f"in outputs/{conf.experiment}/default/), or pass model.checkpoint=PATH")
        self.threads = set_threads(conf.trainer.threads, sweep_jobs_at_once())
        if not meta:
            pl.seed_everything(conf.seed, workers=True, verbose=False)
        self.storage_only = bool(conf.storage_only)
        self.dm = self._datamodule(meta, check_data)
        self.shape = dict(num_classes=self.dm.num_classes, in_channels=self.dm.in_channels,
                          image_size=self.dm.image_size)
        self.model = self._meta_model() if meta else self._model()
        self.specs: list[LayerSpec] | None = None
        if self.model is not None:
            try:
                self.specs = specs_of(self.model)
            except SpecError as e:
                raise UserError(str(e)) from None
            self.names = [s.name for s in self.specs]
            self._check_layer_keys()
        self.plugins = build_all(conf)  # criterion, quantizer, coder, low-rank method: arguments checked now
        criterion = self.plugins.get("prune.criterion")
        if conf.prune.enabled and conf.prune.per_block and not getattr(criterion, "per_block", False):
            raise UserError(f"prune.per_block=true: the criterion {type(criterion).__name__} prunes whole tensors "
                            "only; use prune/criterion=magnitude or drop prune.per_block")
        if "prune.allocation" in self.plugins and self.specs is not None:  # its densities, for this model's layers
            try:
                self.plugins["prune.allocation"].densities(self.layer_sizes())
            except ValueError as e:
                raise UserError(f"prune.allocation: {e}") from None
        _check_logger_keys(conf.logger)
        if meta and check_data:
            self._check_trainer()

    def _check_trainer(self) -> None:
        """Lightning's own checks of the trainer's arguments (strategy, accelerator present, devices): a
        Trainer is built and dropped, nothing trained or written. Left to the job on a cluster's login node."""
        t = {k: v for k, v in OmegaConf.to_container(self.cfg.trainer, resolve=True).items()
             if k not in ("epochs_cap", "threads")}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
                           default_root_dir=tmp, **t)
        except Exception as e:
            raise UserError(f"trainer ({', '.join(f'{k}={v}' for k, v in t.items() if k in _LIGHTNING_KEYS)}): "
                            f"{str(e).strip().splitlines()[0]}") from None

    def _datamodule(self, meta: bool, check_data: bool):
        """The data module, set up: missing or bad files fail here, before any training (storage-only runs
        read only its shape). One the gate set up in this process is taken over, not loaded again."""
        cfg, conf = self.cfg, self.conf
        _check_data_keys(OmegaConf.to_container(cfg.data, resolve=True))
        key = _data_key(cfg, conf.seed)
        dm = _checked_data.get(key) if meta else _checked_data.pop(key, None)
        if dm is not None:
            return dm
        try:
            dm = instantiate(cfg.data, seed=conf.seed)
        except UserError:
            raise
        except Exception as e:  # Hydra wraps a target it cannot import and the constructor's own errors
            while e.__cause__ is not None:
                e = e.__cause__
            raise UserError(f"data._target_={conf.data.get('_target_')}: {type(e).__name__}: "
                            f"{str(e).strip().splitlines()[-1]}") from None
        if self.storage_only or not check_data:
            return dm
        if meta and callable(getattr(dm, "check", None)):
            dm.check()  # a large dataset: a quick look at its files, without loading them
            return dm
        dm.setup("fit")
        if meta:
            _checked_data[key] = dm
        return dm

    def _model(self) -> nn.Module:
        try:
            return build_model(self.conf.model, self.shape)
        except (ArchitectureError, TypeError) as e:
            raise UserError(_model_error(self.conf.model, e)) from None

    def _meta_model(self) -> nn.Module | None:
        """The network's structure (layer names and kinds) without its weights: no memory, no download."""
        m = self.conf.model
        try:
            cls = model_class(m["_target_"])
        except ArchitectureError as e:
            raise UserError(f"model._target_={m['_target_']}: {e}") from None
        if m.get("pretrained") and not hasattr(cls, "load_pretrained"):
            raise UserError(f"model.pretrained=true: {m['_target_']} has no published weights "
                            "(no load_pretrained()); use model.checkpoint=PATH")
        ck = m.get("checkpoint")
        if ck and not Path(ck).is_file():
            raise UserError(f"model.checkpoint={ck} does not exist; give the path of a saved state_dict")
        try:
            with torch.device("meta"):
                return build(architecture_of(m, self.shape))
        except TypeError as e:
            raise UserError(_model_error(m, e)) from None
        except Exception as e:  # a model that cannot be built without real tensors: the run checks it
            log.debug("no meta-device model for the gate (%s); the run checks its layer names", e)
            return None

    def layer_sizes(self) -> dict[str, int]:
        """Each compressible tensor's number of weights (meta-device models have shapes too)."""
        return {s.name: getattr(module_of(self.model, s), s.param).numel() for s in self.specs}

    def per_layer_dicts(self) -> list[tuple[str, dict]]:
        """The per-layer dicts this run reads: (config key, values)."""
        c = self.conf
        out = []
        if c.prune.enabled and c.prune.method == "density" and c.prune.uniform_density is None \
                and c.prune.allocation is None:
            out.append(("prune.density", c.prune.density))
        if c.prune.enabled and c.prune.method == "quality":
            out.append(("prune.quality", c.prune.quality))
        if c.quantize.enabled:
            out.append(("quantize.bits", c.quantize.bits))
        if c.encode.enabled or (c.prune.enabled and not self.storage_only):
            out.append(("encode.index_bits", c.encode.index_bits))
        return out

    def _check_layer_keys(self) -> None:
        """Per-layer dicts name only this model's layers or kinds, and give every layer a value
        (a typo must fail now, not after training)."""
        for key, values in self.per_layer_dicts():
            bad = unknown_keys(values, self.specs)
            if bad:
                raise UserError(f"{key} names unknown layer(s) {bad}; {self.conf.model['name']} has layers "
                                f"{self.names} (or use a kind: conv, fc, recurrent, embedding, or '*')")
            for s in self.specs:
                self.value(key, s)

    def value(self, key: str, spec: LayerSpec):
        """A per-layer setting (``prune.density``, ``quantize.bits``, ...) for one layer: name, kind, '*'."""
        group, name = key.split(".")
        try:
            return per_layer(getattr(getattr(self.conf, group), name), spec, key)
        except KeyError as e:
            raise UserError(e.args[0]) from None
