"""The run context every stage works on: config, data, model and its layer specs, trainer factory,
and the growing results row. Its checked part, made before anything is written, is ``plan.Plan``."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from compression.specs import LayerSpec, module_of
from experiments.analysis.stats import pack_correct
from experiments.canonical import same_result_config
from experiments.checkpoints import Progress, last_checkpoint, restore
from experiments.errors import UserError
from experiments.models import build_model
from experiments.models.state import param_counts
from experiments.pipeline.plan import Plan
from experiments.results import git_info, machine_info, metric_text, new_run_id

log = logging.getLogger(__name__)
# Lightning repeats "GPU available: False ..." for every Trainer; keep warnings only.
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
# Lightning 2.5 builds torch's deprecated LeafSpec in its own pytree helper at every step: the warning
# is about Lightning's code, not ours, and printed on every run it would teach users to ignore warnings.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning,
                        module=r"pytorch_lightning\.utilities\._pytree")

Distill = tuple  # (teacher model, loss weight, temperature): see Run.distill


def _gpus() -> list[str]:
    try:
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else []
    except Exception:  # a broken driver must not stop a CPU run
        return []


class Run(Plan):
    """Everything one run needs. ``conf`` is the validated, typed config the stages read."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        conf = self.conf
        ck = conf.model.get("checkpoint")
        self.out_dir = Path(conf.paths.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.row = {
            "schema": 1, "experiment": conf.experiment, "sweep": conf.sweep, "run_id": conf.run_id or new_run_id(),
            "model": conf.model["name"], "dataset": "none" if self.storage_only else self.dm.name, "seed": conf.seed,
            **git_info(conf.paths.root_dir), "storage_only": self.storage_only,
            "weights_source": "checkpoint" if ck else
                              ("pretrained" if conf.model.get("pretrained") else
                               ("initialized" if self.storage_only else "trained")),
            **({"checkpoint_sha256": _sha256(ck)} if ck else {}),
            "machine": self.machine(),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "metrics": {}, "params": param_counts(self.model, self.specs), "layers": [],
            "time_s": {}, "artifacts": {},
        }
        self._clock: tuple[str, float] | None = None  # (stage, its start time as time.time())
        self.progress = Progress(self.out_dir)
        self._start_fresh_if_config_changed()
        state = None if self.progress.done("row") else self.progress.load_last()
        if state is not None:  # resume: the row so far and the model as the last finished unit left it
            git_now = {k: self.row[k] for k in ("git_commit", "git_dirty")}
            self.row = state["row"]
            self.row["resumed"] = self.row.get("resumed", 0) + 1
            if git_now["git_commit"] != self.row["git_commit"] or git_now["git_dirty"]:
                self.row["git_dirty"] = True  # code changed between the start and the resume
            here = self.machine()
            if _same_machine(self.row.get("machine"), here) is False:  # resumed elsewhere: both shaped the numbers
                self.row.setdefault("machine_resumed", []).append(here)
            restore(self.model, self.specs, state["model"])
            log.info("resuming %s after unit %r", self.row["run_id"], self.progress.units[-1])

    def _start_fresh_if_config_changed(self) -> None:
        """Same command but a changed config (an edited experiment file): never resume the old run.

        A folder whose start config is unknown (checkpoints but no config.json) is not resumed either.
        """
        if self.progress.has_anything():
            old = self.progress.started_config()
            if old is None or not same_result_config(old, self.row["config"]):
                moved = self.progress.archive(time.strftime("%Y%m%d-%H%M%S"))
                log.warning("%s holds a run with another config: starting a new run (old one moved to %s)",
                            self.out_dir, moved)
        if self.progress.started_config() is None:
            self.progress.start(self.row["config"])

    def machine(self) -> dict:
        """What shapes this run's numbers beyond its config (docs/cli.md): threads, CPU, GPUs, versions."""
        m = machine_info(self.threads, _gpus())
        m["versions"]["torch"] = torch.__version__  # the build (+cpu, +cu130), not only the release
        return m

    # -- the stage clock: row["time_s"] is what an uninterrupted run would have spent ------------
    def start_clock(self, stage: str) -> None:
        """Time ``stage`` on from what its saved units already spent (a resumed stage keeps that time)."""
        self._clock = (stage, time.time() - self.row["time_s"].get(stage, 0.0))

    def elapsed(self) -> float:
        return time.time() - self._clock[1] if self._clock else 0.0

    def set_elapsed(self, seconds: float) -> None:
        """A resumed epoch checkpoint's time: the work after it is redone, the work before it is not."""
        if self._clock:
            self._clock = (self._clock[0], time.time() - seconds)

    def clock_into_row(self) -> None:
        """The running stage's time so far into the row (before a unit of it is saved, and at its end)."""
        if self._clock:
            self.row["time_s"][self._clock[0]] = round(self.elapsed(), 2)

    def modules(self) -> list[tuple[LayerSpec, nn.Module]]:
        return [(s, module_of(self.model, s)) for s in self.specs]

    # -- Lightning plumbing ----------------------------------------------------------------
    def lit(self, lr: float, weight_decay: float, momentum: float, schedule: str, l1: float = 0.0,
            distill: Distill | None = None) -> pl.LightningModule:
        """The task's LightningModule (``task``, conf/task/*.yaml; classification: LitClassifier) around the
        model, with this stage's optimizer settings."""
        d = self.conf.dense
        teacher, weight, temperature = distill if distill is not None else (None, 0.0, 4.0)
        return instantiate(self.conf.task, model=self.model, num_classes=self.dm.num_classes, lr=lr, momentum=momentum,
                           weight_decay=weight_decay, schedule=schedule, step_size=d.step_size, gamma=d.gamma, l1=l1,
                           l1_tensors=[(m, s.param) for s, m in self.modules()], teacher=teacher,
                           distill=weight, temperature=temperature, _recursive_=False)

    @property
    def headline(self) -> str:
        """The task's main test metric (``top1_err`` for classification): what each pruning round reports."""
        return getattr(get_class(self.conf.task["_target_"]), "headline", "top1_err")

    def distill(self, group: str, epochs: int) -> Distill | None:
        """(teacher, weight, temperature) from ``<group>.distill``, or None when off or nothing trains."""
        c = getattr(self.conf, group)
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
            return build_model({**self.conf.model, "pretrained": False, "checkpoint": str(path)}, self.shape)

    def trainer_kwargs(self) -> dict:
        t = OmegaConf.to_container(self.cfg.trainer, resolve=True)
        t.pop("epochs_cap", None)  # ours, not Lightning's
        t.pop("threads", None)
        return t

    def trainer(self, stage: str, max_epochs: int) -> pl.Trainer:
        cap = self.conf.trainer.epochs_cap
        if cap:
            max_epochs = min(max_epochs, cap)
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(self.out_dir / "ckpt" / stage), save_last=True,
                                            save_top_k=0, every_n_epochs=1)
        return pl.Trainer(max_epochs=max_epochs, logger=self._logger(stage), callbacks=[ckpt, _StageClock(self)],
                          default_root_dir=str(self.out_dir / stage), enable_model_summary=False,
                          **self.trainer_kwargs())

    def _logger(self, stage: str):
        """The configured logger class (conf/logger/*.yaml) for one stage; False when none is configured."""
        node = self.conf.logger
        if not node:
            return False
        return instantiate(node, save_dir=str(self.out_dir / "logs"), name=stage)

    def fit(self, stage: str, epochs: int, lr: float, weight_decay: float, momentum: float,
            schedule: str, l1: float = 0.0, distill: Distill | None = None) -> None:
        if epochs <= 0:
            return
        ckpt_dir = self.out_dir / "ckpt" / stage
        self.trainer(stage, epochs).fit(self.lit(lr, weight_decay, momentum, schedule, l1, distill), datamodule=self.dm,
                                        ckpt_path=last_checkpoint(ckpt_dir))
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # the unit's snapshot supersedes it

    def evaluate(self, model: nn.Module | None = None, val: bool = False) -> dict[str, float]:
        """The task's test metrics (classification: top-1 and top-5 error in percent) on the test split.

        ``val``: also measure them on the validation split, for ``record`` to put in the row beside the test
        numbers (``<stage>/val_<metric>``): what hyper-parameters and variants are chosen on."""
        if model is not None:
            saved, self.model = self.model, model
        try:
            lit = self.lit(1.0, 0.0, 0.0, "constant")
            trainer = self._eval_trainer()
            res = trainer.test(lit, datamodule=self.dm, verbose=False)[0]
            self._val = None
            if val and _has_val_split(self.dm):
                self._val = self._validate(trainer, lit)
        finally:
            if model is not None:
                self.model = saved
        out = {k.removeprefix("test/"): float(v) for k, v in res.items() if k.startswith("test/")}
        # per-example correctness, in the test split's order (one process: under DDP each rank sees a shard)
        correct = getattr(lit, "test_correct", None)
        self._correct = torch.cat(correct).numpy() if correct and _single_process() else None
        return out

    def validation_headline(self, model: nn.Module) -> float:
        """``model``'s headline metric (``top1_err``) on the validation split alone: what a plug-in that
        chooses during training (soft weight-sharing's ``keep_best``) measures. The test split is not read."""
        if not _has_val_split(self.dm):
            raise UserError(f"{type(self.dm).__name__} has no validation split to choose on")
        saved, self.model = self.model, model
        try:
            return self._validate(self._eval_trainer(), self.lit(1.0, 0.0, 0.0, "constant"))[self.headline]
        finally:
            self.model = saved

    def _validate(self, trainer: pl.Trainer, lit: pl.LightningModule) -> dict[str, float]:
        """The task's metrics on the validation split, without the ``val/`` prefix."""
        with torch.random.fork_rng(devices=[]):  # a loader draws its seed: leave the run's stream as it was
            got = trainer.validate(lit, datamodule=self.dm, verbose=False)[0]
        return {k.removeprefix("val/"): float(v) for k, v in got.items() if k.startswith("val/")}

    def _eval_trainer(self) -> pl.Trainer:
        t = self.trainer_kwargs()
        t["enable_progress_bar"] = False
        return pl.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False,
                          default_root_dir=str(self.out_dir), **t)

    def record(self, stage: str, errs: dict[str, float]) -> None:
        """The stage's errors into the row, with which test examples its model got right (a bitset)."""
        for k, v in errs.items():
            self.row["metrics"][f"{stage}/{k}"] = round(v, 4)
        for k, v in (getattr(self, "_val", None) or {}).items():  # evaluate(val=True): the validation split's
            self.row["metrics"][f"{stage}/val_{k}"] = round(v, 4)
        self._val = None
        if getattr(self, "_correct", None) is not None:
            self.row.setdefault("correct", {})[stage] = pack_correct(self._correct)
            self._correct = None
        log.info("%s: %s", stage, ", ".join(f"{k} {metric_text(k, v)}" for k, v in errs.items()))

    def layer_entry(self, name: str) -> dict:
        for e in self.row["layers"]:
            if e["name"] == name:
                return e
        e = {"name": name}
        self.row["layers"].append(e)
        return e


class _StageClock(pl.Callback):
    """Keeps the stage's elapsed time in each epoch checkpoint, so that a resumed stage counts the epochs it
    does not redo (without it, a run killed mid-stage reported only the time after its resume)."""

    def __init__(self, run: Run):
        self.run = run

    def state_dict(self) -> dict:
        return {"elapsed_s": self.run.elapsed()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "elapsed_s" in state_dict:
            self.run.set_elapsed(float(state_dict["elapsed_s"]))


def _has_val_split(dm) -> bool:
    """Whether the data module has a validation split (its own ``val_dataloader``, not Lightning's stub)."""
    return type(dm).val_dataloader is not pl.LightningDataModule.val_dataloader


def _single_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def _same_machine(a: dict | None, b: dict) -> bool | None:
    """Whether two rows' machines would give the same numbers (the load average aside); None if unknown."""
    if not a:
        return None
    strip = lambda m: {k: v for k, v in m.items() if k != "load_avg_start"}  # noqa: E731
    return strip(a) == strip(b)


def _sha256(path: str) -> str | None:
    import hashlib

    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
