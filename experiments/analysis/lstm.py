"""Rows of the pruned LSTMs (``neuraltalk``: the captioner; ``lstm_fmnist``: the row-LSTM classifier), read
for the tables, the figure and the notebook: which rows form the density sweep, per-seed deltas against the
dense model, the issue's targets, the sweep's points and the per-gate densities of a file.

A row's *LSTM density* is measured, not configured: the stored non-zeros of its ``recurrent`` layers over
their weights (``layers[]``), rounded to 0.1%. Its *metric* is its task's headline: BLEU-4 for captioning
(higher is better), top-1 error for classification (lower is better).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from experiments.analysis.rows import is_smoke

EXPERIMENTS = ("neuraltalk", "lstm_fmnist")
# the targets at 10% LSTM density: the most the metric may lose against dense, on every seed
TARGETS = {"neuraltalk": ("bleu4", 1.0), "lstm_fmnist": ("top1_err", 0.5)}


def metric_of(row: dict) -> str:
    """The row's headline metric: ``bleu4`` for the captioning task, else ``top1_err``."""
    target = str(((row.get("config") or {}).get("task") or {}).get("_target_", ""))
    return "bleu4" if target.endswith("LitCaptioner") else "top1_err"


def higher_is_better(metric: str) -> bool:
    return metric.startswith("bleu")


def loss(row: dict, stage: str, metric: str | None = None) -> float | None:
    """How much worse ``stage`` is than the row's dense model, in points (positive = worse)."""
    metric = metric or metric_of(row)
    m = row.get("metrics") or {}
    a, b = m.get(f"dense/{metric}"), m.get(f"{stage}/{metric}")
    if a is None or b is None:
        return None
    return (a - b) if higher_is_better(metric) else (b - a)


def lstm_density(row: dict) -> float | None:
    layers = [l for l in row.get("layers") or [] if l.get("kind") == "recurrent" and l.get("weights")]
    if not layers or any(l.get("nonzeros") is None for l in layers):
        return None
    return round(sum(l["nonzeros"] for l in layers) / sum(l["weights"] for l in layers), 3)


def complete(row: dict) -> bool:
    m = metric_of(row)
    return ((row.get("metrics") or {}).get(f"compressed/{m}") is not None
            and (row.get("size") or {}).get("file_bytes") is not None and not row.get("storage_only"))


def density_runs(rows: list[dict], experiment: str) -> dict[float, list[dict]]:
    """Clean, complete experiment rows (not sweeps, not smoke) by LSTM density, the latest row per seed, seeds
    in order; densities from the densest."""
    out: dict[float, dict] = {}
    for r in rows:
        if (r.get("experiment") != experiment or r.get("sweep") or r.get("git_dirty") is not False or is_smoke(r)
                or not complete(r)):
            continue
        d = lstm_density(r)
        if d is None:
            continue
        seen = out.setdefault(d, {})
        if r.get("seed") not in seen or str(r["run_id"]) > str(seen[r.get("seed")]["run_id"]):
            seen[r.get("seed")] = r
    return {d: [v[s] for s in sorted(v, key=str)] for d, v in sorted(out.items(), reverse=True)}


@dataclass
class Spread:
    mean: float
    sd: float
    lo: float
    hi: float
    n: int

    def text(self, fmt: str = "{:.2f}") -> str:
        if self.n == 1:
            return fmt.format(self.mean)
        return f"{fmt.format(self.mean)} ± {fmt.format(self.sd).lstrip('+')} ({fmt.format(self.lo)} to {fmt.format(self.hi)})"


def spread(values) -> Spread | None:
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None
    return Spread(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, min(xs), max(xs), len(xs))


def target_check(rows_at_density: list[dict], experiment: str, stage: str = "compressed") -> tuple[bool, str]:
    """Whether every seed's ``stage`` is within the issue's tolerance of its dense model, and how far."""
    metric, tol = TARGETS[experiment]
    losses = [loss(r, stage, metric) for r in rows_at_density]
    if not losses or any(x is None for x in losses):
        return False, "not measured"
    worst = max(losses)
    ok = worst <= tol
    return ok, (f"{'met' if ok else 'missed'}: worst seed loses {worst:+.2f} points ({metric}), "
                f"target at most {tol:g}")


def sweep_points(rows: list[dict], experiment: str, sweep: str = "lstm_density") -> list[dict]:
    """Points of the density sweep: retrained (yes / no), LSTM density, the metric after pruning, over seeds
    (mean, min, max, seeds), with each point's dense reference."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r.get("experiment") != experiment or r.get("sweep") != sweep or is_smoke(r):
            continue
        d, metric = lstm_density(r), metric_of(r)
        v = (r.get("metrics") or {}).get(f"pruned/{metric}")
        if d is None or v is None:
            continue
        retrained = int(((r.get("config") or {}).get("prune") or {}).get("epochs_per_round") or 0) > 0
        g = groups.setdefault((retrained, d), {})
        s = r.get("seed")
        if s not in g or str(r["run_id"]) > str(g[s]["run_id"]):
            g[s] = r
    out = []
    for (retrained, d), g in sorted(groups.items()):
        rs = list(g.values())
        metric = metric_of(rs[0])
        vals = [r["metrics"][f"pruned/{metric}"] for r in rs]
        dense = [r["metrics"].get(f"dense/{metric}") for r in rs]
        out.append({"retrained": retrained, "density": d, "metric": metric, "value": statistics.fmean(vals),
                    "min": min(vals), "max": max(vals), "seeds": sorted(r.get("seed") for r in rs),
                    "dense": statistics.fmean([x for x in dense if x is not None]) if any(
                        x is not None for x in dense) else None,
                    "epochs": int(rs[0]["config"]["prune"].get("epochs_per_round") or 0),
                    "dataset": rs[0].get("dataset"), "run_ids": sorted(str(r["run_id"]) for r in rs)})
    return out


def gate_densities(weight) -> list[float]:
    """Density of each of the four gates (input, forget, cell, output: torch's row blocks) of an LSTM matrix."""
    w = weight.detach()
    h = w.shape[0] // 4
    return [float((w[i * h:(i + 1) * h] != 0).float().mean()) for i in range(4)]


def file_gate_densities(path) -> dict[str, list[float]]:
    """Per recurrent layer of a compressed file, the stored density of each gate (the file decoded)."""
    from compression.architecture import decode_model
    from compression.specs import specs_of, tensor_of

    model = decode_model(path)
    return {s.name: gate_densities(tensor_of(model, s)) for s in specs_of(model) if s.kind == "recurrent"}
