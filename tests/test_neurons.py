import torch
from torch import nn

from compression.neurons import dead_units, remove_dead_units
from experiments.models import LeNet300, LeNet5


def test_dead_unit_counts_hand_made():
    # ip1 row 0 all zero -> unit 0 of ip1 dead-in; ip2 column 2 all zero -> unit 2 of ip1 dead-out
    m = LeNet300()
    with torch.no_grad():
        m.ip1.weight[0].zero_()
        m.ip2.weight[:, 2].zero_()
        m.ip2.weight[5].zero_()
    d = dead_units([m.ip1, m.ip2, m.ip3])
    assert d[0] == {"units": 300, "dead_in": 1, "dead_out": 1}
    assert d[1] == {"units": 100, "dead_in": 1, "dead_out": 0}
    assert d[2]["dead_out"] == 0


def test_removal_preserves_outputs_fc_chain():
    torch.manual_seed(0)
    m = LeNet300().eval()
    with torch.no_grad():
        m.ip1.weight[:40].zero_()          # 40 dead-in units (constant relu(bias), folded into ip2's bias)
        m.ip1.bias[:20].fill_(0.7)         # half of them have a non-zero constant output
        m.ip2.weight[:, 100:130].zero_()   # 30 dead-out units of ip1
        m.ip2.weight[:10].zero_()          # 10 dead-in units of ip2
    x = torch.randn(16, 1, 28, 28)
    small, removed = remove_dead_units(m, ["ip1", "ip2", "ip3"], m.activations)
    assert removed == [70, 10, 0]
    assert small.ip1.out_features == 230 and small.ip2.in_features == 230 and small.ip2.out_features == 90
    assert torch.allclose(small(x), m(x), atol=1e-5)


def test_removal_preserves_outputs_conv_chain():
    torch.manual_seed(0)
    m = LeNet5().eval()
    with torch.no_grad():
        m.conv1.weight[3].zero_()          # dead-in channel of conv1 (folds into unpadded conv2)
        m.conv2.weight[:, 7].zero_()       # dead-out channel 7 of conv1
        m.conv2.weight[11].zero_()         # dead-in channel of conv2 (folds into ip1 over its 16 columns)
        m.ip1.weight[:, 16 * 5:16 * 6].zero_()  # dead-out channel 5 of conv2
    x = torch.randn(8, 1, 28, 28)
    small, removed = remove_dead_units(m, ["conv1", "conv2", "ip1", "ip2"], m.activations)
    assert removed[:2] == [2, 2]
    assert small.ip1.in_features == 48 * 16
    assert torch.allclose(small(x), m(x), atol=1e-4)
