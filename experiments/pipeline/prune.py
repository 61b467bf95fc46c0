"""Prune stage: iterative pruning with retraining (LWC section 3; DC section 2).

Each round prunes every layer to the round's target with the configured criterion
(``prune.criterion``, a ``compression.prune.Criterion``), drops the connections of units left
dead where the layer specs prove it safe (LWC section 3.4), and retrains the survivors.
"""

from __future__ import annotations

import logging
import math
import time

import torch

from compression.neurons import drop_dead_connections, links, remove_dead_units
from compression.prune import block_keep_counts, keep_count, schedule_densities
from experiments.checkpoints import is_rank_zero
from experiments.models.state import clean_model_of, clean_state_dict
from experiments.pipeline.report import layer_report, overall_density, weight_histograms

log = logging.getLogger(__name__)


def prune_targets(run) -> dict[str, float]:
    """Each layer's final density (prune.method=density: the dict, ``uniform_density`` or the
    ``allocation`` plug-in's choice) or quality (method=quality) from the config."""
    c = run.conf.prune
    allocation = run.plugins.get("prune.allocation")
    if allocation is not None:  # a global budget allocated across layers from data (compression/allocation.py)
        densities = allocation.densities(run.layer_sizes())
        run.row["allocation"] = allocation.report()
        return densities
    if c.method == "density" and c.uniform_density is not None:
        return {n: float(c.uniform_density) for n in run.names}
    key = "prune.density" if c.method == "density" else "prune.quality"
    return {s.name: float(run.value(key, s)) for s in run.specs}


def _batches(run):
    """Training batches for a criterion or quantizer that needs data (OBD's Hessian, OBS's layer inputs,
    soft weight-sharing's retraining): the training DataLoader, which each pass iterates afresh."""
    if run.storage_only:
        return None
    return run.dm.train_dataloader()


def prune_layers(run, criterion, values: dict[str, float]) -> float:
    """Prune every layer to ``values[name]`` (a density or a quality, per prune.method) with
    ``criterion``; returns the seconds the criterion took."""
    key = "density" if run.conf.prune.method == "density" else "quality"
    t = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # a loader draws its seed from the run's random stream: leave it alone
        criterion.prepare(run.model, run.specs, _batches(run) if criterion.needs_data else None)
    for spec, module in run.modules():
        if run.conf.prune.per_block and spec.blocks > 1:  # each gate of an LSTM matrix to the density
            keep = block_keep_counts(module, spec.param, spec.blocks, **{key: values[spec.name]})
        else:
            keep = keep_count(module, spec.param, **{key: values[spec.name]})
        criterion.prune(module, spec.param, keep)
    return time.perf_counter() - t


def _rescale_dropout(run, original_p: dict[str, float]) -> None:
    """LWC Eq. 2: D_r = D_o * sqrt(C_ir / C_io), C = connections of the layer the dropout feeds."""
    from compression.prune import current_mask

    modules = {s.name: (s, m) for s, m in run.modules()}
    for path, layer in getattr(run.model, "dropout_inputs", {}).items():
        spec, m = modules[layer]
        mask = current_mask(m, spec.param)
        run.model.get_submodule(path).p = original_p[path] * math.sqrt(float(mask.sum()) / mask.numel())


def _set_trainable(run, kinds: set[str]) -> None:
    for spec, m in run.modules():
        for p in m.parameters():
            p.requires_grad_(spec.kind in kinds)


def _phases(run) -> list[set[str]]:
    """LWC section 3.3: retrain fc with conv frozen, then conv with fc frozen (prune.alternate)."""
    kinds = {s.kind for s in run.specs}
    if run.conf.prune.alternate and "conv" in kinds and kinds - {"conv"}:
        return [kinds - {"conv"}, {"conv"}]
    return [kinds]


