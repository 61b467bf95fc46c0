"""Which row each table line shows (docs/tables.md): the paper's recipe by an explicit rule."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from experiments import paper_values as pv
from experiments.analysis import rows as R


@dataclass
class Choice:
    network: str
    row: dict | None = None
    kind: str = "not run"  # "complete" | "storage-only" | "not run"


def choose_rows(df: pd.DataFrame) -> dict[str, Choice]:
    """Per network of DC Table 1, the row of the paper's recipe (``rows.paper_recipe``)."""
    out = {}
    for net, info in pv.NETWORKS.items():
        kind, row = R.paper_recipe(df, info["experiment"])
        out[net] = Choice(net, row, kind)
    return out


def torchvision_alexnet(df: pd.DataFrame) -> dict | None:
    """The latest clean row of torchvision's AlexNet (``model=alexnet``), shown as a note beside the
    paper's Caffe model: the same fc layers, other conv layers."""
    c = R.candidates(df, pv.NETWORKS["alexnet"]["experiment"])
    c = c[(c["model"] == "alexnet") & c["variant"].eq("model=alexnet")] if len(c) else c
    return c.iloc[-1]["row"] if len(c) else None
