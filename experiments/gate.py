"""The gate: every check a command line can fail without training, before anything is written.

``run.py`` calls ``check(argv)`` before Hydra starts the run (Hydra creates the run folder before
the task function runs, so a check made there is too late). It composes the config exactly as
Hydra will -- every job of a ``-m`` sweep too -- and stops the command with one or two lines that
name the key, the bad value and the fix (``UserError``: exit code 2), in two phases:

1. torch-free, in well under a second after Python starts: Hydra's composition (unknown experiment,
   data, model or other group option; a key that does not exist; a value of the wrong type; a
   malformed override), keys the schema lacks however they were added (``+dense.epoch=3``), empty
   per-layer dicts, and every range check of ``experiments/config.py``;
2. with torch (the run imports it anyway): the model's layer names against the per-layer dicts,
   the plug-ins' arguments, the data module's arguments and files, the start checkpoint, and the
   combination of stages, Lightning's trainer arguments (``experiments.pipeline.plan.Plan`` with the
   model on the meta device: no weights are allocated, nothing is trained or written).

It also fixes what a per-layer dict on the command line means: ``prune.density={ip1:0.1}``
*replaces* the experiment's dict (Hydra alone would merge it into the experiment's dict, which
keeps the other entries, refuse entries the experiment's dict lacks unless written with ``+``, and
change nothing for ``prune.density={}``). ``main`` in ``run.py`` applies the same rule to the config
Hydra hands the task (``replace_per_layer_dicts``). docs/cli.md describes both for users.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from experiments.config import KINDS, RunConf, register_configs, validate
from experiments.errors import UserError
from experiments.results import jobs_at_once, thread_env, thread_share
from experiments.schema_keys import UNKNOWN_KEY_HINTS, omegaconf_message, per_layer_keys, schema_class

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# Hydra's own commands that print something and run nothing: no gate.
HYDRA_COMMANDS = ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")


def register() -> None:
    """The schema and the ``run_key`` resolver that conf/hydra/default.yaml names the run folder with."""
    register_configs()


@dataclasses.dataclass
class Checked:
    """What the gate found: the mode, each job's config (as the task will see it) and its folder."""
    mode: str                          # "run" or "multirun"
    jobs: list[DictConfig]
    run_dirs: list[Path]
    existed: list[bool]                # did each folder exist before this command?
    parallel_jobs: int = 1             # sweep jobs run at once (the joblib launcher's n_jobs)
    rewritten: dict[str, str] = dataclasses.field(default_factory=dict)  # overrides composed in another form
    launcher: str = ""                 # a sweep's launcher (hydra.launcher._target_)

    @property
    def run_dir(self) -> Path:
        return self.run_dirs[0]