def prune_stage(run) -> None:
    c, d = run.conf.prune, run.conf.dense
    criterion = run.plugins["prune.criterion"]
    targets = prune_targets(run)
    plan = {n: schedule_densities(t, c.rounds, c.density_schedule) for n, t in targets.items()} \
        if c.method == "density" else None
    original_p = {p: run.model.get_submodule(p).p for p in getattr(run.model, "dropout_inputs", {})}
    wd = (d.weight_decay if c.weight_decay is None else c.weight_decay) if c.regularization == "l2" else 0.0
    l1 = c.l1 if c.regularization == "l1" else 0.0
    phases = _phases(run)
    distill = run.distill("prune", c.epochs_per_round)
    run.row.setdefault("rounds", [])
    _record_neuron_links(run)
    for r in range(c.rounds):
        if run.progress.done(f"prune_r{r + 1}"):
            continue
        secs = prune_layers(run, criterion, {n: p[r] for n, p in plan.items()} if plan else targets)
        dropped = _drop_dead_connections(run) if c.drop_dead_connections else None
        info = {"round": r + 1, "density": overall_density(run),
                "layer_density": {s.name: round(float((getattr(m, s.param) != 0).float().mean()), 6)
                                  for s, m in run.modules()},
                "criterion_s": round(secs, 3)}
        if dropped:
            info["dead_connections_dropped"] = dropped
        if c.epochs_per_round > 0:
            info[f"{run.headline}_pruned"] = round(run.evaluate()[run.headline], 4)
            if c.dropout_rescale:
                _rescale_dropout(run, original_p)
            for kinds in phases:
                name = f"prune_r{r + 1}"
                if len(phases) > 1:
                    _set_trainable(run, kinds)
                    name += "_" + "+".join(sorted(kinds))  # each phase has its own epoch checkpoints
                run.fit(name, c.epochs_per_round, d.lr * c.lr_scale, wd, d.momentum, c.schedule, l1, distill)
            _set_trainable(run, {s.kind for s in run.specs})
        info[f"{run.headline}_retrained" if c.epochs_per_round > 0 else f"{run.headline}_pruned"] = \
            round(run.evaluate()[run.headline], 4)
        log.info("prune round %d: %s", r + 1, info)
        run.row["rounds"].append(info)
        run.clock_into_row()
        run.progress.save(f"prune_r{r + 1}", run.row, run.model, run.specs)
    run.row["time_s"]["prune_criterion"] = round(sum(i.get("criterion_s", 0.0) for i in run.row["rounds"]), 3)
    run.record("pruned", run.evaluate(val=True))
    layer_report(run)
    run.row.setdefault("histograms", {})["pruned"] = weight_histograms(run, nonzero_only=True)
    if is_rank_zero():  # the retrained sparse weights: start of the bits / init / trade-off sweeps
        torch.save(clean_state_dict(run.model, run.specs), run.out_dir / "pruned.pt")
    run.row["artifacts"]["pruned_checkpoint"] = str(run.out_dir / "pruned.pt")
    if c.remove_dead_neurons:
        _export_without_dead_neurons(run)


def storage_prune_stage(run) -> None:
    """Storage-only: prune once, straight to the configured densities (no data, no retraining)."""
    _record_neuron_links(run)
    run.row["time_s"]["prune_criterion"] = round(prune_layers(run, run.plugins["prune.criterion"],
                                                              prune_targets(run)), 3)
    layer_report(run)


def _record_neuron_links(run) -> None:
    """The row says where LWC 3.4's neuron pruning may act and why it leaves each other layer alone."""
    safe, skipped = links(run.model, run.specs)
    run.row["neuron_pruning"] = {"links": [f"{l.name}->{l.next_name}" for l in safe], "skipped": skipped}


def _probe(run) -> torch.Tensor:
    """A batch to check that neuron pruning left the outputs alone: validation data, else noise of its
    shape. Taken without touching the run's random stream (a loader draws a seed from it)."""
    if not run.storage_only:
        with torch.random.fork_rng(devices=[]):
            x, _ = next(iter(run.dm.val_dataloader()))
        return x[:64]
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, run.shape["in_channels"], run.shape["image_size"], run.shape["image_size"], generator=g)


@torch.no_grad()
def _outputs(run, x: torch.Tensor) -> torch.Tensor:
    training = run.model.training
    run.model.eval()
    try:
        return run.model(x).detach().clone()
    finally:
        run.model.train(training)


def _drop_dead_connections(run) -> dict[str, int]:
    """LWC section 3.4 along the safe links; checks on a batch that the outputs did not change."""
    safe, _ = links(run.model, run.specs)
    if not safe:
        return {}
    x = _probe(run)
    before = _outputs(run, x)
    dropped = drop_dead_connections(run.model, safe)
    diff = float((_outputs(run, x) - before).abs().max())
    if diff > 1e-4 * (1.0 + float(before.abs().max())):
        raise RuntimeError(f"dropping dead connections changed the outputs by {diff:.3g}: the layer specs of "
                           f"{type(run.model).__name__} state a sole consumer or an activation that does not hold "
                           f"(links {[l.name + '->' + l.next_name for l in safe]}); fix layer_specs() or set "
                           "prune.drop_dead_connections=false")
    for name, n in dropped.items():
        e = run.layer_entry(name)
        e["dead_connections_dropped"] = e.get("dead_connections_dropped", 0) + n
    return {name: n for name, n in dropped.items() if n}


def _export_without_dead_neurons(run) -> None:
    """LWC "pruning neurons": save a physically smaller dense model with the same outputs."""
    safe, _ = links(run.model, run.specs)
    small, removed = remove_dead_units(clean_model_of(run.model, run.specs), safe)
    x = _probe(run)
    ref = clean_model_of(run.model, run.specs).eval()
    with torch.no_grad():
        diff = float((small.eval()(x) - ref(x)).abs().max())
    if diff > 1e-3:
        raise RuntimeError(f"dead-neuron removal changed the outputs by {diff}")
    path = run.out_dir / "pruned_neurons_removed.pt"
    torch.save(small, path)
    for spec in run.specs:
        run.layer_entry(spec.name)["units_removed"] = removed.get(spec.name, 0)
    run.row["artifacts"]["neurons_removed_model"] = str(path)
    log.info("removed dead units %s (max output change %.2e) -> %s", removed, diff, path)
