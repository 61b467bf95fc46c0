import pytest
import torch
from torch import nn

from compression.prune import (MagnitudeThreshold, block_keep_counts, current_mask, density, magnitude_prune,
                               make_permanent, prune_to, resolve_per_layer, schedule_densities)


def _linear(weights):
    m = nn.Linear(len(weights[0]), len(weights), bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights, dtype=torch.float32))
    return m


def test_quality_mask_hand_computed():
    # w = [1, -2, 3, -4]: mean 0... population std = sqrt((1+4+9+16)/4 - (-0.5)^2) = sqrt(7.5-0.25) = 2.6926
    # quality 1.0 -> threshold 2.6926: keep |w| >= 2.69 -> [0, 0, 1, 1]
    m = _linear([[1.0, -2.0, 3.0, -4.0]])
    magnitude_prune(m, quality=1.0)
    assert m.weight_mask.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    assert m.weight.tolist() == [[0.0, 0.0, 3.0, -4.0]]


def test_density_keeps_exact_count_hand_computed():
    # 8 weights, density 0.25 -> keep round(2) largest magnitudes: -7 and 6
    m = _linear([[1.0, -7.0, 2.0, 0.5], [6.0, -3.0, 0.1, 4.0]])
    magnitude_prune(m, density=0.25)
    assert m.weight_mask.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert density(m) == 0.25


def test_per_block_density_holds_in_each_row_block_hand_computed():
    # two blocks of one row each: over the whole tensor density 0.5 keeps 7, 6, 4, -3 (all of block 1 but 4);
    # per block it keeps the two largest of each: -7, 2 and 6, 4
    m = _linear([[1.0, -7.0, 2.0, 0.5], [6.0, -3.0, 0.1, 4.0]])
    counts = block_keep_counts(m, "weight", 2, density=0.5)
    assert counts == [2, 2]
    prune_to(m, "weight", m.weight.detach().abs(), counts)
    assert m.weight_mask.tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    # a second step composes per block: survivors only, never revived
    counts = block_keep_counts(m, "weight", 2, density=0.25)
    assert counts == [1, 1]
    prune_to(m, "weight", m.weight.detach().abs(), counts)
    assert m.weight_mask.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="equal blocks"):
        block_keep_counts(m, "weight", 3, density=0.5)


def test_repeated_pruning_composes_and_never_revives():
    torch.manual_seed(0)
    m = nn.Linear(50, 40)
    magnitude_prune(m, density=0.5)
    first = current_mask(m).clone()
    # change the surviving weights so that a previously pruned position would now be large
    with torch.no_grad():
        m.weight_orig.mul_(0.01)
        m.weight_orig[~first] = 100.0
    magnitude_prune(m, density=0.25)
    second = current_mask(m)
    assert not (second & ~first).any()  # nothing revived
    assert int(second.sum()) == 500  # 25% of 2000 exactly
    assert density(m) == 0.25


def test_quality_second_round_uses_survivors_std():
    torch.manual_seed(1)
    m = nn.Linear(100, 100)
    magnitude_prune(m, quality=0.5)
    d1 = density(m)
    magnitude_prune(m, quality=0.5)
    assert density(m) < d1  # survivors' std is larger, so the threshold grows


def test_pruned_weights_stay_zero_under_sgd_momentum_weight_decay():
    torch.manual_seed(0)
    m = nn.Linear(20, 10)
    magnitude_prune(m, density=0.3)
    mask = current_mask(m).clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(20):
        opt.zero_grad()
        loss = m(torch.randn(8, 20)).pow(2).sum()
        loss.backward()
        # no gradient reaches a pruned connection
        assert (m.weight_orig.grad[~mask] == 0).all()
        opt.step()
    assert (m.weight[~mask] == 0).all()
    assert (m.weight[mask] != 0).all()
    assert current_mask(m).equal(mask)


def test_make_permanent_keeps_zeros_and_returns_mask():
    m = _linear([[1.0, -7.0, 2.0, 0.5]])
    magnitude_prune(m, density=0.5)
    mask = make_permanent(m)
    assert not hasattr(m, "weight_orig")
    assert mask.tolist() == [[False, True, True, False]]
    assert m.weight.tolist() == [[0.0, -7.0, 2.0, 0.0]]


def test_density_reported_equals_count_of_nonzeros():
    torch.manual_seed(3)
    m = nn.Linear(33, 17)
    magnitude_prune(m, density=0.13)
    assert density(m) == float((m.weight != 0).sum()) / m.weight.numel()
    assert int((m.weight != 0).sum()) == round(0.13 * 33 * 17)


def test_resolve_per_layer_star_default():
    assert resolve_per_layer({"*": 0.1, "ip3": 0.26}, ["ip1", "ip2", "ip3"]) == {"ip1": 0.1, "ip2": 0.1, "ip3": 0.26}
    with pytest.raises(KeyError, match="ip9"):
        resolve_per_layer({"ip9": 0.1, "*": 1.0}, ["ip1"])
    with pytest.raises(KeyError, match="no value"):
        resolve_per_layer({"ip1": 0.1}, ["ip1", "ip2"])


def test_schedule_reaches_target():
    s = schedule_densities(0.08, 3)
    assert s[-1] == pytest.approx(0.08)
    assert s[0] == pytest.approx(0.08 ** (1 / 3))  # 0.431
    assert all(a > b for a, b in zip(s, s[1:]))


def test_cubic_schedule_follows_zhu_gupta_eq1():
    # s_r = 0.9 * (1 - (1 - r/5)^3), d_r = 1 - s_r: 1 - 0.9 * 0.488, 1 - 0.9 * 0.784, 1 - 0.9 * 0.936, 1 - 0.9 * 0.992, 0.1
    s = schedule_densities(0.1, 5, "cubic")
    assert s == pytest.approx([0.5608, 0.2944, 0.1576, 0.1072, 0.1])
    assert schedule_densities(0.1, 1, "cubic") == pytest.approx([0.1])
    with pytest.raises(ValueError, match="geometric or cubic"):
        schedule_densities(0.1, 3, "linear")


def test_method_validates_arguments():
    with pytest.raises(ValueError):
        MagnitudeThreshold()
    with pytest.raises(ValueError):
        magnitude_prune(nn.Linear(2, 2), density=1.5)


def test_a_spec_whose_blocks_do_not_split_its_rows_is_refused():
    from compression.specs import LayerSpec, SpecError, check_specs

    lstm = nn.LSTM(3, 5)  # weight_hh_l0: 20 rows, the four gates of 5
    check_specs(lstm, [LayerSpec("hh", "", "weight_hh_l0", kind="recurrent", blocks=4)])
    with pytest.raises(SpecError, match="blocks=3"):
        check_specs(lstm, [LayerSpec("hh", "", "weight_hh_l0", kind="recurrent", blocks=3)])