# -- what a per-layer dict override means ---------------------------------------------------------
def replace_per_layer_dicts(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """``key={...}`` on the command line for a per-layer dict replaces the dict (Hydra merges it).

    ``prune.density={ip1:0.1}`` keeps ip1 at 0.1 and drops the experiment's other entries (their
    layers then take their kind's value or the ``'*'`` value, or fail naming the layer);
    ``prune.density.ip1=0.1`` changes one entry and keeps the rest. Returns the keys replaced."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = set(per_layer_keys(RunConf))
    done = []
    for o in OverridesParser.create().parse_overrides([str(x) for x in overrides]):
        if o.key_or_group in keys and not o.is_delete() and not o.is_sweep_override():
            value = o.value()
            if isinstance(value, dict) and OmegaConf.select(cfg, o.key_or_group, default=None) is not None:
                try:
                    OmegaConf.update(cfg, o.key_or_group, value, merge=False)
                except Exception as e:  # a value of the wrong type
                    raise UserError(f"invalid value for {o.input_line}: {_first_line(e)}") from None
                done.append(o.key_or_group)
    return done


# -- phase 1: composition and schema, torch-free --------------------------------------------------
def check(argv: list[str], calling_file: str, config_path: str = "conf", config_name: str = "config",
          heavy: bool = True) -> Checked | None:
    """Check a ``run.py`` command line; UserError if it cannot run. None for Hydra's own commands
    (``--help``, ``--cfg``, ``--info``, ...), which run nothing. ``heavy=False`` stops after phase 1."""
    from hydra._internal.utils import get_args_parser

    args = get_args_parser().parse_args(argv)
    if any(getattr(args, k, None) for k in HYDRA_COMMANDS):
        return None
    checked = compose(args, calling_file, args.config_path or config_path, args.config_name or config_name)
    threads = max(thread_share(int(OmegaConf.select(j, "trainer.threads", default=1) or 0), checked.parallel_jobs)
                  for j in checked.jobs)
    os.environ.update(thread_env(threads))  # before torch, numpy's BLAS and numba are imported
    if heavy:
        preflight(checked)
    return checked


def compose(args, calling_file: str, config_path: str, config_name: str) -> Checked:
    """Compose the run's (or every sweep job's) config as Hydra will, then check it against the schema."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path, detect_task_name
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    register()
    overrides = list(args.overrides)
    search_path = create_automatic_config_search_path(calling_file, None, config_path)
    if args.config_dir is not None:
        from hydra.core.config_search_path import SearchPathQuery

        d = os.path.abspath(args.config_dir)
        if not os.path.isdir(d):
            raise UserError(f"--config-dir {args.config_dir}: no such folder")
        search_path.prepend(provider="command-line", path=f"file://{d}", anchor=SearchPathQuery(provider="schema"))
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(task_name=detect_task_name(calling_file, None), config_search_path=search_path)
        rewritten: dict[str, str] = {}
        while True:
            try:
                checked = _compose(hydra, RunMode, args, config_name, overrides)
                checked.rewritten = rewritten
                return checked
            except UserError:
                raise
            except Exception as e:
                new = _dict_with_new_entries(e, overrides)
                if new is None:
                    raise UserError(explain(e, overrides)) from None
                rewritten[new[0]] = new[1]
                overrides = [new[1] if o == new[0] else o for o in overrides]
    finally:
        GlobalHydra.instance().clear()


def _compose(hydra, RunMode, args, config_name: str, overrides: list[str]) -> Checked:
    mode = hydra.get_mode(config_name=config_name, overrides=overrides)
    if not (args.multirun or mode == RunMode.MULTIRUN):
        cfg = hydra.compose_config(config_name, overrides + ["hydra.mode=RUN"], run_mode=RunMode.RUN,
                                   with_log_configuration=False)
        return _checked("run", [_job(cfg, "hydra.run.dir", None)], 1)
    master = hydra.compose_config(config_name, overrides + ["hydra.mode=MULTIRUN"], run_mode=RunMode.MULTIRUN,
                                  with_log_configuration=False)
    jobs = [_job(c, "hydra.sweep.dir", "hydra.sweep.subdir") for c in _sweep_jobs(hydra, master)]
    n_jobs = jobs_at_once(OmegaConf.select(master, "hydra.launcher.n_jobs", default=None))
    checked = _checked("multirun", jobs, min(n_jobs, len(jobs)))
    checked.launcher = str(OmegaConf.select(master, "hydra.launcher._target_", default=""))
    return checked


def _dict_with_new_entries(e: Exception, overrides: list[str]) -> tuple[str, str] | None:
    """``quantize.bits={*:4}`` where the experiment's dict has no '*': Hydra merges a dict override into
    the existing dict and refuses new keys without ``+``. A per-layer dict on our command line replaces the
    experiment's (``replace_per_layer_dicts``), so it is composed in the ``+`` form: (old, new) override."""
    text = str(e)
    if not text.startswith("Could not override '"):
        return None
    key = text.split("'")[1]
    if key not in per_layer_keys(RunConf):
        return None
    for o in overrides:
        if o.split("=", 1)[0] == key and o.split("=", 1)[1].lstrip().startswith("{"):
            return o, "+" + o
    return None


