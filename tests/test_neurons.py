import torch
from torch.nn.utils import prune

from compression.neurons import dead_units, drop_dead_connections, links, remove_dead_units
from compression.specs import specs_of
from experiments.models.lenet import LeNet300, LeNet5


def _links(m):
    safe, skipped = links(m, specs_of(m))
    return safe


def test_dead_unit_counts_hand_made():
    # ip1 row 0 all zero -> unit 0 of ip1 dead-in; ip2 column 2 all zero -> unit 2 of ip1 dead-out
    m = LeNet300()
    with torch.no_grad():
        m.ip1.weight[0].zero_()
        m.ip2.weight[:, 2].zero_()
        m.ip2.weight[5].zero_()
    d = dead_units(m, specs_of(m), _links(m))
    assert d["ip1"] == {"units": 300, "dead_in": 1, "dead_out": 1}
    assert d["ip2"] == {"units": 100, "dead_in": 1, "dead_out": 0}
    assert "dead_out" not in d["ip3"]  # the output layer feeds nothing


def test_removal_preserves_outputs_fc_chain():
    torch.manual_seed(0)
    m = LeNet300().eval()
    with torch.no_grad():
        m.ip1.weight[:40].zero_()          # 40 dead-in units (constant relu(bias), folded into ip2's bias)
        m.ip1.bias[:20].fill_(0.7)         # half of them have a non-zero constant output
        m.ip2.weight[:, 100:130].zero_()   # 30 dead-out units of ip1
        m.ip2.weight[:10].zero_()          # 10 dead-in units of ip2
    x = torch.randn(16, 1, 28, 28)
    small, removed = remove_dead_units(m, _links(m))
    assert removed == {"ip1": 70, "ip2": 10}
    assert small.ip1.out_features == 230 and small.ip2.in_features == 230 and small.ip2.out_features == 90
    assert torch.allclose(small(x), m(x), atol=1e-5)


def _lenet5_with_dead_channels():
    torch.manual_seed(0)
    m = LeNet5().eval()
    with torch.no_grad():
        m.conv1.weight[3].zero_()          # dead-in channel of conv1 (folds into unpadded conv2)
        m.conv2.weight[:, 7].zero_()       # dead-out channel 7 of conv1
        m.conv2.weight[11].zero_()         # dead-in channel of conv2 (folds into ip1 over its 16 columns)
        m.ip1.weight[:, 16 * 5:16 * 6].zero_()  # dead-out channel 5 of conv2
    return m, torch.randn(8, 1, 28, 28)


def test_removal_preserves_outputs_conv_chain():
    m, x = _lenet5_with_dead_channels()
    small, removed = remove_dead_units(m, _links(m))
    assert [removed["conv1"], removed["conv2"]] == [2, 2]
    assert small.ip1.in_features == 48 * 16
    assert torch.allclose(small(x), m(x), atol=1e-4)


def _nonzeros(m):
    return [int((layer.weight != 0).sum()) for layer in m]


def test_drop_dead_connections_hand_count_fc():
    # ip1 unit 2 dead-out (ip2 column 2 zero): its 784 incoming weights go.
    # ip2 unit 5 dead-in (row 5 zero): its 10 outgoing ip3 weights go, relu(b) folded into ip3's bias.
    torch.manual_seed(0)
    m = LeNet300().eval()
    with torch.no_grad():
        m.ip2.weight[:, 2].zero_()
        m.ip2.weight[5].zero_()
        m.ip2.bias[5] = 0.5
    x = torch.randn(8, 1, 28, 28)
    ref = m(x)
    b3 = m.ip3.bias.detach().clone() + 0.5 * m.ip3.weight.detach()[:, 5]
    before = _nonzeros([m.ip1, m.ip2, m.ip3])
    dropped = drop_dead_connections(m, _links(m))
    assert dropped == {"ip1": 784, "ip2": 0, "ip3": 10}
    assert [b - a for b, a in zip(before, _nonzeros([m.ip1, m.ip2, m.ip3]))] == list(dropped.values())
    assert torch.allclose(m.ip3.bias, b3)
    assert torch.allclose(m(x), ref, atol=1e-5)
    assert prune.is_pruned(m.ip1) and not m.ip1.weight_mask[2].any()
    assert drop_dead_connections(m, _links(m)) == {"ip1": 0, "ip2": 0, "ip3": 0}  # a fixed point


def test_drop_dead_connections_cascades_and_composes_with_pruning():
    # Every ip3 weight from ip2 unit 0 pruned -> unit 0 dead-out -> its ip2 row dropped -> ip1
    # units feeding only it become dead-out in turn (one pass would miss them).
    torch.manual_seed(1)
    m = LeNet300().eval()
    prune.random_unstructured(m.ip2, "weight", amount=0.0)  # an existing (all-ones) pruning mask
    with torch.no_grad():
        m.ip2.weight_orig[1:, :4] = 0.0   # ip1 units 0..3 feed only ip2 unit 0
        m.ip3.weight[:, 0] = 0.0
    x = torch.randn(8, 1, 28, 28)
    ref = m(x)
    dropped = drop_dead_connections(m, _links(m))
    assert dropped == {"ip1": 4 * 784, "ip2": 300, "ip3": 0}
    assert torch.allclose(m(x), ref, atol=1e-5)
    assert isinstance(m.ip2._forward_pre_hooks[next(iter(m.ip2._forward_pre_hooks))], prune.PruningContainer)


def test_drop_dead_connections_conv_chain_outputs_unchanged():
    m, x = _lenet5_with_dead_channels()
    ref = m(x)
    dropped = drop_dead_connections(m, _links(m))
    # conv1: channel 7's 25 weights. conv2: first input channel 3 (folded) in the 49 rows that are
    # not already zero (49 x 25), then dead-out channel 5's remaining 18 input channels (18 x 25).
    # ip1: the 16 columns of conv2 channel 11 (folded), 500 rows.
    assert dropped == {"conv1": 25, "conv2": 49 * 25 + 18 * 25, "ip1": 500 * 16, "ip2": 0}
    assert torch.allclose(m(x), ref, atol=1e-4)
    d = dead_units(m, specs_of(m), _links(m))
    assert all(d[n]["dead_in"] == d[n]["dead_out"] for n in ("conv1", "conv2", "ip1"))
