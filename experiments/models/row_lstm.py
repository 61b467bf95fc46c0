"""An LSTM classifier over image rows: sequential Fashion-MNIST reads each 28x28 image as 28 steps of 28 pixels.

The smallest real check that recurrent weights prune and retrain (LWC's pruning applied to an LSTM, as Han et
al. do for NeuralTalk). Specs: ``lstm_ih`` (input-to-gates, 4*hidden x 28) and ``lstm_hh`` (recurrent,
4*hidden x hidden), both of kind ``recurrent`` and each stacking the four gates (input, forget, cell, output;
``blocks=4``),
and ``fc`` (the classifier on the last step's hidden state). No spec states a neuron-pruning link: an LSTM
unit feeds its own gates at the next step.
"""

from __future__ import annotations

import torch
from torch import nn

from compression.specs import LayerSpec


class RowLSTM(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden: int = 128):
        super().__init__()
        self.lstm = nn.LSTM(in_channels * image_size, int(hidden), batch_first=True)
        self.fc = nn.Linear(int(hidden), num_classes)

    def layer_specs(self) -> list[LayerSpec]:
        return [LayerSpec("lstm_ih", "lstm", "weight_ih_l0", kind="recurrent", blocks=4),
                LayerSpec("lstm_hh", "lstm", "weight_hh_l0", kind="recurrent", blocks=4),
                LayerSpec("fc", "fc", kind="fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        out, _ = self.lstm(x.permute(0, 2, 1, 3).reshape(b, h, c * w))  # one step per image row
        return self.fc(out[:, -1])