def _sweep_jobs(hydra, master: DictConfig) -> list[DictConfig]:
    """Every job of a ``-m`` sweep, composed as Hydra's basic sweeper will compose it."""
    target = OmegaConf.select(master, "hydra.sweeper._target_", default=None)
    if target != BASIC_SWEEPER:  # another sweeper chooses its jobs as it goes: check the fixed part
        return [master]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(master, "hydra.sweeper.params", default=None) or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(master.hydra.overrides.task)
    parsed = OverridesParser.create(config_loader=hydra.config_loader).parse_overrides(lines)
    batches = BasicSweeper.split_arguments(parsed, None)
    return [hydra.config_loader.load_sweep_config(master, list(job)) for job in batches[0]]


def _job(cfg: DictConfig, dir_key: str, subdir_key: str | None) -> DictConfig:
    """The config the task function will get (no ``hydra`` node), resolved for this job's folder."""
    import copy

    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    out = str(OmegaConf.select(cfg, dir_key))
    if subdir_key:
        out = os.path.join(out, str(OmegaConf.select(cfg, subdir_key)))
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = os.path.abspath(out)
    HydraConfig.instance().set_config(cfg)
    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    try:
        OmegaConf.resolve(job)  # ${hydra:...} now, while this job's Hydra config is the current one
    except Exception as e:
        raise UserError(f"invalid config: {omegaconf_message(e)}") from None
    replace_per_layer_dicts(job, list(cfg.hydra.overrides.task))
    return job


def _checked(mode: str, jobs: list[DictConfig], parallel: int) -> Checked:
    for job in jobs:
        validate(job)
    dirs = [Path(j.paths.output_dir) for j in jobs]
    return Checked(mode, jobs, dirs, [d.exists() for d in dirs], parallel)


# -- phase 2: what needs the model, the plug-ins and the data (torch) ------------------------------
def preflight(checked: Checked) -> None:
    """``Plan`` each job on the meta device (the model's layer names, plug-ins, data files, start
    checkpoint, stage combination); data modules set up here are handed to the run in this process."""
    from experiments.pipeline import _check_stage_combination
    from experiments.pipeline.plan import Plan, forget_checked_data

    local = "submitit" not in checked.launcher  # a cluster's jobs run elsewhere: their data may be on local disks
    for job in checked.jobs:
        plan = Plan(job, meta=True, check_data=local)
        if plan.specs is not None:
            _check_stage_combination(plan)
    if checked.mode != "run":  # the jobs run in other processes (or load their own)
        forget_checked_data()


