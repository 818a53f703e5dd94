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


# --------------------------------------------------------------------- penalty tables
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _bits(t):
    # float32 bit patterns: NaNs (m = 1 for AICc and BIC) and signed zeros compare too.
    return t.contiguous().view(torch.int32)


def _old_penalty(size, criterion):
    # The 0.3.0 formula, verbatim.
    m = size.to(torch.float32) + 1e-8
    k = 1.0 / (2 * m - 2 * m.sqrt())
    if criterion == "aic":
        return 2 * k
    if criterion == "aicc":
        return 2 * k + 2 * (k.pow(2) + k) / (m - k - 1)
    if criterion == "bic":
        return m.log() * k
    return m.log().add(1) * k


def _old_information_criterion(var, size, num_pixels, criterion, iota):
    # The 0.3.0 function, verbatim.
    var = var.detach().to(torch.float32)
    m = size.to(torch.float32)
    fit = (m / num_pixels) * (2 * math.pi * var).prod(-1).add(float(iota)).log()
    ic = (fit + _old_penalty(size, criterion)).neg()
    return torch.where(size > 1, ic, torch.full_like(ic, -math.inf))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("criterion", ["aic", "aicc", "bic", "cic"])
def test_penalty_table_is_the_formula_bit_for_bit(criterion, device):
    # Every integer size below the table's length, in a shuffled order, in short slices at
    # every offset (vectorised bodies and scalar tails) and as int32: the table's entry is
    # the direct formula's value.
    from dhtgraph.selection.criteria import PENALTY_TABLE_LIMIT, penalty_table

    g = torch.Generator().manual_seed(0)
    n = PENALTY_TABLE_LIMIT
    table = penalty_table(n, criterion, device)
    assert table.dtype == torch.float32 and table.numel() >= n and table.device.type == device
    sizes = torch.randperm(n, generator=g).to(device)
    assert torch.equal(_bits(penalty(sizes, criterion)), _bits(table[sizes]))
    assert torch.equal(_bits(penalty(sizes, criterion)), _bits(_old_penalty(sizes, criterion)))
    some = torch.randint(0, 5000, (200,), generator=g).to(device)
    for length in range(1, 40):
        for offset in range(8):
            s = some[offset:offset + length]
            assert torch.equal(_bits(penalty(s, criterion)), _bits(table[s]))
            assert torch.equal(_bits(penalty(s.int(), criterion)), _bits(table[s]))


