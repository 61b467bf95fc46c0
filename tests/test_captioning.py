"""Pruning LSTMs and a NeuralTalk-style captioner (issue 17): masks hold through retraining, DC Eq. 3 on
recurrent matrices, the Karpathy-format loader and its missing-dataset error (also through the command-line
gate), the offline proxy built from a seed, beam search, BLEU, and a tiny captioning run whose compressed
file decodes into a model that captions the test images as the evaluated one did.

Everything runs on generated data: a Karpathy-format fixture (JSON + PNG images) and four tiny idx files in
Fashion-MNIST's format for the proxy, so no test needs a download or the real datasets."""

import gzip
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from conftest import PY, ROOT, compose_cfg, rows_in
from compression.prune import current_mask, magnitude_prune
from compression.quantize import apply_weight_sharing
from experiments.errors import UserError
from experiments.models.neuraltalk import BOS, EOS, PAD, NeuralTalk
from experiments.models.row_lstm import RowLSTM

sys.path.insert(0, str(ROOT))


# -- fixtures: generated data ---------------------------------------------------------------------
WORDS = ["a", "dog", "cat", "runs", "sits", "on", "the", "grass", "red", "ball"]


def karpathy_fixture(root, n=(8, 2, 3, 3), name="tiny"):
    """dataset_<name>.json in Karpathy's format (train, restval, val, test) and one PNG per image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    images = []
    for split, count in zip(("train", "restval", "val", "test"), n):
        for _ in range(count):
            i = len(images)
            fn = f"img{i}.png"
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(root / "images" / fn)
            sents = [{"tokens": list(rng.choice(WORDS, size=rng.integers(3, 8))), "raw": "x"} for _ in range(5)]
            if split == "test" and i == len(images):
                sents[0]["tokens"] = ["zebra"] + sents[0]["tokens"]  # a word only the test split has
            images.append({"filename": fn, "split": split, "imgid": i, "sentences": sents})
    (root / f"dataset_{name}.json").write_text(json.dumps({"images": images, "dataset": name}))
    return root


def idx_fixture(root, n_train=300, n_test=80, seed=0):
    """The four Fashion-MNIST idx files (gzipped), tiny: random items with labels 0-9."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)

    def write(name, arr):
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with gzip.open(root / f"{name}.gz", "wb") as f:
            f.write(head + arr.astype(np.uint8).tobytes())

    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        # each class a brighter band at its own rows, plus noise: learnable in a few steps
        x = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            x[i, 2 * c + 4: 2 * c + 8] += 180
        write(f"{split}-images-idx3-ubyte", x)
        write(f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory):
    return idx_fixture(tmp_path_factory.mktemp("fmnist"))


def proxy(root, **kw):
    from experiments.fashion_captions import FashionCaptions

    args = dict(root=str(root), n_train=40, n_val=10, n_test=12, val_items=100, min_word_count=1,
                max_caption_len=22, batch_size=8, eval_batch_size=6)
    return FashionCaptions(**{**args, **kw})