# -- Hydra's composition errors, in one or two lines ------------------------------------------------
def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "msg", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def explain(e: Exception, overrides: list[str]) -> str:
    """Hydra's error as one or two lines naming the key, the bad value and the fix."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(e, OverrideParseException):
        return _parse_error(overrides, e)
    if isinstance(e, MissingConfigException):
        return _missing_option(e, overrides)
    text = str(e).strip()
    lines = text.splitlines()
    cause = e.__cause__ or e.__context__
    if text.startswith("Could not override '"):
        key = text.split("'")[1]
        line = _override_line(overrides, key)
        if "No match in the defaults list" in text:
            return f"{key} is not in the defaults list: write +{line.lstrip('+~')} (with a leading +)"
        return _no_such_key(key, line, lines[1] if len(lines) > 1 else "")
    if text.startswith("Error merging override "):
        line = text[len("Error merging override "):].strip()
        key = line.split("=")[0].lstrip("+~")
        why = _first_line(cause) if cause is not None else text
        return f"invalid value in {line}: {why}{_expected(key)}"
    return lines[0] + (f"\n{lines[1]}" if len(lines) > 1 and lines[1].strip() else "")


def _override_line(overrides: list[str], key: str) -> str:
    for o in overrides:
        if o.lstrip("+~").split("=")[0] == key:
            return o
    return key


def _parse_error(overrides: list[str], e: Exception) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for o in overrides:
        try:
            parser.parse_override(o)
        except Exception as bad:
            key, _, value = o.partition("=")
            if "=" in value and not value[:1] in "'\"":  # e.g. a path into a run folder named seed=0
                return (f"cannot read the override {o!r}: its value contains '='\n"
                        f"quote the value for Hydra inside the shell's quotes: '{key}=\"{value}\"' (see {GRAMMAR})")
            return (f"cannot read the override {o!r}: {_first_line(bad)}\n"
                    f"quote dict and list values for the shell, e.g. 'prune.density={{ip1:0.1}}' (see {GRAMMAR})")
    return f"{_first_line(e)} (see {GRAMMAR})"


def _missing_option(e, overrides: list[str]) -> str:
    missing = getattr(e, "missing_cfg_file", None) or ""
    group, _, name = str(missing).rpartition("/")
    options = sorted(getattr(e, "options", None) or [])
    if not group or not options:
        return _first_line(e)
    close = difflib.get_close_matches(name, options, n=1)
    line = _override_line(overrides, group)
    plus = line[:len(line) - len(line.lstrip("+"))]
    return (f"{line}: there is no conf/{group}/{name}.yaml; "
            + (f"did you mean {plus}{group}={close[0]}? " if close else "")
            + f"{group} is one of: {', '.join(options)}")


def _no_such_key(key: str, line: str, hydra_hint: str) -> str:
    """``key`` is not in the composed config. Say whether it is a typo of a schema key (Hydra's "use +"
    would only hide it), or a new entry of an open dict (where Hydra's hint is the fix)."""
    parts = key.split(".")
    for i in range(len(parts) - 1, -1, -1):
        group = ".".join(parts[:i])
        cls = schema_class(RunConf, group)
        if cls is None:
            continue
        name = parts[i]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        full = f"{group}.{name}" if group else name
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=3)
            hint = (f"did you mean {' or '.join((group + '.' if group else '') + c for c in close)}?" if close else
                    f"{group or 'the top level'} has no such key (its keys: {', '.join(fields)})")
            return f"unknown config key {full} (in {line}): {UNKNOWN_KEY_HINTS.get(full, hint)}"
        if fields[name].metadata.get("per_layer"):
            return (f"{line}: {full} has no entry {'.'.join(parts[i + 1:])!r} to change. A per-layer dict takes "
                    f"layer names, kinds ({', '.join(KINDS)}) or '*': add the entry with +{line.lstrip('+')}, "
                    f"or replace the whole dict with '{full}={{{parts[-1]}:...}}'")
        return (f"{line}: {full} has no key {'.'.join(parts[i + 1:])!r} to change; add it with +{line.lstrip('+')} "
                f"(a plug-in's keys are its _target_'s arguments, checked before the run starts)")
    return f"{line}: {hydra_hint.strip() or 'no such key'}"


def _expected(key: str) -> str:
    """What the schema expects at ``key``, when that says more than OmegaConf's message."""
    group, _, name = key.rpartition(".")
    cls = schema_class(RunConf, group)
    if cls is None:
        group, _, field_name = group.rpartition(".")
        cls = schema_class(RunConf, group)
        if cls is None:
            return ""
        f = {f.name: f for f in dataclasses.fields(cls)}.get(field_name)
        if f is not None and f.metadata.get("per_layer"):
            t = typing.get_type_hints(cls)[field_name]
            return f" ({group}.{field_name} holds {typing.get_args(t)[1].__name__} values)"
        return ""
    f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    if f is None:
        return ""
    if f.metadata.get("per_layer"):
        return (f" ({key} is a per-layer dict: {key}.ip1=... for one entry, '{key}={{*:...}}' for every layer)")
    t = typing.get_type_hints(cls)[name]
    named = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return f" ({key} must be {named[t]})" if t in named else ""


__all__ = ["Checked", "check", "compose", "explain", "preflight", "register", "replace_per_layer_dicts"]
