"""A NeuralTalk-style image captioner (Karpathy & Fei-Fei 2015; Vinyals et al. 2015), with the layer names of
Karpathy's NeuralTalk release: image features -> ``We`` (linear image embedding) -> one LSTM -> ``Wd`` (linear
decoder, softmax over the vocabulary), words entering through ``Ws`` (the word embedding).

The sequence the LSTM reads is the image embedding, then ``<bos>``, then the caption's words; the outputs from
``<bos>`` on predict the words and ``<eos>`` (teacher forcing in training, ``forward``). The output at the image
step is not used, as in Vinyals et al.'s ``x_{-1} = CNN(I)``. Decoding is greedy or by beam search
(``generate``). NeuralTalk keeps the LSTM's input and recurrent matrices in one array ``WLSTM``; here they are
torch's ``weight_ih_l0`` and ``weight_hh_l0``, declared as the specs ``WLSTM_x`` and ``WLSTM_h`` (each
stacks the four gates: input, forget, cell, output), both of kind ``recurrent`` (what Han et al. prune to 90%
and 95% in NeuralTalk).

The image features come from a small CNN trained with the captioner (``image_size > 1``: the data serves
pixels), or are vectors the data module computed once with a torchvision backbone and cached
(``image_size == 1``: ``in_channels`` is their length; ``We`` then reads them directly).

No spec states a neuron-pruning link (LWC section 3.4): a unit of the LSTM feeds its own gates at the next
step, and the CNN's output is pooled before ``We``; neuron pruning leaves every layer alone.
"""

from __future__ import annotations

import torch
from torch import nn

from compression.specs import LayerSpec

# Token ids every caption vocabulary starts with (experiments.captioning_data.Vocabulary).
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL = ("<pad>", "<bos>", "<eos>", "<unk>")