# -- data -----------------------------------------------------------------------------------------
def test_karpathy_loader_on_the_fixture(tmp_path):
    from experiments.captioning_data import KarpathyCaptions

    root = karpathy_fixture(tmp_path / "tiny")
    dm = KarpathyCaptions(name="tiny", root=str(root), images_dir="images", image_size=16, min_word_count=2,
                          max_caption_len=4, batch_size=4, eval_batch_size=2)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (10, 3, 3)  # restval joins train
    assert dm.train_set.images.shape == (10, 3, 16, 16) and dm.in_channels == 3 and dm.image_size == 16
    # the vocabulary: training words only (zebra is a test word), specials first, every word >= 2 times
    assert dm.vocab.words[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and "zebra" not in dm.vocab.words
    assert set(dm.vocab.words[4:]) <= set(WORDS)
    # training captions capped at 4 words + <eos>; references for BLEU keep every word
    images, refs = next(iter(dm.train_dataloader()))
    assert refs.shape[1:] == (5, 5) and (refs[:, :, 4] == EOS).sum() >= 1
    assert images.shape == (4, 3, 16, 16)
    test_refs = dm.test_set.references[0]
    assert test_refs[0].startswith("zebra ") and len(test_refs) == 5
    ids = dm.test_set.refs[0, 0].tolist()
    assert ids[0] == dm.vocab.index["<unk>"] and ids[-1] in (EOS, PAD)


def test_karpathy_features_are_computed_once_and_cached(tmp_path, monkeypatch):
    from experiments.captioning_data import KarpathyCaptions

    root = karpathy_fixture(tmp_path / "tiny")
    kw = dict(name="tiny", root=str(root), images_dir="images", image_size=32, features="resnet18",
              backbone_weights=None, min_word_count=1)
    dm = KarpathyCaptions(**kw)
    assert (dm.in_channels, dm.image_size) == (512, 1)  # known before any image is read (the gate's shape)
    dm.setup()
    assert dm.train_set.images.shape == (10, 512)
    cached = list((root / "cache").glob("*.pt"))
    assert len(cached) == 1
    monkeypatch.setattr(KarpathyCaptions, "_compute_features", lambda self: pytest.fail("recomputed"))
    again = KarpathyCaptions(**kw)
    again.setup()
    assert torch.equal(again.test_set.images, dm.test_set.images)
    m = NeuralTalk(num_classes=again.num_classes, in_channels=512, image_size=1, hidden=8, embed=8)
    assert [s.name for s in m.layer_specs()] == ["We", "Ws", "WLSTM_x", "WLSTM_h", "Wd"]  # no CNN


def test_a_missing_karpathy_dataset_says_where_to_put_it(tmp_path):
    from experiments.captioning_data import KarpathyCaptions

    dm = KarpathyCaptions(name="flickr8k", root=str(tmp_path / "nowhere"), images_dir="Flicker8k_Dataset")
    with pytest.raises(UserError, match="dataset_flickr8k.json") as e:
        dm.check()
    assert str(tmp_path / "nowhere") in str(e.value) and "data.root" in str(e.value)
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "dataset_flickr8k.json").write_text(json.dumps({"images": []}))
    with pytest.raises(UserError, match="Flicker8k_Dataset"):
        KarpathyCaptions(name="flickr8k", root=str(tmp_path / "nowhere"), images_dir="Flicker8k_Dataset").check()




def test_the_gate_stops_a_captioning_run_without_its_dataset(empty_cwd, capsys):
    import run as cli

    for data in ("flickr8k", "flickr30k", "coco"):
        with pytest.raises(SystemExit) as exit_:
            cli.gate(["+experiment=neuraltalk", f"data={data}", f"data.root={empty_cwd / 'none'}"])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) <= 2, err
        assert f"dataset_{data}.json" in err and "data.root" in err and "Traceback" not in err
    assert list(empty_cwd.iterdir()) == []  # no outputs/, no results/


def test_neuraltalk_on_flickr8k_without_data_ends_at_once_with_no_row(tmp_path):
    r = subprocess.run([PY, str(ROOT / "run.py"), "+experiment=neuraltalk", "data=flickr8k",
                        f"data.root={tmp_path / 'flickr8k'}", f"paths.results_dir={tmp_path / 'results'}",
                        f"hydra.run.dir={tmp_path / 'out'}"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "dataset_flickr8k.json" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "out").exists()


def test_the_proxy_is_built_from_its_seed(fmnist):
    from experiments.data import read_idx
    from experiments.fashion_captions import NAMES

    a, b, c = proxy(fmnist, data_seed=3), proxy(fmnist, data_seed=3), proxy(fmnist, data_seed=4)
    for dm in (a, b, c):
        dm.setup()
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, f"{split}_set"), getattr(b, f"{split}_set")
        assert torch.equal(sa.images, sb.images) and sa.references == sb.references
    assert a.train_set.references != c.train_set.references
    lay, text = a.layout()
    # train and validation images use disjoint Fashion-MNIST training items; test images test items
    tr, va = set(lay["train"][lay["train"] >= 0].tolist()), set(lay["val"][lay["val"] >= 0].tolist())
    assert not tr & va and lay["test"].max() < 80
    # two to four items; every caption names them left to right
    labels = {"train": read_idx(fmnist / "train-labels-idx1-ubyte.gz"), "test": read_idx(fmnist / "t10k-labels-idx1-ubyte.gz")}
    for split in ("train", "val", "test"):
        y = labels["test" if split == "test" else "train"]
        for items, caps in zip(lay[split], text[split]):
            k = int((items >= 0).sum())
            assert 2 <= k <= 4 and len(caps) == 5
            for cap in caps:
                s, pos = " ".join(cap), -1
                for j in items[:k]:
                    found = [s.find(" " + n, pos + 1) for n in NAMES[int(y[j])] if s.find(" " + n, pos + 1) >= 0]
                    assert found, (s, NAMES[int(y[j])])
                    pos = min(found)
    # the pixels are the items', left-aligned
    x = a.images("test")
    src = read_idx(fmnist / "t10k-images-idx3-ubyte.gz")
    assert torch.equal(x[0, 0, :, :28], torch.from_numpy(src[lay["test"][0, 0]]))
    assert x.shape[1:] == (1, 28, 112)


