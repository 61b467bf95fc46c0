"""The codebase's shape: no import cycles, compression/ free of Hydra and Lightning, the paper's AlexNet."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(pkg: str) -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / pkg).rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, at the top or inside a function."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != name:
                out.add(n)
    return out


def _cycles(pkgs: tuple[str, ...]) -> list[list[str]]:
    mods = {k: v for p in pkgs for k, v in _modules(p).items()}
    graph = {m: _imports(p, m, set(mods)) for m, p in mods.items()}
    # a package importing its own submodules (its __init__ re-exporting them) is not a cycle
    graph = {m: {d for d in deps if not (m.startswith(d + ".") and d in mods)} for m, deps in graph.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return cycles


def test_no_import_cycles():
    assert _cycles(("compression", "experiments")) == []


def test_compression_imports_neither_hydra_nor_lightning():
    for p in (ROOT / "compression").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("hydra", "omegaconf", "pytorch_lightning", "lightning",
                                                   "experiments") for n in names), (p, names)


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (tmp_path / "pkg" / "b.py").write_text("from pkg import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _cycles(("pkg",)) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_caffe_alexnet_has_dc_table_4s_layer_sizes():
    """model=alexnet_caffe: 96/256/384/384/256, grouped conv2/4/5; weights per layer as DC Table 4 prints them."""
    import torch

    from compression.specs import specs_of, tensor_of
    from experiments import paper_values as pv
    from experiments.models.alexnet import AlexNetCaffe

    with torch.device("meta"):
        m = AlexNetCaffe()
    ours = {s.name: tensor_of(m, s).numel() for s in specs_of(m)}
    printed = {c[0]: c[1] for c in pv.DC_LAYERS["alexnet"] if c[0] != "total"}  # "35K", "38M", ...
    assert list(ours) == list(printed)
    for name, text in printed.items():
        unit = 1e3 if text.endswith("K") else 1e6
        # the paper rounds some cells and truncates others (884,736 is "885K", 663,552 is "663K")
        assert float(text[:-1]) in (round(ours[name] / unit), int(ours[name] / unit)), (name, ours[name], text)
    assert ours["conv1"] == 34848 and ours["conv4"] == 663552 and sum(ours.values()) == 60954656
    x = torch.randn(1, 3, 227, 227)
    assert AlexNetCaffe(num_classes=7)(x).shape == (1, 7)


@pytest.mark.parametrize("target", ["experiments.models.lenet.LeNet300", "experiments.models.lenet.LeNet5",
                                    "experiments.models.alexnet.AlexNet", "experiments.models.alexnet.AlexNetCaffe",
                                    "experiments.models.vgg.VGG16"])
def test_every_model_declares_valid_specs(target):
    import torch

    from compression.architecture import model_class
    from compression.specs import specs_of

    with torch.device("meta"):
        specs = specs_of(model_class(target)())
    assert specs and all(s.kind in ("conv", "fc") for s in specs)
