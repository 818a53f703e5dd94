"""Information criteria (spec §5)."""

import math

import pytest
import torch

from dhtgraph.selection.criteria import information_criterion, penalty


def test_penalties_hand_values():
    m = torch.tensor([4.0])
    k = 1 / (2 * 4 - 2 * 2)  # 0.25
    assert penalty(m, "aic").item() == pytest.approx(2 * k)
    assert penalty(m, "aicc").item() == pytest.approx(2 * k + 2 * (k * k + k) / (4 - k - 1))
    assert penalty(m, "bic").item() == pytest.approx(k * math.log(4))
    assert penalty(m, "cic").item() == pytest.approx(k * (math.log(4) + 1))


def test_information_criterion_hand_value():
    var = torch.tensor([[0.1, 0.2]])
    size = torch.tensor([4])
    fit = (4 / 16) * math.log(5 + (2 * math.pi * 0.1) * (2 * math.pi * 0.2))
    expected = -(fit + 0.5)
    got = information_criterion(var, size, 16, "aic", iota=5.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_single_pixels_score_minus_infinity():
    got = information_criterion(torch.zeros(2, 3), torch.tensor([1, 2]), 16, "aicc")
    assert got[0] == -math.inf and torch.isfinite(got[1])


def test_larger_iota_favours_smaller_blocks():
    var = torch.full((2, 3), 0.05)
    size = torch.tensor([10, 40])
    small = information_criterion(var, size, 100, iota=1.0)
    large = information_criterion(var, size, 100, iota=50.0)
    assert (large[0] - large[1]) > (small[0] - small[1])


@pytest.mark.parametrize("bad", ["aik", "", None, 3])
def test_unknown_criterion_is_an_error(bad):
    with pytest.raises(ValueError, match="'criterion'"):
        information_criterion(torch.zeros(1, 1), torch.tensor([2]), 4, bad)


def test_bad_iota_is_an_error():
    with pytest.raises(ValueError, match="'iota'"):
        information_criterion(torch.zeros(1, 1), torch.tensor([2]), 4, iota=0.0)


@pytest.mark.parametrize("bad, error", [("5", TypeError), (True, TypeError), (None, TypeError),
                                        (0, ValueError), (-1.0, ValueError),
                                        (float("inf"), ValueError), (float("nan"), ValueError)])
def test_one_iota_check_everywhere(bad, error):
    from dhtgraph.hierarchy.grid import pixel_state
    from dhtgraph.nn import DHTConfig
    from dhtgraph.selection.criteria import check_iota
    from dhtgraph.selection.select import InformationSelector

    message = "Expected 'iota' to be a positive finite number"
    with pytest.raises(error, match=message):
        check_iota(bad)
    with pytest.raises(error, match=message):
        information_criterion(torch.zeros(1, 1), torch.tensor([2]), 4, iota=bad)
    with pytest.raises(error, match=message):
        InformationSelector(pixel_state(torch.zeros(4, 1), 1), 1, 4, iota=bad)
    with pytest.raises(error, match=message):
        DHTConfig(iota=bad)
    assert check_iota(5) == 5.0 and isinstance(check_iota(5), float)


@pytest.mark.parametrize("make", [lambda: torch.tensor(3.0), lambda: torch.tensor(3),
                                  lambda: torch.tensor(3.0, dtype=torch.float64),
                                  lambda: torch.tensor(3.0, requires_grad=True)])
def test_iota_as_a_0_dim_tensor_equals_the_number(make):
    # Issue 8: iota=torch.tensor(3.) raised a TypeError.
    import dhtgraph
    from dhtgraph.selection.criteria import check_iota

    assert check_iota(make()) == 3.0 and isinstance(check_iota(make()), float)
    image = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(4))
    assert dhtgraph.tokenize(image, iota=make()).partition == dhtgraph.tokenize(image, iota=3.0).partition
    assert dhtgraph.DHTTokenizer(encoder="rgb", iota=make()).config.iota == 3.0


@pytest.mark.parametrize("bad, error, message", [
    (torch.tensor([3.0]), TypeError, r"0-dimensional real tensor \(got Tensor of shape \(1,\)"),
    (torch.tensor(True), TypeError, "dtype torch.bool"),
    (torch.tensor(1 + 2j), TypeError, "dtype torch.complex64"),
    (torch.tensor(0.0), ValueError, r"positive finite number \(got 0.0\)"),
    (torch.tensor(float("inf")), ValueError, r"positive finite number \(got inf\)"),
    (torch.empty((), device="meta"), TypeError, "meta tensor"),
])
def test_bad_iota_tensors_are_refused_by_name(bad, error, message):
    import dhtgraph

    with pytest.raises(error, match="'iota'.*" + message):
        dhtgraph.tokenize(torch.rand(3, 8, 8), iota=bad)