# -- the models -----------------------------------------------------------------------------------
def test_neuraltalk_specs_and_teacher_forcing():
    torch.manual_seed(0)
    m = NeuralTalk(num_classes=9, in_channels=1, image_size=28, hidden=8, embed=6, channels=(4, 4)).eval()
    kinds = {s.name: s.kind for s in m.layer_specs()}
    assert kinds == {"conv1": "conv", "conv2": "conv", "We": "fc", "Ws": "embedding", "WLSTM_x": "recurrent",
                     "WLSTM_h": "recurrent", "Wd": "fc"}
    assert all(s.next is None and s.via is None for s in m.layer_specs())  # no neuron-pruning links
    x = torch.randn(2, 1, 28, 56)
    caps = torch.tensor([[5, 6, EOS, PAD], [7, EOS, PAD, PAD]])
    logits = m(x, caps)
    assert logits.shape == (2, 4, 9)
    # teacher forcing: the logits at step t depend on the words before t only
    other = caps.clone()
    other[0, 1] = 8
    assert torch.allclose(m(x, other)[0, :2], logits[0, :2]) and not torch.allclose(m(x, other)[0, 2], logits[0, 2])


def _sequence_logp(m, x, seq, max_len):
    """log p(seq, then <eos> if shorter than max_len) under the model, for one image."""
    state = m._start(x)
    tok, total = torch.tensor([BOS]), 0.0
    for t in range(max_len):
        logp, state = m._step(tok, state)
        nxt = seq[t] if t < len(seq) else EOS
        total += float(logp[0, nxt])
        if nxt == EOS:
            break
        tok = torch.tensor([nxt])
    return total


def test_beam_search_is_exact_with_a_wide_beam_and_greedy_with_one():
    torch.manual_seed(1)
    m = NeuralTalk(num_classes=6, in_channels=4, image_size=1, hidden=8, embed=8).eval()
    with torch.no_grad():
        m.Wd.bias[EOS] -= 1.0  # keep some captions from ending at once
    x = torch.randn(5, 4)
    max_len = 3
    greedy = m.generate(x, max_len, beam_size=1)
    words = [3, 4, 5]  # <unk> and two words: the tokens a caption may hold (<pad>, <bos> are never decoded)
    beam = m.generate(x, max_len, beam_size=len(words) ** max_len)
    for i in range(5):
        xi = x[i:i + 1]
        cands = [list(s) for n in range(max_len + 1) for s in itertools.product(words, repeat=n)]
        best = max(cands, key=lambda s: _sequence_logp(m, xi, s, max_len))
        assert beam[i] == best
        assert _sequence_logp(m, xi, beam[i], max_len) >= _sequence_logp(m, xi, greedy[i], max_len) - 1e-6
        # greedy = each step's most likely token
        state, tok, seq = m._start(xi), torch.tensor([BOS]), []
        for _ in range(max_len):
            logp, state = m._step(tok, state)
            tok = logp.argmax(-1)
            if int(tok) == EOS:
                break
            seq.append(int(tok))
        assert greedy[i] == seq


def test_bleu_is_sacrebleus_corpus_bleu():
    from experiments.captioning import bleu_score

    refs = [["a dog runs on the grass", "the dog runs"], ["a cat sits"]]
    assert bleu_score(["a dog runs on the grass", "a cat sits"], refs) == pytest.approx(100.0)
    b1 = bleu_score(["a dog runs", "a cat"], refs, 1)
    # BLEU-1: 5 of 5 unigrams match; brevity penalty exp(1 - 6/5) against the closest references (3 + 3 words)
    assert b1 == pytest.approx(100 * math.exp(1 - 6 / 5), rel=1e-6)


# -- pruning and quantization of recurrent matrices -----------------------------------------------
class MaskWatch(pl.Callback):
    """After every optimizer step and inside every forward: the pruned entries of each LSTM matrix are 0,
    in the tensor the LSTM kernel reads (its flat weights) as well as in the parameter's effective value."""

    def __init__(self, lstm, masks):
        self.lstm, self.masks, self.checks = lstm, masks, 0
        lstm.register_forward_hook(self._in_forward)

    def _in_forward(self, module, args, out):
        for name, mask in self.masks.items():
            flat = module._flat_weights[module._flat_weights_names.index(name)]
            assert bool((flat.detach()[~mask] == 0).all()), name
        self.checks += 1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        for name, mask in self.masks.items():
            assert bool((getattr(self.lstm, name).detach()[~mask] == 0).all()), name
            assert torch.equal(current_mask(self.lstm, name), mask)  # the mask itself never changes
        self.checks += 1


