"""The native level kernels (``dhtgraph/_native/levels.c``) give the tensor path's results
bit for bit: build_hierarchy's per-level bookkeeping (which graphs go on, the stalled
test in float32) and the elementwise end of the information criterion."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from dhtgraph import _native
from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy import build as build_module
from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
from dhtgraph.selection import criteria as criteria_module
from dhtgraph.selection import ic_stopping, select_partition
from dhtgraph.selection.criteria import CRITERIA, information_criterion, penalty_table

needs_native = pytest.mark.skipif(
    _native.mode() == "off" or not _native.available("levels"),
    reason=f"native level kernels not in use here ({_native.status()})")
pytestmark = needs_native

_LONG, _BOOL = torch.long, torch.bool


def _bits(t: torch.Tensor) -> torch.Tensor:
    # The bit patterns of a float32 tensor (NaN payloads and -0.0 included).
    assert t.dtype == torch.float32
    return t.contiguous().view(torch.int32)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(_bits(a), _bits(b))


# ---------------------------------------------------------------- build bookkeeping

def _next_both(active, counts, batch, improved, level_cap, min_blocks, level, levels, stalled):
    """_next_active natively and on the tensor path, each on its own copy of the in-place
    arguments; returns both results with the updated (levels, stalled)."""
    out = []
    for native in (True, False):
        lv, sl = levels.clone(), stalled.clone()
        if native:
            found = build_module._next_active(active, counts, batch, improved, level_cap,
                                              min_blocks, level, lv, sl)
        else:
            with _native.disabled():
                found = build_module._next_active(active, counts, batch, improved, level_cap,
                                                  min_blocks, level, lv, sl)
        out.append((*found, lv, sl))
    return out


def _assert_same_step(native, tensor, active):
    (a_n, c_n, flags_n, lv_n, sl_n), (a_t, c_t, flags_t, lv_t, sl_t) = native, tensor
    assert flags_t is None  # the tensor path leaves the read to the loop
    assert flags_n == (bool(a_t.any()), bool(a_t.all()))
    for x, y in ((a_n, a_t), (c_n, c_t), (lv_n, lv_t), (sl_n, sl_t)):
        assert x.dtype == y.dtype and torch.equal(x, y)
    assert a_n.data_ptr() != active.data_ptr()  # a new tensor, as the tensor path's


def test_next_active_by_hand():
    # Four graphs: 0 stalls (merged 3 < 1000/256), 1 drops to min_blocks, 2 sat out the
    # level, 3 goes on; its rule says graph 3 no longer improves in the second case.
    active = torch.tensor([True, True, False, True])
    counts = torch.tensor([1000, 9, 50, 300])
    new = torch.tensor([997, 6, 50, 150])
    batch = torch.arange(4).repeat_interleave(new)
    level_cap = torch.tensor([8, 8, 8, 8])
    levels = torch.tensor([2, 2, 1, 2])
    stalled = torch.zeros(4, dtype=_BOOL)
    for improved, expect in ((None, [False, False, False, True]),
                             (torch.tensor([True, True, True, False]), [False] * 4)):
        native, tensor = _next_both(active, counts, batch, improved, level_cap, 6, 3, levels,
                                    stalled)
        _assert_same_step(native, tensor, active)
        next_active, new_counts, flags, lv, sl = native
        assert next_active.tolist() == expect
        assert new_counts.tolist() == new.tolist()
        assert lv.tolist() == [3, 3, 1, 3] and sl.tolist() == [True, False, False, False]
        assert flags == (any(expect), all(expect))
    # The level cap: graph 3 has had its levels.
    native, tensor = _next_both(active, counts, batch, None, torch.tensor([8, 8, 8, 3]), 6, 3,
                                levels, stalled)
    _assert_same_step(native, tensor, active)
    assert native[0].tolist() == [False] * 4 and native[2] == (False, False)


def test_the_stalled_product_is_float32(monkeypatch):
    # MIN_MERGED_FRACTION * counts is a float32 product of float32 operands, compared in
    # double. At fraction 1, 2**24 + 3 rounds to 2**24 + 4: a graph that merged nothing
    # stalls (in double it would not).
    monkeypatch.setattr(build_module, "MIN_MERGED_FRACTION", 1.0)
    c = (1 << 24) + 3
    counts, active = torch.tensor([c, c]), torch.tensor([True, True])
    nothing = torch.zeros(0, dtype=_LONG)  # no blocks left: counts - new = c
    native, tensor = _next_both(active, counts, nothing, None, torch.tensor([9, 9]), -1, 1,
                                torch.zeros(2, dtype=_LONG), torch.zeros(2, dtype=_BOOL))
    _assert_same_step(native, tensor, active)
    assert tensor[4].tolist() == [True, True]  # the case means something
    # At 0.1 (float32: 0.100000001…): 10 · 0.1f rounds to 1.0f, so merging 1 of 10 blocks
    # does not stall; the same product left in double (1.0000000149) would.
    monkeypatch.setattr(build_module, "MIN_MERGED_FRACTION", 0.1)
    counts, active = torch.tensor([10, 10, 10]), torch.ones(3, dtype=_BOOL)
    batch = torch.arange(3).repeat_interleave(torch.tensor([9, 10, 8]))
    native, tensor = _next_both(active, counts, batch, None, torch.tensor([9, 9, 9]), -1, 1,
                                torch.zeros(3, dtype=_LONG), torch.zeros(3, dtype=_BOOL))
    _assert_same_step(native, tensor, active)
    assert tensor[4].tolist() == [False, True, False]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_next_active_matches_the_tensor_path(data):
    b = data.draw(st.integers(1, 6))
    new = data.draw(st.lists(st.integers(0, 40), min_size=b, max_size=b))
    merged = data.draw(st.lists(st.one_of(st.integers(0, 60), st.integers(0, 1 << 40)),
                                min_size=b, max_size=b))
    counts = torch.tensor([n + m for n, m in zip(new, merged)])
    batch = torch.arange(b).repeat_interleave(torch.tensor(new))
    batch = batch[torch.randperm(batch.numel(), generator=torch.Generator().manual_seed(b))]
    bools = st.lists(st.booleans(), min_size=b, max_size=b)
    active = torch.tensor(data.draw(bools))
    improved = data.draw(st.one_of(st.none(), bools.map(torch.tensor)))
    level = data.draw(st.integers(0, 12))
    level_cap = torch.tensor(data.draw(st.lists(st.integers(0, 12), min_size=b, max_size=b)))
    min_blocks = data.draw(st.integers(-3, 45))
    fraction = data.draw(st.sampled_from([build_module.MIN_MERGED_FRACTION, 0.1, 1 / 3, 0.5,
                                          0.999, 1.0]) | st.floats(0, 2))
    levels = torch.tensor(data.draw(st.lists(st.integers(0, 12), min_size=b, max_size=b)))
    stalled = torch.tensor(data.draw(bools))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_module, "MIN_MERGED_FRACTION", fraction)
        native, tensor = _next_both(active, counts, batch, improved, level_cap, min_blocks,
                                    level, levels, stalled)
    _assert_same_step(native, tensor, active)


def test_first_active_matches_the_tensor_path():
    nodes = torch.tensor([1, 6, 7, 50176, 0, 7])
    level_cap = torch.tensor([0, 3, 3, 8, 0, 0])
    for min_blocks in (-1, 0, 6, 10 ** 6):
        active, flags = build_module._first_active(nodes, level_cap, min_blocks)
        with _native.disabled():
            expect, none = build_module._first_active(nodes, level_cap, min_blocks)
        assert none is None and torch.equal(active, expect)
        assert flags == (bool(expect.any()), bool(expect.all()))


@pytest.mark.parametrize("min_blocks, error, match", [
    (6.5, TypeError, r"Expected 'min_blocks' to be a non-negative int \(got float 6.5\)"),
    (True, TypeError, r"Expected 'min_blocks' to be a non-negative int \(got bool True\)"),
    (-1, ValueError, r"Expected 'min_blocks' to be a non-negative int \(got -1\)"),
])
def test_build_hierarchy_refuses_a_bad_min_blocks(min_blocks, error, match):
    with pytest.raises(error, match=match):
        build_hierarchy(torch.rand(16, 3), PixelGrid(1, 4, 4), min_blocks=min_blocks)


def test_a_min_blocks_beyond_int64_stops_every_graph_at_once():
    built = build_hierarchy(torch.rand(16, 3), PixelGrid(1, 4, 4), min_blocks=1 << 70)
    assert built.num_levels.tolist() == [0]


def _batch_of_graphs():
    # Graphs of different sizes: they stop at different levels.
    g = torch.Generator().manual_seed(3)
    sides = [(12, 10), (5, 7), (16, 16), (2, 2), (9, 14)]
    xs, edges, batch, pos, offset = [], [], [], [], 0
    for i, (h, w) in enumerate(sides):
        coarse = torch.rand(1, 3, 3, 3, generator=g) * 4
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                              align_corners=True)
        img = img + 0.05 * torch.rand(1, 3, h, w, generator=g)
        xs.append(img.permute(0, 2, 3, 1).reshape(-1, 3))
        edges.append(grid_edge_index(h, w, 1) + offset)
        batch.append(torch.full((h * w,), i))
        pos.append(PixelGrid(1, h, w).pos())
        offset += h * w
    return torch.cat(xs), torch.cat(edges, 1), torch.cat(batch), torch.cat(pos)


def _built_both(*args, **kwargs):
    native = build_hierarchy(*args, **kwargs)
    with _native.disabled():
        tensor = build_hierarchy(*args, **kwargs)
    return native, tensor


def _assert_same_build(a, b):
    assert a.hierarchy.num_blocks == b.hierarchy.num_blocks
    for t in range(a.hierarchy.num_levels):
        assert a.hierarchy.level(t) == b.hierarchy.level(t)
        assert torch.equal(a.levels[t].mean, b.levels[t].mean)
        assert torch.equal(a.levels[t].size, b.levels[t].size)
    for name in ("num_levels", "nodes_per_graph", "stalled"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("min_blocks", [6, 40])
def test_build_hierarchy_of_a_batch_is_the_same_natively(min_blocks):
    x, edges, batch, pos = _batch_of_graphs()
    native, tensor = _built_both(x, edges, batch, pos=pos, stop=ic_stopping("aicc", 5.0),
                                 min_blocks=min_blocks)
    _assert_same_build(native, tensor)
    assert len(set(native.num_levels.tolist())) > 1  # graphs stopped at different levels
    a, b = select_partition(native, "aicc", 5.0), select_partition(tensor, "aicc", 5.0)
    assert a.partition == b.partition and torch.equal(a.mean, b.mean)


def test_observers_see_the_same_and_keep_what_they_saw():
    x, edges, batch, pos = _batch_of_graphs()
    seen = {True: [], False: []}

    def observer(native):
        def call(partition, state, active):
            seen[native].append((active, active.clone()))
            level = len(seen[native])
            # An int tensor (converted) that stops graph 0 after level 2, or None.
            if level == 3:
                return None
            return torch.tensor([level != 2, 1, 1, 0, 1]).to(torch.int32)
        return call

    native = build_hierarchy(x, edges, batch, pos=pos, min_blocks=1, observer=observer(True))
    with _native.disabled():
        tensor = build_hierarchy(x, edges, batch, pos=pos, min_blocks=1,
                                 observer=observer(False))
    _assert_same_build(native, tensor)
    free = build_hierarchy(x, edges, batch, pos=pos, min_blocks=1)
    assert native.num_levels[0] == 2 < free.num_levels[0]  # the observer stopped graph 0
    assert len(seen[True]) == len(seen[False]) > 3
    for (kept, copy), (_, theirs) in zip(seen[True], seen[False]):
        assert torch.equal(kept, copy)  # no later level wrote into what the observer kept
        assert torch.equal(copy, theirs)


def test_the_stalled_graphs_and_the_nodes_are_the_same_natively():
    # Nothing merges after the first level (loops beat every edge): both graphs stall.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2 * 256, 3, generator=g)
    native, tensor = _built_both(x, PixelGrid(2, 16, 16), compactness=0.0, loop_default=1.0)
    _assert_same_build(native, tensor)
    assert native.stalled.tolist() == [True, True]
    assert native.nodes_per_graph.tolist() == [256, 256]  # not overwritten by the counts


# ---------------------------------------------------------------- the bindings' checks

def test_levels_start_refuses_bad_input():
    from dhtgraph._native.levels import levels_start

    nodes, cap = torch.tensor([5, 9]), torch.tensor([3, 3])
    active, flags = levels_start(nodes, cap, 6)
    assert active.tolist() == [False, True] and flags == (True, False)
    with pytest.raises(ValueError, match=r"Expected 'nodes' to be a torch.int64 tensor of "
                                         r"shape \(2,\) \(got torch.float32"):
        levels_start(nodes.float(), cap, 6)
    with pytest.raises(ValueError, match=r"Expected 'level_cap' .* shape \(2,\) \(got "
                                         r"torch.int64 of shape \(3,\)\)"):
        levels_start(nodes, torch.tensor([3, 3, 3]), 6)
    with pytest.raises(ValueError, match=r"Expected 'min_blocks' to be an int in the int64 "
                                         r"range \(got 9223372036854775808\)"):
        levels_start(nodes, cap, 1 << 63)


def _step_args(**changes):
    args = dict(active=torch.tensor([True, True]), counts=torch.tensor([10, 8]),
                batch=torch.tensor([0, 0, 1]), improved=None, level_cap=torch.tensor([5, 5]),
                min_blocks=0, level=1, fraction=1 / 256, levels=torch.zeros(2, dtype=_LONG),
                stalled=torch.zeros(2, dtype=_BOOL))
    args.update(changes)
    return args


@pytest.mark.parametrize("changes, error, match", [
    (dict(active=torch.tensor([1, 1])), ValueError, r"Expected 'active' to be a torch.bool"),
    (dict(counts=torch.tensor([10])), ValueError, r"Expected 'counts' .* shape \(2,\)"),
    (dict(improved=torch.tensor([1.0, 0.0])), ValueError, r"Expected 'improved' to be a "
                                                           r"torch.bool tensor"),
    (dict(level_cap=torch.tensor([5, 5], dtype=torch.int32)), ValueError,
     r"Expected 'level_cap' to be a torch.int64"),
    (dict(levels=torch.zeros(4, dtype=_LONG)[::2]), ValueError,
     r"Expected 'levels' to be contiguous \(it is updated in place\)"),
    (dict(stalled=torch.zeros(2, dtype=_LONG)), ValueError, r"Expected 'stalled' to be a "
                                                             r"torch.bool"),
    (dict(batch=torch.zeros(1, 3, dtype=_LONG)), ValueError,
     r"Expected 'batch' of shape \(K,\) \(got \(1, 3\)\)"),
    (dict(batch=torch.tensor([0.0, 1.0])), TypeError,
     r"Expected 'batch' to be an integer tensor \(got torch.float32\)"),
    (dict(level=-(1 << 64)), ValueError, r"Expected 'level' to be an int in the int64 range"),
    (dict(batch=torch.tensor([0, 2, 1])), IndexError,
     r"Expected every entry of 'batch' in \[0, 2\) \(an index out of range\)"),
    (dict(batch=torch.tensor([0, -1])), IndexError, r"Expected every entry of 'batch' in"),
])
def test_levels_step_refuses_bad_input(changes, error, match):
    from dhtgraph._native.levels import levels_step

    args = _step_args(**changes)
    levels, stalled = args["levels"].clone(), args["stalled"].clone()
    with pytest.raises(error, match=match):
        levels_step(**args)
    # Nothing updated in place before the error.
    assert torch.equal(args["levels"], levels) and torch.equal(args["stalled"], stalled)


def test_levels_step_reads_views_and_ints_of_other_types():
    from dhtgraph._native.levels import levels_step

    batch = torch.tensor([0, 1, 1, 0, 0, 1], dtype=torch.int32)[::2]  # converted: [0, 1, 0]
    wide = torch.tensor([[True, False], [True, False]])[:, 0]  # a non-contiguous view
    active, counts, flags = levels_step(**_step_args(batch=batch, improved=wide))
    assert counts.tolist() == [2, 1] and active.tolist() == [True, True] and flags == (True,
                                                                                       True)


# ---------------------------------------------------------------- information criterion

def _ic_both(*args, **kwargs):
    native = information_criterion(*args, **kwargs)
    with _native.disabled():
        tensor = information_criterion(*args, **kwargs)
    return native, tensor


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the native end of the IC (that the native path really ran)."""
    from dhtgraph._native import levels

    calls = []
    real = levels.information_criterion_end

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(levels, "information_criterion_end", spy)
    return calls