@pytest.mark.parametrize("criterion", ["aic", "aicc", "bic", "cic"])
def test_penalty_of_large_sizes_depends_on_the_size_alone(criterion):
    # Beyond any table (sizes up to 2**40, where float32 rounds m): the formula's value of
    # a size does not depend on where it stands — what makes the table exact.
    g = torch.Generator().manual_seed(1)
    sizes = torch.randint(0, 2**40, (100_000,), generator=g)
    sizes[:5] = torch.tensor([0, 1, 2, 2**24 + 1, 2**31 - 1])
    perm = torch.randperm(sizes.numel(), generator=g)
    whole = penalty(sizes, criterion)
    assert torch.equal(_bits(whole[perm]), _bits(penalty(sizes[perm], criterion)))
    assert torch.equal(_bits(whole[7:20]), _bits(penalty(sizes[7:20], criterion)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("criterion", ["aic", "aicc", "bic", "cic"])
@pytest.mark.parametrize("pixels", ["int", "long", "double"])
def test_information_criterion_with_a_table_equals_the_formula(criterion, pixels, device):
    # The IC with and without the table and the 0.3.0 function agree bit for bit, on
    # variances with zeros, NaN, infinities and negative values, sizes 0 and 1 included.
    from dhtgraph.selection.criteria import penalty_table

    g = torch.Generator().manual_seed(2)
    k, n = 5000, 3000
    var = torch.rand(k, 3, generator=g) ** 4
    special = torch.tensor([0.0, float("nan"), math.inf, -0.5, -1e-3, 1e-30])
    var.view(-1)[torch.randint(0, 3 * k, (300,), generator=g)] = special[
        torch.randint(0, len(special), (300,), generator=g)]
    size = torch.randint(0, n + 1, (k,), generator=g)
    size[:4] = torch.tensor([0, 1, 2, n])
    num_pixels = {"int": n, "long": torch.randint(n, 2 * n, (k,), generator=g),
                  "double": torch.randint(n, 2 * n, (k,), generator=g).double()}[pixels]
    var, size = var.to(device), size.to(device)
    if isinstance(num_pixels, torch.Tensor):
        num_pixels = num_pixels.to(device)
    table = penalty_table(2 * n + 1, criterion, device)
    for iota in (0.05, 5.0):
        want = _old_information_criterion(var, size, num_pixels, criterion, iota)
        direct = information_criterion(var, size, num_pixels, criterion, iota)
        tabled = information_criterion(var, size, num_pixels, criterion, iota, penalties=table)
        assert want.dtype == direct.dtype == tabled.dtype
        bits = torch.int32 if want.dtype == torch.float32 else torch.int64
        assert torch.equal(want.view(bits), direct.view(bits))
        assert torch.equal(want.view(bits), tabled.view(bits))
        assert bool((tabled[size <= 1] == -math.inf).all())


def test_information_criterion_keeps_the_formula_for_other_sizes():
    # Fractional sizes (NaN: −∞ as before), int32 sizes, sizes outside the table (CPU):
    # the values of the formula; no gradient into the variance either way.
    from dhtgraph.selection.criteria import penalty_table

    g = torch.Generator().manual_seed(3)
    var = torch.rand(6, 2, generator=g, requires_grad=True)
    table = penalty_table(10, "aicc")
    cases = [torch.tensor([0.5, 1.0, 1.5, 2.0, float("nan"), 7.25]),
             torch.tensor([0, 1, 2, 3, 9, 4], dtype=torch.int32),
             torch.tensor([2, 3, table.numel() + 5, 4, 1, 0]),
             torch.tensor([2, 3, -1, 4, 1, 0]),
             torch.tensor([2, 3, 5, 4, 1, 0], dtype=torch.int16)]
    for size in cases:
        want = _old_information_criterion(var, size, 16, "aicc", 5.0)
        got = information_criterion(var, size, 16, "aicc", 5.0, penalties=table)
        assert not got.requires_grad
        assert torch.equal(_bits(want), _bits(got)), size


def test_penalty_table_is_kept_and_grown(monkeypatch):
    from dhtgraph.selection import criteria

    monkeypatch.setattr(criteria, "_PENALTY_TABLES", {})
    monkeypatch.setattr(criteria, "PENALTY_TABLE_LIMIT", 1000)
    first = criteria.penalty_table(100, "bic")
    assert first.numel() == 100 and criteria.penalty_table(50, "BIC") is first
    assert criteria.penalty_table(100, "bic", torch.device("cpu")) is first
    grown = criteria.penalty_table(101, "bic")
    assert grown.numel() == 200 and criteria.penalty_table(150, "bic") is grown
    assert torch.equal(_bits(grown[:100]), _bits(first))
    assert criteria.penalty_table(900, "bic").numel() == 900
    assert criteria.penalty_table(950, "bic").numel() == 1000  # doubling, up to the limit
    huge = criteria.penalty_table(1500, "bic")  # beyond the limit: built, not kept
    assert huge.numel() == 1500 and criteria.penalty_table(10, "bic").numel() == 1000
    assert criteria.penalty_table(0, "aic").numel() == 0
    with torch.inference_mode():
        kept = criteria.penalty_table(10, "cic")
    assert not kept.is_inference() and not kept.requires_grad


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3", None])
def test_penalty_table_refuses_bad_lengths(bad):
    from dhtgraph.selection.criteria import penalty_table

    with pytest.raises(ValueError, match="'length'"):
        penalty_table(bad)
    with pytest.raises(ValueError, match="'criterion'"):
        penalty_table(3, "aik")