def _fit(lit, dm, callback, steps):
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=steps, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[callback], accelerator="cpu")
    trainer.fit(lit, datamodule=dm)


def test_lstm_masks_stay_applied_through_retraining(fmnist):
    """RowLSTM with SGD (momentum, weight decay) and the captioner with Adam: every gate entry pruned stays 0."""
    from experiments.classifier import LitClassifier
    from experiments.data import FashionMNISTDataModule

    torch.manual_seed(0)
    m = RowLSTM(hidden=16)
    for name in ("weight_ih_l0", "weight_hh_l0"):
        magnitude_prune(m.lstm, name, density=0.1)
    masks = {n: current_mask(m.lstm, n).clone() for n in ("weight_ih_l0", "weight_hh_l0")}
    before = m.lstm.weight_hh_l0_orig.detach().clone()
    dm = FashionMNISTDataModule(root=str(fmnist), val_size=50, batch_size=32, download=False)
    watch = MaskWatch(m.lstm, masks)
    _fit(LitClassifier(m, 10, lr=0.5, momentum=0.9, weight_decay=1e-2), dm, watch, 6)
    assert watch.checks >= 12
    assert not torch.equal(m.lstm.weight_hh_l0_orig.detach(), before)  # it did train

    from experiments.captioning import LitCaptioner

    pdm = proxy(fmnist)
    pdm.setup()
    cap = NeuralTalk(num_classes=pdm.num_classes, in_channels=1, image_size=28, hidden=16, embed=8, channels=(4,))
    for name in ("weight_ih_l0", "weight_hh_l0"):
        magnitude_prune(cap.lstm, name, density=0.05)
    masks = {n: current_mask(cap.lstm, n).clone() for n in ("weight_ih_l0", "weight_hh_l0")}
    watch = MaskWatch(cap.lstm, masks)
    _fit(LitCaptioner(cap, pdm.num_classes, lr=0.05, weight_decay=1e-3), pdm, watch, 4)
    assert watch.checks >= 8
    # the four gates of each matrix: what the pruned model stores per gate
    gates = cap.lstm.weight_hh_l0.detach().view(4, 16, 16)
    assert int((gates != 0).sum()) == round(0.05 * 4 * 16 * 16)


def test_centroid_fine_tuning_of_recurrent_matrices_sums_shared_gradients():
    """DC Eq. 3 on both LSTM matrices: dL/dC_k = sum of dL/dW over the weights assigned to centroid k."""
    torch.manual_seed(0)
    m = RowLSTM(hidden=8)
    ref = RowLSTM(hidden=8)
    masks = {}
    for i, name in enumerate(("weight_ih_l0", "weight_hh_l0")):
        magnitude_prune(m.lstm, name, density=0.4)
        from compression.prune import make_permanent

        masks[name] = make_permanent(m.lstm, name)
        apply_weight_sharing(m.lstm, 3, mask=masks[name], seed=i, name=name)
    ref.load_state_dict({k: v for k, v in m.state_dict().items() if "parametrizations" not in k}, strict=False)
    with torch.no_grad():  # the reference holds the shared weights as plain parameters
        for name in masks:
            getattr(ref.lstm, name).copy_(getattr(m.lstm, name))
        ref.fc.load_state_dict(m.fc.state_dict())
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    torch.nn.functional.cross_entropy(m(x), y).backward()
    torch.nn.functional.cross_entropy(ref(x), y).backward()
    for name, mask in masks.items():
        p = m.lstm.parametrizations[name]
        labels = p[0].labels
        g = getattr(ref.lstm, name).grad
        want = torch.zeros(8).index_add_(0, labels.flatten(), (g * mask).flatten())
        assert torch.allclose(p.original.grad, want, atol=1e-6), name
        assert p.original.grad[0] == 0  # entry 0 is the pruned zero: no gradient reaches it
    opt = torch.optim.SGD([m.lstm.parametrizations[n].original for n in masks], lr=0.1)
    opt.step()
    for name, mask in masks.items():
        w, labels = getattr(m.lstm, name).detach(), m.lstm.parametrizations[name][0].labels
        assert bool((w[~mask] == 0).all())
        for k in range(1, 8):  # weights sharing a centroid stay equal
            assert w[labels == k].unique().numel() <= 1


