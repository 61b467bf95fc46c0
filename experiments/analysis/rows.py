"""One query layer over the results rows: load them, classify them, choose among them.

    df = rows.load("results")             # one line per row: runs/ and sweeps/
    df[df.kind == "experiment"]           # rows of experiment runs (not sweep jobs)
    rows.paper_recipe(df, "lenet300")     # the row Table 1 uses, by the rule below

Columns: ``path`` (relative to the results folder), ``kind`` ("experiment": directly in
``runs/<experiment>/``; "sweep": a sweep job; "other"), ``experiment``, ``sweep``, ``run_id``,
``model``, ``dataset``, ``seed``, ``git_commit``, ``git_dirty``, ``storage_only``, ``smoke``
(synthetic data or ``trainer=smoke``: its numbers mean nothing), ``complete`` (an error measured
on the decoded file and the file's size), ``variant`` (how its config departs from its
experiment's file, ``""`` for the recipe itself), ``recipe`` (a seed-free key equal for runs of
one recipe), the flattened ``metrics.*``, ``ratio.*`` and ``size.*``, and ``row`` (the dict).

Variant labels are derived, never kept by hand: a row's config is read against the schema
(``experiments.canonical``: a key the row lacks takes the value that reproduces what its code
did) and compared, key by key, with ``+experiment=<its experiment>`` as the config files compose
it now. See docs/results_row.md.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pandas as pd

from experiments.canonical import canonical, differences, recipe_key

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _read(path: Path) -> dict | None:
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        print(f"skipping unreadable row {path}: {e}", file=sys.stderr)
        return None
    return row if isinstance(row, dict) else None


def is_smoke(row: dict) -> bool:
    """Smoke runs (synthetic data or trainer=smoke) prove the pipeline runs; their numbers mean nothing."""
    trainer = (row.get("config") or {}).get("trainer") or {}
    return row.get("dataset") == "fake_imagenet" or bool(trainer.get("epochs_cap"))


def is_complete(row: dict) -> bool:
    return (not row.get("storage_only") and (row.get("metrics") or {}).get("compressed/top1_err") is not None
            and (row.get("size") or {}).get("file_bytes") is not None)


def layers_of(row: dict) -> list[tuple[str, str]] | None:
    layers = [(l.get("name"), l.get("kind")) for l in row.get("layers") or [] if l.get("name")]
    return layers or None


@functools.lru_cache(maxsize=None)
def experiment_config(experiment: str | None) -> dict:
    """``+experiment=<experiment>`` as the config files compose it now (no experiment file: the defaults)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from experiments.config import register_configs

    register_configs()
    overrides = ["paths.root_dir=.", "paths.output_dir=.", "paths.results_dir=results"]
    if experiment and (CONF_DIR / "experiment" / f"{experiment}.yaml").is_file():
        overrides.insert(0, f"+experiment={experiment}")
    gh = GlobalHydra.instance()
    saved = gh.config_loader if gh.is_initialized() else None  # leave a caller's Hydra as it was
    gh.clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name="config", overrides=overrides)
        return OmegaConf.to_container(cfg, resolve=True)
    finally:
        gh.clear()
        if saved is not None:
            gh.initialize(saved)


def variant(row: dict) -> str:
    """How a row's settings depart from its experiment's config file: ``"key=value, ..."``, ``""`` if not at all."""
    layers = layers_of(row)
    config = row.get("config") or {}
    ours = canonical(config, layers)
    # compared with the experiment's file run the same way (a storage-only run is a kind of row, not a setting)
    base = canonical({**experiment_config(row.get("experiment")), "storage_only": bool(config.get("storage_only"))},
                     layers)
    return ", ".join(differences(ours, base))


def _kind(rel: Path, row: dict) -> str:
    if row.get("sweep"):
        return "sweep"
    return "experiment" if rel.parts[0] == "runs" and len(rel.parts) == 3 else "other"