def test_information_criterion_by_hand(kernel_calls):
    var = torch.tensor([[0.01, 0.02, 0.03], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0],
                        [0.5, 0.5, 0.5], [0.1, 0.1, 0.1]])
    size = torch.tensor([10, 1, 300, 0, 2])
    table = penalty_table(400, "aicc")
    for penalties in (None, table):
        for num_pixels in (50176, torch.tensor([100, 100, 50176, 7, 3])):
            native, tensor = _ic_both(var, size, num_pixels, "aicc", 5.0, penalties=penalties)
            _same_bits(native, tensor)
            assert native[1] == native[3] == -math.inf
    assert kernel_calls == [True] * 4


def _random_var(k: int, g: torch.Generator) -> torch.Tensor:
    # Variances over 60 decades, with NaN, ±inf, -0.0 and negative entries.
    scale = torch.logspace(-30, 30, k)[torch.randperm(k, generator=g)].view(-1, 1)
    var = torch.rand(k, 3, generator=g) * scale
    pick = torch.randperm(k, generator=g)[:k // 10]
    var[pick[0::5], 0] = math.nan
    var[pick[1::5], 1] = math.inf
    var[pick[2::5], 2] = -0.0
    var[pick[3::5], 0] = -math.inf
    var[pick[4::5]] *= -1
    return var


@pytest.mark.parametrize("criterion", CRITERIA)
def test_information_criterion_matches_bit_for_bit(criterion, kernel_calls):
    g = torch.Generator().manual_seed(7)
    k = 60_000
    var = _random_var(k, g)
    table = penalty_table(1 << 16, criterion)
    inside = torch.randint(0, 1 << 16, (k,), generator=g)
    inside[:4] = torch.tensor([0, 1, 2, (1 << 16) - 1])
    beyond = inside.clone()
    beyond[::97] = torch.randint(1 << 16, 1 << 40, (beyond[::97].numel(),), generator=g)
    negative = inside.clone()
    negative[::101] = -torch.randint(1, 1 << 20, (negative[::101].numel(),), generator=g)
    per_block = torch.randint(0, 1 << 31, (k,), generator=g)
    for size in (inside, beyond, negative, inside.to(torch.int32)):
        for num_pixels in (1, 50176, (1 << 24) + 3, 987654321, 0, per_block,
                           per_block.to(torch.int32)):
            for penalties in (None, table):
                native, tensor = _ic_both(var, size, num_pixels, criterion, 2.5,
                                          penalties=penalties)
                _same_bits(native, tensor)
    # Every case ran natively; the sizes outside the table were computed instead (a
    # second call each).
    assert len(kernel_calls) == 4 * 7 * 2 + 2 * 7 and kernel_calls.count(False) == 2 * 7


def test_information_criterion_other_inputs_take_the_tensor_path(kernel_calls):
    g = torch.Generator().manual_seed(1)
    var = torch.rand(50, 2, generator=g)
    size = torch.randint(0, 300, (50,), generator=g)
    table = penalty_table(400, "bic")
    cases = [
        dict(size=size.to(torch.float32)),  # fractional sizes: the computed penalty
        dict(num_pixels=torch.full((50,), 300.0)),  # a float divisor (float32 result)
        dict(num_pixels=torch.tensor(300)),  # a 0-d divisor (broadcast)
        dict(num_pixels=300.0),
        dict(penalties=table.double()),  # a float64 table: float64 sums
    ]
    for case in cases:
        args = dict(var=var, size=size, num_pixels=300, criterion="bic", penalties=table)
        args.update(case)
        native, tensor = _ic_both(**args)
        assert native.dtype == tensor.dtype
        assert torch.equal(native, tensor)
    assert kernel_calls == []
    # Small integer dtypes without a table: native, with the computed penalty.
    native, tensor = _ic_both(var, size.to(torch.int16), 300, "bic")
    _same_bits(native, tensor)
    assert kernel_calls == [True]


def test_information_criterion_with_a_gradient_on_var():
    var = torch.rand(20, 3, requires_grad=True)
    size = torch.arange(20)
    native, tensor = _ic_both(var, size, 400, "aicc", 5.0, penalties=penalty_table(30))
    _same_bits(native, tensor)
    assert not native.requires_grad and not tensor.requires_grad


def test_information_criterion_end_refuses_bad_input():
    from dhtgraph._native.levels import information_criterion_end as end

    size, logdet = torch.tensor([3, 5]), torch.tensor([0.5, 1.5])
    table = penalty_table(8)[:8].clone()  # (the kept table may be longer)
    assert end(size, logdet, 9, penalties=table).shape == (2,)
    assert end(torch.tensor([3, 8]), logdet, 9, penalties=table) is None  # outside: None
    assert end(torch.tensor([-1, 3]), logdet, 9, penalties=table) is None
    for kwargs in (dict(), dict(penalties=table, penalty=logdet)):
        with pytest.raises(ValueError, match="Expected exactly one of 'penalties' and "
                                             "'penalty'"):
            end(size, logdet, 9, **kwargs)
    with pytest.raises(ValueError, match=r"Expected 'size' of shape \(K,\) \(got \(2, 1\)\)"):
        end(size.view(2, 1), logdet, 9, penalties=table)
    with pytest.raises(TypeError, match=r"Expected 'size' to be an integer tensor"):
        end(size.float(), logdet, 9, penalties=table)
    with pytest.raises(ValueError, match=r"Expected 'logdet' to be a torch.float32 tensor "
                                         r"of shape \(2,\) \(got torch.float64"):
        end(size, logdet.double(), 9, penalties=table)
    with pytest.raises(ValueError, match=r"Expected 'num_pixels' of shape \(2,\) \(got "
                                         r"\(3,\)\)"):
        end(size, logdet, torch.tensor([9, 9, 9]), penalties=table)
    with pytest.raises(ValueError, match=r"Expected 'num_pixels' to be an int in the int64"):
        end(size, logdet, 1 << 70, penalties=table)
    with pytest.raises(ValueError, match=r"Expected 'penalties' to be a float32 tensor of "
                                         r"shape \(L,\) \(got torch.float64"):
        end(size, logdet, 9, penalties=table.double())
    with pytest.raises(ValueError, match=r"Expected 'penalty' to be a torch.float32 tensor "
                                         r"of shape \(2,\)"):
        end(size, logdet, 9, penalty=torch.zeros(3))


def test_the_criterion_module_uses_the_levels_set(monkeypatch):
    # The gate asks for the 'levels' set, and only for it.
    asked = []
    real = _native.enabled
    monkeypatch.setattr(_native, "enabled",
                        lambda kernels, *tensors: asked.append(kernels) or real(kernels, *tensors))
    assert criteria_module._native_end(torch.tensor([3]), torch.tensor([0.5]), 9, None)
    assert asked == ["levels"]
    with _native.disabled():
        assert not criteria_module._native_end(torch.tensor([3]), torch.tensor([0.5]), 9,
                                               None)


def test_an_empty_penalty_table_computes_the_penalties():
    # (An empty table's address is NULL: the binding must not read it as "no table".)
    from dhtgraph._native.levels import information_criterion_end

    var = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [1.0, 2.0, 0.25], [0.3, 0.1, 0.7]])
    size = torch.tensor([0, 1, 2, 5])
    ic = information_criterion(var, size, 25, "aicc", 5.0, penalties=penalty_table(0, "aicc"))
    with _native.disabled():
        expect = information_criterion(var, size, 25, "aicc", 5.0)
    assert torch.equal(ic, expect) and ic[:2].tolist() == [-math.inf, -math.inf]
    assert information_criterion_end(size, var[:, 0], 25, penalties=torch.zeros(0)) is None
