"""The same config and seed give a byte-identical compressed file (the run id lives in the row and the file's
name, never in its bytes), and every row says what shaped its numbers beyond the config: thread counts, CPU
and its vector instructions, library versions -- so tables can tell which rows came from which hardware."""
import json

from conftest import compose_cfg, rows_in
from experiments.pipeline import run
from experiments.results import machine_info, machine_label
from experiments.tables.seeds import _hardware

QUICK = ["+experiment=lenet300", "data=mnist_sample", "trainer=smoke", "logger=none", "prune.rounds=1", "seed=3"]


def test_same_config_and_seed_give_a_byte_identical_file(tmp_path):
    rows = []
    for name in ("a", "b"):
        run(compose_cfg(QUICK, tmp_path / name))
        (path,) = rows_in(tmp_path / name)
        rows.append(json.loads(path.read_text()))
    a, b = rows
    assert a["run_id"] != b["run_id"]
    files = [open(r["artifacts"]["compressed_file"], "rb").read() for r in rows]
    assert files[0] == files[1]
    assert a["size"]["file_bytes"] == b["size"]["file_bytes"] == len(files[0])
    assert all(r["run_id"].encode() not in f for r, f in zip(rows, files))
    # what shaped the numbers beyond the config
    m = a["machine"]
    assert m["threads"]["torch"] == 1 and m["threads"]["requested"] == a["config"]["trainer"]["threads"] == 1
    assert m["cpu"]["logical_cpus"] >= 1 and "torch" in m["versions"] and "numba" in m["versions"]


def test_rows_say_which_hardware_they_came_from():
    m = machine_info({"requested": 1, "torch": 2, "torch_interop": 2, "numba": 2}, ["NVIDIA H200"])
    m["cpu"].update(model="AMD EPYC", flags=["avx2", "avx512f"])
    assert machine_label(m) == "AMD EPYC, AVX-512, NVIDIA H200, 2 threads"
    m["cpu"]["flags"] = ["avx2"]
    assert _hardware({"machine": m}) == " (AMD EPYC, no AVX-512, NVIDIA H200, 2 threads)"
    assert _hardware({}) == ""  # rows from before the key: their tables read as they did
