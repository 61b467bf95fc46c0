"""Lightning DDP with 2 CPU processes (gloo) on the MNIST sample: one row, identical masks and codebooks."""
import json

from conftest import rows_in, run_cli


def test_ddp_two_processes_one_row_identical_ranks(tmp_path):
    p = run_cli(["+experiment=lenet300", "data=mnist_sample", "dense.epochs=1", "prune.rounds=1",
                 "prune.epochs_per_round=1", "quantize.epochs=1", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.strategy=ddp", "logger=none"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = rows_in(tmp_path)
    assert len(rows) == 1  # only global rank 0 writes
    row = json.loads(rows[0].read_text())
    assert row["ranks"] == {"world_size": 2, "identical_masks_and_codebooks": True}
    for k in ("dense/top1_err", "pruned/top1_err", "quantized/top1_err", "compressed/top1_err"):
        assert 0 <= row["metrics"][k] <= 100
    assert len(list((tmp_path / "results").glob("**/*.dcz"))) == 1
    assert not list((tmp_path / "out").glob("*.rank*.dcz"))  # other ranks' files are removed