# -- a whole run ----------------------------------------------------------------------------------
TINY = ["+experiment=neuraltalk", "logger=none", "trainer.enable_progress_bar=false", "dense.epochs=1",
        "prune.rounds=1", "prune.epochs_per_round=1", "quantize.epochs=1", "trainer.limit_train_batches=3",
        "data.n_train=40", "data.n_val=10", "data.n_test=12", "data.val_items=100", "data.min_word_count=1",
        "data.batch_size=8", "data.eval_batch_size=6", "model.hidden=16", "model.embed=8", "model.channels=[4,8]",
        "task.max_len=12"]


def test_a_tiny_captioning_run_writes_a_row_and_a_file_that_captions_as_evaluated(tmp_path, fmnist):
    from compression.architecture import decode_model
    from compression.container import read_layers
    from experiments.analysis.captioning import captions_of, read_record, write_record
    from experiments.pipeline import run

    row = run(compose_cfg([*TINY, f"data.root={fmnist}", "prune.per_block=true"], tmp_path))
    (path,) = rows_in(tmp_path)
    assert json.loads(path.read_text())["run_id"] == row["run_id"] and row["dataset"] == "fashion_captions"
    m = row["metrics"]
    for stage in ("dense", "pruned", "quantized", "compressed"):
        assert {f"{stage}/bleu{n}" for n in (1, 2, 3, 4)} | {f"{stage}/perplexity"} <= set(m)
    assert "bleu4_retrained" in row["rounds"][0]  # pruning rounds report the task's headline
    by = {l["name"]: l for l in row["layers"]}
    assert by["WLSTM_h"]["kind"] == "recurrent" and by["Ws"]["kind"] == "embedding"
    assert by["WLSTM_h"]["nonzeros"] == 4 * round(0.1 * 16 * 16)
    # prune.per_block: each gate of each LSTM matrix holds the density, as the file stores it
    from experiments.analysis.lstm import file_gate_densities
    gates = file_gate_densities(row["artifacts"]["compressed_file"])
    assert gates["WLSTM_h"] == [round(0.1 * 16 * 16) / (16 * 16)] * 4
    assert gates["WLSTM_x"] == [round(0.1 * 16 * 8) / (16 * 8)] * 4
    layers, _, meta, _ = read_layers(row["artifacts"]["compressed_file"])
    assert {(l.key, l.kind) for l in layers} >= {("lstm.weight_hh_l0", "recurrent"), ("Ws.weight", "embedding")}
    assert meta["model"]["_target_"] == "experiments.models.neuraltalk.NeuralTalk"
    assert "correct" in row and row["correct"]["compressed"]["n"] == 12  # exact-match records, per test image

    # the decoded model captions the test images as the evaluated one did: same BLEU, same captions
    from experiments.analysis.captioning import bleus, data_module

    dm = data_module(row)
    texts = captions_of(decode_model(row["artifacts"]["compressed_file"]), dm, 12, 1)
    assert bleus(texts, dm.test_set.references)["bleu4"] == pytest.approx(m["compressed/bleu4"], abs=5e-4)
    rec = read_record(write_record(path))  # dense and compressed captions, each checked against the row
    assert rec["captions"]["compressed"] == texts and len(rec["captions"]["dense"]) == 12
    # python -m compression decode: a state_dict the network loads, captioning the same way
    out = tmp_path / "decoded.pt"
    r = subprocess.run([PY, "-m", "compression", "decode", row["artifacts"]["compressed_file"], str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    net = NeuralTalk(num_classes=dm.num_classes, in_channels=1, image_size=28, hidden=16, embed=8, channels=(4, 8))
    net.load_state_dict(torch.load(out))
    assert captions_of(net, dm, 12, 1) == texts


def test_paired_bleu_bootstrap():
    from experiments.analysis.captioning import paired_bleu

    refs = [["a dog runs on the grass"], ["a cat sits on the red ball"], ["the dog sits"], ["a red ball"]] * 5
    a = [r[0] for r in refs]
    b = [r[0] if i % 4 else "a cat" for i, r in enumerate(refs)]
    d = paired_bleu(a, b, refs, n_resamples=200)
    assert d.delta < 0 and d.ci_low <= d.delta <= d.ci_high < 0  # b is worse on every resample
    same = paired_bleu(a, a, refs, n_resamples=50)
    assert same.delta == same.ci_low == same.ci_high == 0.0