class NeuralTalk(nn.Module):
    """Captioner: ``num_classes`` is the vocabulary size (the data module's), ``hidden`` the LSTM's width.

    ``channels`` are the CNN's widths (3x3 conv, BatchNorm, ReLU; 2x2 max-pool between them); its last feature
    map is average-pooled to a ``grid`` of cells (rows, columns) before ``We``, so that where an object sits
    (left to right) reaches the caption. The image embedding is batch-normalized (``We_norm``), as the
    Inception encoder of Vinyals et al. is: without BatchNorm a CNN trained from scratch with the captioner
    never got its signal through the LSTM's first step on our proxy (the LSTM learned the grammar and ignored
    the image; docs/captioning.md).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224, hidden: int = 512,
                 embed: int = 512, channels: tuple[int, ...] = (16, 32, 64), grid: tuple[int, int] = (1, 4),
                 dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.hidden, self.embed = int(num_classes), int(hidden), int(embed)
        self.features_given = int(image_size) == 1
        if self.features_given:
            self.cnn = nn.Identity()
            feat = int(in_channels)
            self.conv_names: list[str] = []
        else:
            layers, c = [], int(in_channels)
            self.conv_names = []
            for i, w in enumerate(channels):
                if i:
                    layers.append(nn.MaxPool2d(2))
                layers += [nn.Conv2d(c, int(w), 3, padding=1), nn.BatchNorm2d(int(w)), nn.ReLU()]
                self.conv_names.append(f"cnn.{len(layers) - 3}")
                c = int(w)
            layers += [nn.AdaptiveAvgPool2d(tuple(int(g) for g in grid)), nn.Flatten()]
            self.cnn = nn.Sequential(*layers)
            feat = c * int(grid[0]) * int(grid[1])
        self.We = nn.Linear(feat, self.embed)
        self.We_norm = nn.BatchNorm1d(self.embed)
        self.Ws = nn.Embedding(self.vocab_size, self.embed)
        self.lstm = nn.LSTM(self.embed, self.hidden, batch_first=True)
        self.drop = nn.Dropout(float(dropout))
        self.Wd = nn.Linear(self.hidden, self.vocab_size)

    # LWC Eq. 2 rescales this dropout as Wd is pruned (experiments/pipeline/prune.py)
    dropout_inputs = {"drop": "Wd"}

    def layer_specs(self) -> list[LayerSpec]:
        convs = [LayerSpec(f"conv{i + 1}", m, kind="conv") for i, m in enumerate(self.conv_names)]
        return [*convs,
                LayerSpec("We", "We", kind="fc"),
                LayerSpec("Ws", "Ws", kind="embedding"),
                LayerSpec("WLSTM_x", "lstm", "weight_ih_l0", kind="recurrent", blocks=4),
                LayerSpec("WLSTM_h", "lstm", "weight_hh_l0", kind="recurrent", blocks=4),
                LayerSpec("Wd", "Wd", kind="fc")]

    # -- training: teacher forcing -------------------------------------------------------------
    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        return self.We_norm(self.We(self.cnn(images).flatten(1)))

    def caption_logits(self, image_embedding: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Logits [N, T, V] for the targets ``captions`` [N, T] (words, ``<eos>``, then ``<pad>``) of the images
        whose embeddings are ``image_embedding`` [N, E] (teacher forcing)."""
        n = captions.size(0)
        bos = torch.full((n, 1), BOS, dtype=captions.dtype, device=captions.device)
        words = torch.cat([bos, captions[:, :-1]], dim=1)  # inputs: <bos>, w1 .. w_{T-1}
        x = torch.cat([image_embedding[:, None], self.Ws(words)], dim=1)
        out, _ = self.lstm(x)
        return self.Wd(self.drop(out[:, 1:]))

    def forward(self, images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, V] for one caption per image, ``captions`` [B, T]."""
        return self.caption_logits(self.image_embedding(images), captions)

    # -- inference -------------------------------------------------------------------------------
    def _start(self, images: torch.Tensor):
        _, state = self.lstm(self.image_embedding(images)[:, None])
        return state

    def _step(self, tokens: torch.Tensor, state):
        """log p(next word) [B, V] after ``tokens`` [B]; ``<pad>`` and ``<bos>`` are never decoded."""
        out, state = self.lstm(self.Ws(tokens)[:, None], state)
        logp = torch.log_softmax(self.Wd(out[:, 0]), dim=-1)
        logp[:, (PAD, BOS)] = float("-inf")
        return logp, state

    @torch.no_grad()
    def generate(self, images: torch.Tensor, max_len: int = 20, beam_size: int = 1) -> list[list[int]]:
        """Token ids of each image's caption (without ``<bos>``/``<eos>``): greedy for ``beam_size=1``, else beam
        search over the sum of log-probabilities (NeuralTalk's; no length normalization)."""
        if beam_size <= 1:
            return self._greedy(images, max_len)
        return self._beam(images, max_len, beam_size)

    def _greedy(self, images, max_len):
        state = self._start(images)
        b = images.size(0)
        tokens = torch.full((b,), BOS, dtype=torch.long, device=images.device)
        out = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool, device=images.device)
        for _ in range(max_len):
            logp, state = self._step(tokens, state)
            tokens = logp.argmax(-1)
            for i in torch.nonzero(~done & (tokens != EOS)).flatten().tolist():
                out[i].append(int(tokens[i]))
            done |= tokens == EOS
            if bool(done.all()):
                break
        return out

    def _beam(self, images, max_len, k):
        b = images.size(0)
        h, c = self._start(images)
        h, c = h.repeat_interleave(k, 1), c.repeat_interleave(k, 1)
        dev = images.device
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # one live hypothesis per image at the start
        seqs = torch.zeros(b, k, 0, dtype=torch.long, device=dev)
        tokens = torch.full((b * k,), BOS, dtype=torch.long, device=dev)
        best: list[tuple[float, list[int]] | None] = [None] * b
        for _ in range(max_len):
            logp, (h, c) = self._step(tokens, (h, c))
            v = logp.size(-1)
            cand = (scores[:, :, None] + logp.view(b, k, v)).view(b, k * v)
            top, idx = cand.topk(min(2 * k, k * v), dim=1)  # enough to keep k live ones after <eos> leave
            beam_of, word = idx // v, idx % v
            new_scores = torch.full((b, k), float("-inf"), device=dev)
            new_from = torch.zeros(b, k, dtype=torch.long, device=dev)
            new_word = torch.full((b, k), PAD, dtype=torch.long, device=dev)
            for i in range(b):
                j = 0
                for s, bi, w in zip(top[i].tolist(), beam_of[i].tolist(), word[i].tolist()):
                    if s == float("-inf"):
                        break
                    if w == EOS:
                        if best[i] is None or s > best[i][0]:
                            best[i] = (s, seqs[i, bi].tolist())
                    elif j < k:
                        new_scores[i, j], new_from[i, j], new_word[i, j] = s, bi, w
                        j += 1
                # scores only fall as a caption grows: a finished one above every live one has won
                if best[i] is not None and best[i][0] >= float(new_scores[i].max()):
                    new_scores[i] = float("-inf")
            if bool(torch.isinf(new_scores).all()):  # every image has its caption
                scores = new_scores
                break
            flat = (new_from + torch.arange(b, device=dev)[:, None] * k).flatten()
            h, c = h[:, flat], c[:, flat]
            seqs = torch.cat([seqs.view(b * k, -1)[flat].view(b, k, -1), new_word[:, :, None]], dim=2)
            scores, tokens = new_scores, new_word.flatten()
        out = []
        for i in range(b):
            live = int(scores[i].argmax())
            if best[i] is None or (scores[i, live] > best[i][0]):
                out.append(seqs[i, live].tolist() if scores[i, live] > float("-inf") else [])
            else:
                out.append(best[i][1])
        return out