def frame(items: list[tuple[str, dict]]) -> pd.DataFrame:
    """The query frame of (path, row) pairs (module docstring)."""
    recs = []
    for rel, row in items:
        rel_p = Path(rel)
        if rel_p.parts[0] == "sweeps" and len(rel_p.parts) == 4:  # the folder names a row that lacks them
            row.setdefault("experiment", rel_p.parts[1])
            row["sweep"] = row.get("sweep") or rel_p.parts[2]
        recs.append({
            "path": str(rel_p), "kind": _kind(rel_p, row), "experiment": row.get("experiment"),
            "sweep": row.get("sweep") or "", "run_id": str(row.get("run_id")), "model": row.get("model"),
            "dataset": row.get("dataset"), "seed": row.get("seed"), "git_commit": row.get("git_commit"),
            "git_dirty": row.get("git_dirty"), "storage_only": bool(row.get("storage_only")),
            "smoke": is_smoke(row), "complete": is_complete(row),
            "variant": variant(row), "recipe": recipe_key(row.get("config") or {}, layers_of(row)),
            **{f"{g}.{k}": v for g in ("metrics", "ratio", "size") for k, v in (row.get(g) or {}).items()},
            "row": row,
        })
    cols = ["path", "kind", "experiment", "sweep", "run_id", "model", "dataset", "seed", "git_commit", "git_dirty",
            "storage_only", "smoke", "complete", "variant", "recipe", "row"]
    df = pd.DataFrame(recs, columns=None if recs else cols)
    return df.sort_values("run_id", kind="stable").reset_index(drop=True) if recs else df


def load(results_dir: str | Path) -> pd.DataFrame:
    """Every parsable row under ``<results_dir>/runs`` and ``<results_dir>/sweeps`` (temp files skipped)."""
    results_dir = Path(results_dir)
    items = []
    for top in ("runs", "sweeps"):
        base = results_dir / top
        for p in sorted(base.rglob("*.json")) if base.is_dir() else []:
            if not p.name.startswith(".") and (row := _read(p)) is not None:
                items.append((str(p.relative_to(results_dir)), row))
    return frame(items)


def load_runs(runs_dir: str | Path) -> pd.DataFrame:
    """The rows of one runs folder (``results/runs``), as if it sat in a results folder."""
    runs_dir = Path(runs_dir)
    items = [(str(Path("runs") / p.relative_to(runs_dir)), row) for p in sorted(runs_dir.rglob("*.json"))
             if not p.name.startswith(".") and (row := _read(p)) is not None]
    return frame(items)


def records(df: pd.DataFrame) -> list[dict]:
    """The row dicts of a frame, in its order."""
    return list(df["row"]) if len(df) else []


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numbers mean something: not smoke runs."""
    return df[~df["smoke"]] if len(df) else df


def candidates(df: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Clean experiment rows (not sweeps, not smoke) of one experiment, oldest first."""
    if not len(df):
        return df
    return df[(df["kind"] == "experiment") & (df["experiment"] == experiment) & (df["git_dirty"] == False)  # noqa: E712
              & ~df["smoke"] & df["run_id"].ne("None")]


def paper_recipe(df: pd.DataFrame, experiment: str) -> tuple[str, dict | None]:
    """Table 1's rule: the row of the paper's recipe for one experiment, and its kind.

    Among the clean experiment rows of ``experiment`` whose config is exactly the experiment
    file's (variant ``""``: a row of another criterion, quantizer, coder, distillation or any
    other setting can never be chosen), the latest complete one; else the latest storage-only one
    with a file size; else none. Returns ("complete" | "storage-only" | "not run", row).
    """
    c = candidates(df, experiment)
    c = c[c["variant"] == ""] if len(c) else c
    complete = c[c["complete"]] if len(c) else c
    if len(complete):
        return "complete", complete.iloc[-1]["row"]
    storage = c[c["storage_only"] & c["size.file_bytes"].notna()] if len(c) and "size.file_bytes" in c else c.iloc[:0]
    if len(storage):
        return "storage-only", storage.iloc[-1]["row"]
    return "not run", None


def seed_groups(df: pd.DataFrame, experiment: str) -> list[pd.DataFrame]:
    """Complete clean rows of one experiment grouped by recipe (config without the seed), one frame
    per group with rows by seed, latest group first; in each group the latest row per seed."""
    c = candidates(df, experiment)
    c = c[c["complete"]] if len(c) else c
    groups = []
    for _, g in c.groupby("recipe", sort=False):
        g = g.sort_values("run_id").drop_duplicates("seed", keep="last")
        groups.append(g.sort_values(["seed", "run_id"], key=lambda s: s.astype(str).str.zfill(20)))
    return sorted(groups, key=lambda g: g["run_id"].max(), reverse=True)
