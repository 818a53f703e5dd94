"""The native grid kernels (``dhtgraph/_native/grid.c``) give bit for bit the tensors of
the tensor implementation: the grid level's argmax (both tie rules), sizes, boxes and
constant channels, and the compactness' union masses and perimeters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtgraph import _native
from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy import grid as G
from dhtgraph.hierarchy.affinity import (_union_mass_and_perimeter, compactness_potential,
                                         edge_affinity)
from dhtgraph.hierarchy.contraction import quantize_potential
from dhtgraph.testing import torch_images

needs_native = pytest.mark.skipif(
    _native.mode() == "off" or not _native.available("grid"),
    reason=f"native grid kernels not in use here ({_native.status()})")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FIELDS = ("mean", "var", "size", "bbox", "edge_index", "batch")


def _features(b, h, w, d=3, seed=0, levels=None, dtype=torch.float32, channel_first=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b * h * w, d, generator=g, dtype=torch.float64) * 3
    if levels:  # few distinct values: many exact ties and plateaus
        x = (x * levels).floor() / levels
    x = x.to(dtype)
    return x.t().contiguous().t() if channel_first else x.contiguous()


def _both(fn):
    got = fn()
    with _native.disabled():
        expected = fn()
    return got, expected


def _contract(x, b, h, w, **kw):
    batch = torch.arange(b, device=x.device).repeat_interleave(h * w) if b > 1 else None
    return G.grid_contraction(G.pixel_state(x, b, batch), b, h, w, **kw)


def _assert_same_level(got, expected):
    assert got.partition == expected.partition
    assert torch.equal(got.choice, expected.choice)
    for name in FIELDS:
        a, e = getattr(got.state, name), getattr(expected.state, name)
        assert a.dtype == e.dtype and torch.equal(a, e), name


CASES = [  # (b, h, w, levels): textures, ties, plateaus, 1-pixel-wide images, batches
    (1, 7, 9, None), (1, 16, 16, 1), (2, 5, 6, 2), (3, 10, 1, 3), (1, 1, 11, None),
    (1, 1, 2, None), (1, 2, 1, 1), (4, 3, 3, 2), (1, 33, 65, 4), (2, 1, 17, 1),
]


@needs_native
@pytest.mark.parametrize("b,h,w,levels", CASES)
@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("compactness", [0.0, 0.1])
def test_grid_level_native_equals_tensor_path(b, h, w, levels, tie_break, weights,
                                             compactness):
    x = _features(b, h, w, seed=b * 100 + h * w, levels=levels)
    got, expected = _both(lambda: _contract(x, b, h, w, tie_break=tie_break, weights=weights,
                                            compactness=compactness))
    _assert_same_level(got, expected)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channel_first", [True, False])
@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
def test_dtypes_and_layouts(dtype, channel_first, tie_break):
    x = _features(2, 9, 8, d=4, seed=3, levels=2, dtype=dtype, channel_first=channel_first)
    got, expected = _both(lambda: _contract(x, 2, 9, 8, tie_break=tie_break))
    _assert_same_level(got, expected)


@needs_native
def test_constant_image_is_one_block_per_image():
    x = torch.full((2 * 6 * 7, 3), 0.25)
    for tie_break in ("reference", "hashed"):
        got, expected = _both(lambda: _contract(x, 2, 6, 7, tie_break=tie_break))
        _assert_same_level(got, expected)
        assert got.partition.num_blocks == 2
        assert torch.equal(got.state.bbox, torch.tensor([[0, 0, 5, 6], [0, 0, 5, 6]]))
        assert torch.equal(got.state.var, torch.zeros(2, 3))


@needs_native
def test_signed_zeros_are_equal_and_nan_differs():
    # -0.0 == 0.0 is a plateau (hash dropped, block constant); NaN equals nothing.
    x = torch.zeros(4 * 5, 2)
    x[::2, 0] = -0.0
    x[7, 1] = float("nan")
    x[12] = float("nan")
    for tie_break in ("reference", "hashed"):
        for weights in ("size", "argmax_edge"):
            got, expected = _both(lambda: _contract(x, 1, 4, 5, tie_break=tie_break,
                                                    weights=weights))
            assert got.partition == expected.partition
            assert torch.equal(got.choice, expected.choice)
            for name in ("size", "bbox", "edge_index", "batch"):
                assert torch.equal(getattr(got.state, name), getattr(expected.state, name))
            for name in ("mean", "var"):  # NaN == NaN for the comparison
                assert torch.equal(getattr(got.state, name).nan_to_num(7.0),
                                   getattr(expected.state, name).nan_to_num(7.0))


@needs_native
def test_argmax_kernel_matches_directions_and_the_hash_of_wide_rows():
    # A 2×40000 image: local indices up to 8·10⁴ (the 32-bit hash against tie_hash's int64),
    # all potentials tied, so every choice is the hash's (hashed) or the index's (reference).
    from dhtgraph._native.grid import grid_argmax

    b, h, w = 1, 2, 40000
    x = _features(b, h, w, seed=1, levels=None)
    for tie_break in ("reference", "hashed"):
        horizontal = torch.full((b, h, w - 1), 12345.5 / 65535)
        vertical = torch.full((b, h - 1, w), 12345.5 / 65535)
        code, choice = grid_argmax(horizontal, vertical, b, h, w, tie_break == "hashed", x)
        with _native.disabled():
            assert torch.equal(quantize_potential(horizontal, torch.int32),
                               torch.full((b, h, w - 1), 12345, dtype=torch.int32))
            expected = G._grid_argmax(horizontal, vertical, tie_break, x.view(b, h, w, 3))
        assert code.dtype == torch.int8 and torch.equal(code, expected)
        offsets = torch.tensor([-w, -1, 1, w])
        assert torch.equal(choice, torch.arange(b * h * w) + offsets[code.view(-1).long()])


@needs_native
def test_blocks_and_constant_kernels_match_the_tensor_pieces():
    from dhtgraph._native.grid import grid_blocks, grid_constant

    b, h, w = 3, 5, 7
    x = _features(b, h, w, seed=4, levels=1)
    level = _contract(x, b, h, w)
    labels, k = level.partition.labels, level.partition.num_blocks
    counts, bbox, batch = grid_blocks(labels, k, b, h, w)
    with _native.disabled():
        boxes, images = G._grid_boxes(labels, k, b, h, w,
                                      torch.arange(b).repeat_interleave(h * w))
        code = G._grid_argmax(*G._grid_potentials(x.view(b, h, w, 3), 0.1), "reference",
                              x.view(b, h, w, 3))
        constant = G._constant_on_choice(G._choice_differs(x, code), labels, k)
    assert torch.equal(counts, torch.bincount(labels, minlength=k))
    assert torch.equal(bbox, boxes) and torch.equal(batch, images)
    assert torch.equal(grid_constant(x, level.choice, labels, k), constant)


@pytest.mark.parametrize("device", DEVICES)
def test_grid_level_on_every_device_equals_the_cpu_native_level(device):
    # The CPU's native level against the tensor path: on the CPU with the kernels off,
    # on another device its own tensor path.
    x = _features(2, 6, 9, seed=5, levels=2)
    expected = _contract(x, 2, 6, 9, tie_break="hashed")
    if device == "cpu":
        if not _native.available("grid"):
            pytest.skip("the grid kernels are not in use here: the CPU case would compare "
                        "the tensor path with itself")
        with _native.disabled():
            got = _contract(x, 2, 6, 9, tie_break="hashed")
    else:
        got = _contract(x.to(device), 2, 6, 9, tie_break="hashed")
    assert got.partition.num_blocks == expected.partition.num_blocks
    assert torch.equal(got.choice.cpu(), expected.choice)
    for name in FIELDS:
        assert torch.equal(getattr(got.state, name).cpu(), getattr(expected.state, name)), name


@needs_native
@settings(max_examples=40)
@given(image=torch_images(batched=True, max_side=9), tie_break=st.sampled_from(
    ["reference", "hashed"]), weights=st.sampled_from(["size", "argmax_edge"]),
    quantize=st.booleans())
def test_property_native_grid_level_equals_tensor_path(image, tie_break, weights, quantize):
    b, c, h, w = image.shape
    if h * w < 2:
        return
    x = image.double() if image.dtype == torch.float64 else image.float()
    if quantize:  # exact ties and plateaus
        x = (x * 3).round() / 3
    x = x.permute(0, 2, 3, 1).reshape(b * h * w, c)
    got, expected = _both(lambda: _contract(x, b, h, w, tie_break=tie_break, weights=weights))
    _assert_same_level(got, expected)


def test_grid_contraction_refuses_images_of_one_pixel_and_wrong_sizes():
    x = torch.rand(3, 2)
    with pytest.raises(ValueError, match="'state' of 3 images of 1×1 ≥ 2 pixels"):
        G.grid_contraction(G.pixel_state(x, 3), 3, 1, 1)
    with pytest.raises(ValueError, match="'state' of 1 images of 2×2"):
        G.grid_contraction(G.pixel_state(x, 1), 1, 2, 2)


@needs_native
def test_unsupported_features_take_the_tensor_path():
    # float16 and integer features: no native kernel reads them; same result either way.
    x = _features(1, 6, 5, seed=6, levels=2).half()
    assert not G._native_grid(x, 6, 5)
    got, expected = _both(lambda: _contract(x, 1, 6, 5, tie_break="hashed"))
    _assert_same_level(got, expected)


@needs_native
def test_kernel_bindings_refuse_wrong_shapes():
    from dhtgraph._native.grid import grid_argmax, grid_blocks, union_mass_perimeter

    x = torch.rand(12, 3)
    with pytest.raises(ValueError, match=r"'horizontal' of shape \(1, 3, 3\)"):
        grid_argmax(torch.zeros(1, 3, 4), torch.zeros(1, 2, 4), 1, 3, 4, True, x)
    with pytest.raises(ValueError, match=r"features' dtype"):
        grid_argmax(torch.zeros(1, 3, 3, dtype=torch.int32),
                    torch.zeros(1, 2, 4, dtype=torch.int32), 1, 3, 4, True, x)
    with pytest.raises(ValueError, match=r"'labels' of shape \(12,\)"):
        grid_blocks(torch.zeros(11, dtype=torch.long), 1, 1, 3, 4)
    with pytest.raises(ValueError, match=r"'bbox' of shape \(2, 4\)"):
        union_mass_perimeter(torch.ones(2, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long),
                             torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))


# ------------------------------------------------------------------ compactness


def _blocks(k, seed, span=50):
    g = torch.Generator().manual_seed(seed)
    low = torch.randint(0, span, (k, 2), generator=g)
    high = low + torch.randint(0, span, (k, 2), generator=g)
    size = torch.randint(1, 2**25, (k,), generator=g)  # beyond 2^24: float32 rounding
    return size, torch.cat([low, high], 1)


@needs_native
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_union_mass_and_perimeter_native_equals_tensor_path(dtype):
    size, bbox = _blocks(40, seed=1)
    g = torch.Generator().manual_seed(2)
    edges = torch.randint(0, 40, (2, 500), generator=g)
    edges[1, ::7] = edges[0, ::7]  # loops
    got, expected = _both(lambda: _union_mass_and_perimeter(size.to(dtype), bbox.to(dtype),
                                                            edges))
    for a, e in zip(got, expected):
        assert a.dtype == e.dtype == torch.float32 and torch.equal(a, e)
    # Hand values: the compactness test's blocks (two pixels, a 2×2 square with a loop).
    size = torch.tensor([1, 1, 4])
    bbox = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [2, 0, 3, 1]])
    edges = torch.tensor([[0, 1, 2, 0], [1, 0, 2, 2]])
    mass, perimeter = _union_mass_and_perimeter(size, bbox, edges)
    assert torch.equal(mass, torch.tensor([2.0, 2.0, 4.0, 5.0]))
    assert torch.equal(perimeter, torch.tensor([3.0, 3.0, 4.0, 6.0]))


@needs_native
def test_edge_affinity_native_equals_tensor_path_across_chunks(monkeypatch):
    import dhtgraph.hierarchy.affinity as A

    monkeypatch.setattr(A, "_EDGE_CHUNK", 64)  # several chunks, both branches
    h, w = 9, 11
    level = _contract(_features(1, h, w, seed=7), 1, h, w)
    s = level.state
    for requires_grad in (False, True):
        mean = s.mean.detach().clone().requires_grad_(requires_grad)
        got, expected = _both(lambda: edge_affinity(mean, s.var, s.size, s.bbox, s.edge_index,
                                                    compactness=0.3, loop_default=0.2))
        assert torch.equal(got, expected)
    got, expected = _both(lambda: compactness_potential(s.size, s.bbox, s.edge_index))
    assert torch.equal(got, expected)
    # A pixel graph with float positions takes the tensor path (float boxes).
    pos = torch.stack([torch.arange(h * w) // w, torch.arange(h * w) % w], 1).double()
    edges = grid_edge_index(h, w)
    size = torch.ones(h * w, dtype=torch.long)
    got, expected = _both(lambda: _union_mass_and_perimeter(size, torch.cat([pos, pos], 1),
                                                            edges))
    assert all(torch.equal(a, e) for a, e in zip(got, expected))


def test_union_kernel_refuses_edges_out_of_range():
    # Native: the kernel names the edge (it reads nothing out of bounds); tensor path:
    # index_select's IndexError.
    size, bbox = _blocks(5, seed=3)
    native = _native.enabled("grid", size)
    with pytest.raises(IndexError, match=r"'edge_index' entries in \[0, 5\) \(got edge 1: "
                                         r"\(2, 5\)\)" if native else "out of range"):
        _union_mass_and_perimeter(size, bbox, torch.tensor([[0, 2], [1, 5]]))
    with pytest.raises(IndexError):
        _union_mass_and_perimeter(size, bbox, torch.tensor([[-1], [1]]))


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channel_first", [True, False])
def test_edge_squared_difference_native_equals_the_gathers(dtype, channel_first):
    import dhtgraph.hierarchy.affinity as A
    from dhtgraph._native.grid import edge_squared_difference

    x = _features(1, 1, 30, d=5, seed=8, dtype=dtype, channel_first=channel_first)
    x[3] = float("nan")
    x[4] = -0.0
    g = torch.Generator().manual_seed(9)
    src, dst = torch.randint(0, 30, (2, 400), generator=g)
    for got, expected in ((edge_squared_difference(x, src, dst), (x[dst] - x[src]).pow(2)),
                          (A._squared(x, src, dst, True), A._squared(x, src, dst, False))):
        assert got.dtype == dtype and got.is_contiguous()
        assert torch.equal(got.nan_to_num(5.0), expected.nan_to_num(5.0))
        assert torch.equal(got.signbit(), expected.signbit())  # 0 − 0 and −0 − 0 alike
    for fn in (edge_squared_difference, lambda *a: A._squared(*a, True)):
        with pytest.raises(IndexError, match=r"'edge_index' entries in \[0, 30\) \(got edge 0"):
            fn(x, torch.tensor([30]), torch.tensor([0]))


@needs_native
@pytest.mark.parametrize("b,h,w", [(1, 5, 6), (2, 1, 7), (3, 6, 1), (1, 2, 2)])
def test_chosen_potential_native_copy_equals_the_tensor_pick(b, h, w):
    x = _features(b, h, w, seed=h * w, levels=2)
    horizontal, vertical = G._grid_potentials(x.view(b, h, w, 3), 0.1)
    code, _ = G._grid_choice(horizontal, vertical, "hashed", x, b, h, w, native=True)
    got = G._chosen_potential(horizontal, vertical, code, native=True)
    assert torch.equal(got, G._chosen_potential(horizontal, vertical, code, native=False))
    # Recording a gradient: the tensor pick (differentiable), the same values.
    leaf = horizontal.detach().requires_grad_()
    picked = G._chosen_potential(leaf, vertical, code, native=True)
    assert picked.requires_grad and torch.equal(picked.detach(), got)


@needs_native
def test_lazily_negated_features_are_read_as_their_values():
    # torch._neg_view flips a sign bit on the tensor, not the stored data.
    import dhtgraph.hierarchy.affinity as A

    x = _features(1, 5, 6, seed=10, levels=2)
    neg = torch._neg_view(x)
    assert neg.is_neg()
    got, expected = _both(lambda: _contract(neg, 1, 5, 6, tie_break="hashed"))
    _assert_same_level(got, expected)
    src, dst = torch.randint(0, 30, (2, 50), generator=torch.Generator().manual_seed(1))
    assert torch.equal(A._squared(neg, src, dst, True), A._squared(neg, src, dst, False))


# ------------------------------------------- float steps (no gradient), round 2


@needs_native
@pytest.mark.parametrize("channel_first", [True, False])
@pytest.mark.parametrize("b,h,w", [(1, 6, 7), (3, 4, 5), (2, 1, 9), (2, 8, 2)])
def test_grid_squared_has_the_layout_and_values_of_torchs_subtraction(channel_first, b, h, w):
    from dhtgraph._native.grid import grid_squared

    x = _features(b, h, w, seed=11, channel_first=channel_first)
    grid = x.view(b, h, w, 3)
    for got, expected in (
            (grid_squared(x, 0, h * w, w, 1, b, h, w - 1), grid[:, :, 1:] - grid[:, :, :-1]),
            (grid_squared(x, 0, h * w, w, w, b, h - 1, w), grid[:, 1:] - grid[:, :-1])):
        expected = expected.pow(2)
        assert got.shape == expected.shape
        if got.numel() > 0 and min(got.shape) > 1:
            assert got.stride() == expected.stride()  # the channel sum sees the same tensor
        assert torch.equal(got, expected)
    for got, expected in (
            (grid_squared(x, 0, h * w, w, 1, b, h, w - 1, negated=True),
             grid[:, :, 1:] - grid[:, :, :-1]),
            (grid_squared(x, 0, h * w, w, w, b, h - 1, w, negated=True),
             grid[:, 1:] - grid[:, :-1])):
        expected = expected.pow(2).neg()  # exact: the signs of the zeros too
        if got.numel() > 0 and min(got.shape) > 1:
            assert got.stride() == expected.stride()
        assert torch.equal(got, expected) and torch.equal(got.signbit(), expected.signbit())
    with pytest.raises(IndexError):
        grid_squared(x, 1, h * w, w, w, b, h, w)


def _size_moments_tensor(x, labels, counts, k, constant):
    # The library's tensor path: grid_contraction's moments, then its snap.
    mean, var = G._size_moments(x, labels, counts, k)
    return mean, G._snap_on_choice(constant, var)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channel_first", [True, False])
@pytest.mark.parametrize("threads,d", [(1, 3), (4, 3), (1, 5), (1, 2), (2, 16), (2, 33)])
def test_size_moments_kernel_sums_in_index_adds_order(dtype, channel_first, threads, d):
    # Large random sums (~700 pixels a block, rounding in every addition): the kernel's
    # sequential pixel-order sums equal torch's index_add_ bit for bit.
    from dhtgraph._native.grid import grid_constant, grid_size_moments

    g = torch.Generator().manual_seed(12)
    n, k = 200_000, 300
    x = (torch.randn(n, d, generator=g, dtype=torch.float64) * 1e3).to(dtype)
    labels = torch.randint(10, k, (n,), generator=g)
    labels[:5000] = torch.arange(5000) // 500  # blocks 0..9: pixels 500·i..500·i+499
    x[:5000, 1] = labels[:5000].to(dtype)  # channel 1 constant on blocks 0..9
    x = x.t().contiguous().t() if channel_first else x.contiguous()
    counts = torch.bincount(labels, minlength=k)
    choice = torch.randint(0, n, (n,), generator=g)
    choice[:5000] = (torch.arange(5000) + 1).clamp(max=4999)
    choice[:5000][torch.arange(5000) % 500 == 499] -= 2
    choice[6000:6100] = torch.arange(6000, 6100)  # pixels choosing themselves
    constant = grid_constant(x, choice, labels, k)
    assert constant[:10, 1].all() and not constant[:, 0].any()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        expected = _size_moments_tensor(x, labels, counts, k, constant)
    finally:
        torch.set_num_threads(previous)
    got = grid_size_moments(x, choice, labels, counts, k)
    for a, e in zip(got, expected):
        assert a.dtype == dtype and torch.equal(a, e)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channel_first", [True, False])
@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
def test_large_random_grid_level_native_equals_tensor_path(dtype, channel_first, weights):
    x = _features(2, 96, 80, seed=13, dtype=dtype, channel_first=channel_first)
    got, expected = _both(lambda: _contract(x, 2, 96, 80, tie_break="hashed",
                                            weights=weights, compactness=0.01))
    _assert_same_level(got, expected)


@needs_native
@pytest.mark.parametrize("channel_first", [True, False])
def test_chunked_native_potentials_equal_the_chunked_tensor_path(monkeypatch, channel_first):
    monkeypatch.setattr(G, "_ROW_CHUNK_PIXELS", 40)  # rows of 13 pixels: 3 per chunk
    for dtype in (torch.float32, torch.float64):
        x = _features(2, 17, 13, seed=14, dtype=dtype, channel_first=channel_first)
        for weights in ("size", "argmax_edge"):
            got, expected = _both(lambda: _contract(x, 2, 17, 13, tie_break="hashed",
                                                    weights=weights, compactness=0.1))
            _assert_same_level(got, expected)
        got = G._native_potentials(x, 2, 17, 13)
        with _native.disabled():
            expected = G._grid_potentials(x.view(2, 17, 13, 3), 0.0)
        assert all(torch.equal(a, e) for a, e in zip(got, expected))


@needs_native
@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
def test_grid_level_with_gradients_takes_the_tensor_float_path(weights):
    x0 = _features(1, 9, 8, seed=15, levels=3)
    results = []
    for use_native in (True, False):
        x = x0.clone().requires_grad_(True)
        if use_native:
            level = _contract(x, 1, 9, 8, tie_break="hashed", weights=weights)
        else:
            with _native.disabled():
                level = _contract(x, 1, 9, 8, tie_break="hashed", weights=weights)
        (level.state.mean.sum() + level.state.var.sum()).backward()
        results.append((level, x.grad))
    (got, got_grad), (expected, expected_grad) = results
    _assert_same_level(got, expected)
    assert got.state.mean.requires_grad and torch.equal(got_grad, expected_grad)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("compactness", [0.0, 0.01, 0.7])
def test_large_random_edge_affinity_native_equals_tensor_path(dtype, compactness):
    g = torch.Generator().manual_seed(16)
    k, e = 5000, 60_000
    for d, channel_first in ((1, False), (3, True), (5, False)):
        mean = (torch.randn(k, d, generator=g, dtype=torch.float64) * 0.7).to(dtype)
        mean = mean.t().contiguous().t() if channel_first else mean
        var = torch.rand(k, d, generator=g, dtype=dtype)
        size = torch.randint(1, 1 << 26, (k,), generator=g)  # float32 masses round
        corner = torch.randint(0, 3000, (k, 2), generator=g)
        bbox = torch.cat([corner, corner + torch.randint(0, 500, (k, 2), generator=g)], 1)
        edges = torch.randint(0, k, (2, e), generator=g)
        edges[1, :3000] = edges[0, :3000]  # loops
        projection = torch.nn.Linear(d, 1).to(torch.float32)  # loop values in float32
        with torch.no_grad():
            got, expected = _both(lambda: edge_affinity(
                mean, var.float(), size, bbox, edges, compactness=compactness,
                var_projection=projection))
        assert got.dtype == dtype and torch.equal(got, expected)


@needs_native
def test_edge_affinity_gradients_are_those_of_the_tensor_path():
    g = torch.Generator().manual_seed(17)
    k = 40
    mean0 = torch.randn(k, 3, generator=g)
    var = torch.rand(k, 3, generator=g)
    size = torch.randint(1, 9, (k,), generator=g)
    corner = torch.randint(0, 20, (k, 2), generator=g)
    bbox = torch.cat([corner, corner + 2], 1)
    edges = torch.randint(0, k, (2, 300), generator=g)
    edges[1, :30] = edges[0, :30]
    out = []
    for use_native in (True, False):
        mean = mean0.clone().requires_grad_(True)
        projection = torch.nn.Linear(3, 1)
        torch.nn.init.constant_(projection.weight, 0.5)
        torch.nn.init.constant_(projection.bias, -0.25)
        with _native.disabled() if not use_native else torch.enable_grad():
            value = edge_affinity(mean, var, size, bbox, edges, compactness=0.2,
                                  var_projection=projection)
        value.sum().backward()
        out.append((value.detach(), mean.grad, projection.weight.grad))
    assert all(torch.equal(a, b) for a, b in zip(*out))


# ------------------------------------------------------------------ bad inputs


@needs_native
def test_union_kernel_checks_size_against_the_boxes():
    # A (2, 2) size used to be read as 4 blocks (past the (2, 4) boxes).
    from dhtgraph._native.grid import union_mass_perimeter

    edge = torch.tensor([3])
    with pytest.raises(ValueError, match=r"'size' of shape \(2,\)"):
        union_mass_perimeter(torch.ones(2, 2, dtype=torch.long),
                             torch.zeros(2, 4, dtype=torch.long), edge, edge)
    with pytest.raises(ValueError, match=r"'bbox' of shape \(2, 4\)"):
        union_mass_perimeter(torch.ones(2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long),
                             edge, edge)
    with pytest.raises(ValueError, match=r"'dst' of shape \(1,\)"):
        union_mass_perimeter(torch.ones(2, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long),
                             edge, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"'src' of one dimension \(got shape \(1, 1\)\)"):
        union_mass_perimeter(torch.ones(2, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long),
                             edge.view(1, 1), edge)


def _bad_pieces():
    b, h, w = 1, 3, 4
    x = _features(b, h, w, seed=8, levels=2)
    level = _contract(x, b, h, w)
    return x, level.choice.clone(), level.partition.labels.clone(), level.partition.num_blocks


@needs_native
@pytest.mark.parametrize("value", [-1, "k"])
def test_block_kernels_refuse_labels_out_of_range(value):
    from dhtgraph._native.grid import grid_blocks, grid_constant, grid_size_moments

    x, choice, labels, k = _bad_pieces()
    labels[5] = k if value == "k" else value
    message = rf"'labels' entries in \[0, {k}\) \(got {int(labels[5])} at pixel 5\)"
    with pytest.raises(IndexError, match=message):
        grid_blocks(labels, k, 1, 3, 4)
    with pytest.raises(IndexError, match=message):
        grid_constant(x, choice, labels, k)
    counts = torch.ones(k, dtype=torch.long)
    with pytest.raises(IndexError, match=message):
        grid_size_moments(x, choice, labels, counts, k)


@needs_native
@pytest.mark.parametrize("value", [-1, 12, 1 << 40])
def test_feature_kernels_refuse_choices_out_of_range(value):
    from dhtgraph._native.grid import grid_constant, grid_size_moments

    x, choice, labels, k = _bad_pieces()
    choice[7] = value
    message = rf"'choice' entries in \[0, 12\) \(got {value} at pixel 7\)"
    with pytest.raises(IndexError, match=message):
        grid_constant(x, choice, labels, k)
    with pytest.raises(IndexError, match=message):
        grid_size_moments(x, choice, labels, torch.ones(k, dtype=torch.long), k)


@needs_native
def test_bindings_read_int32_and_strided_indices_as_int64():
    from dhtgraph._native.grid import (edge_potentials, edge_squared_difference, grid_blocks,
                                       grid_constant, grid_size_moments,
                                       union_mass_perimeter)

    def variants(t):  # int32, strided (every other element of a wider tensor), int64
        wide = torch.stack([t, torch.full_like(t, -7)], -1)
        return [t.int(), wide[..., 0], t]

    x, choice, labels, k = _bad_pieces()
    counts = torch.bincount(labels, minlength=k)
    batch = torch.full((12,), 3)
    results = [
        (grid_blocks(lab, k, 1, 3, 4, bat), grid_constant(x, cho, lab, k),
         grid_size_moments(x, cho, lab, cnt, k))
        for lab, cho, cnt, bat in zip(variants(labels), variants(choice), variants(counts),
                                      variants(batch))]
    for got in results[:2]:
        for a, e in zip(got, results[-1]):
            for u, v in zip(a if isinstance(a, tuple) else (a,),
                            e if isinstance(e, tuple) else (e,)):
                assert torch.equal(u, v)
    assert torch.equal(results[-1][0][2], torch.full((k,), 3))
    size, bbox = _blocks(6, seed=9)
    g = torch.Generator().manual_seed(10)
    src, dst = torch.randint(0, 6, (2, 40), generator=g)
    feats, loop = torch.rand(6, 3, generator=g), torch.rand(6, generator=g)
    edges = torch.stack([src, dst])
    expected = (union_mass_perimeter(size, bbox, src, dst),
                edge_squared_difference(feats, src, dst),
                edge_potentials(feats, loop, size, bbox, edges, 0.2))
    for sz, bb, s, d, ed in zip(variants(size), variants(bbox), variants(src), variants(dst),
                                variants(edges)):
        got = (union_mass_perimeter(sz, bb, s, d), edge_squared_difference(feats, s, d),
               edge_potentials(feats, loop, sz, bb, ed, 0.2))
        assert all(torch.equal(a, e) for a, e in zip(got[0], expected[0]))
        assert torch.equal(got[1], expected[1]) and torch.equal(got[2], expected[2])
    # Float or bool indices would be truncated: refused, naming the argument.
    with pytest.raises(TypeError, match="'labels' to be an integer tensor"):
        grid_blocks(labels.float(), k, 1, 3, 4)
    with pytest.raises(TypeError, match="'edge_index' to be an integer tensor"):
        union_mass_perimeter(size, bbox, src.double(), dst)


@needs_native
def test_feature_bindings_refuse_unreadable_features():
    from dhtgraph._native.grid import edge_squared_difference, grid_constant

    src = torch.tensor([0])
    with pytest.raises(ValueError, match="'x' \\(N, d ≥ 1\\)"):
        edge_squared_difference(torch.zeros(2, 0), src, src)
    with pytest.raises(ValueError, match="'x'"):
        edge_squared_difference(torch.zeros(2, 3, dtype=torch.int64), src, src)
    with pytest.raises(ValueError, match="'x'"):
        grid_constant(torch.zeros(2, 3, device="meta"), src.expand(2), src.expand(2), 1)
    # Edge ends not on the CPU (a meta tensor stands for CUDA): refused, not read.
    meta = torch.zeros(1, dtype=torch.long, device="meta")
    for ends in ((meta, src), (src, meta)):
        with pytest.raises(ValueError, match="Expected a CPU tensor .*got meta"):
            edge_squared_difference(torch.zeros(2, 3), *ends)


@pytest.mark.parametrize("b", [1, 3])
def test_block_images_are_the_states_batch_on_both_paths(b):
    # state.batch that is not the image index (e.g. images 4, 9, 2 of a larger batch):
    # both paths give every block its pixels' value (natively it was the image index).
    h, w = 4, 5
    x = _features(b, h, w, seed=11, levels=2)
    images = torch.tensor([4, 9, 2][:b])
    state = G.pixel_state(x, b, images.repeat_interleave(h * w))
    got, expected = _both(lambda: G.grid_contraction(state, b, h, w, weights="size"))
    _assert_same_level(got, expected)
    first = got.partition.labels.view(b, h * w)[:, 0]
    assert torch.equal(got.state.batch[first], images)
    # A single image whose batch value is not zero (an expanded scalar: no copy).
    state = G.pixel_state(x[:h * w], 1, torch.full((), 6).expand(h * w))
    got, expected = _both(lambda: G.grid_contraction(state, 1, h, w))
    _assert_same_level(got, expected)
    assert bool((got.state.batch == 6).all())


def test_empty_inputs_equal_the_tensor_path():
    # No edges and no channels: nothing to read (the kernels do no arithmetic on an
    # empty tensor's address); the results are the tensor path's.
    size, bbox = _blocks(4, seed=12)
    none = torch.zeros(2, 0, dtype=torch.long)
    got, expected = _both(lambda: _union_mass_and_perimeter(size, bbox, none))
    assert all(a.shape == (0,) and torch.equal(a, e) for a, e in zip(got, expected))
    empty = torch.zeros(0, dtype=torch.long)
    got, expected = _both(lambda: _union_mass_and_perimeter(empty, empty.view(0, 4), none))
    assert all(torch.equal(a, e) for a, e in zip(got, expected))
    edges = torch.tensor([[0, 1, 2], [1, 1, 3]])
    for mean in (torch.zeros(4, 0), torch.rand(4, 3)):
        got, expected = _both(lambda: edge_affinity(mean, torch.zeros(4, 1), size, bbox,
                                                    edges, compactness=0.2))
        assert torch.equal(got, expected)
        got, expected = _both(lambda: edge_affinity(mean, torch.zeros(4, 1), size, bbox,
                                                    none, compactness=0.2))
        assert got.shape == (0,) and torch.equal(got, expected)


@needs_native
def test_empty_kernel_calls():
    from dhtgraph._native.grid import edge_squared_difference, grid_blocks

    empty = torch.zeros(0, dtype=torch.long)
    counts, bbox, images = grid_blocks(empty, 0, 0, 3, 4)
    assert counts.shape == (0,) and bbox.shape == (0, 4) and images.shape == (0,)
    out = edge_squared_difference(torch.zeros(0, 3), empty, empty)
    assert out.shape == (0, 3)
    with pytest.raises(IndexError, match=r"\[0, 0\)"):
        edge_squared_difference(torch.zeros(0, 3), torch.tensor([0]), torch.tensor([0]))


def _bits(t):
    # The stored bits (NaN payloads and signs, −0 included): torch.equal treats NaN ≠ NaN.
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channel_first", [True, False])
def test_edge_affinity_native_bits_with_special_values(dtype, d, channel_first):
    # The fused native path (negated squares, channel-major for ≤ 3 float32 channels, the
    # sum and exp of torch, edge_combine) against the tensor path, bit for bit: NaN, ±inf,
    # ±0, tied (repeated) means, huge values whose squares overflow, loops, c = 0 and > 0.
    g = torch.Generator().manual_seed(31 + d)
    k, e = 400, 6000
    values = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0,
                           0.5, 3e38, -3e38, 1e-30, 2.0], dtype=torch.float64)
    pick = torch.randint(0, len(values), (k, d), generator=g)
    mean = torch.where(torch.rand(k, d, generator=g) < 0.5, values[pick],
                       torch.randn(k, d, generator=g, dtype=torch.float64)).to(dtype)
    mean[k // 2:k // 2 + 20] = mean[:20]  # ties
    mean = mean.t().contiguous().t() if channel_first else mean
    var = torch.rand(k, d, generator=g, dtype=dtype)
    size = torch.randint(1, 1 << 26, (k,), generator=g)
    corner = torch.randint(0, 3000, (k, 2), generator=g)
    bbox = torch.cat([corner, corner + torch.randint(0, 500, (k, 2), generator=g)], 1)
    edges = torch.randint(0, k, (2, e), generator=g)
    edges[1, ::7] = edges[0, ::7]  # loops
    for compactness in (0.0, 0.01, 1 / 3, 1.0):
        for loop_default in (0.0, 0.3, float("nan")):
            with torch.no_grad():
                got, expected = _both(lambda: edge_affinity(
                    mean, var, size, bbox, edges, compactness=compactness,
                    loop_default=loop_default))
            assert got.dtype == expected.dtype == dtype
            assert torch.equal(_bits(got), _bits(expected)), (compactness, loop_default)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("channel_first", [True, False])
@pytest.mark.parametrize("chunk", [None, 40])
def test_grid_gaussian_parts_native_bits_with_special_values(monkeypatch, dtype, d,
                                                            channel_first, chunk):
    # _native_potentials (negated squares, channel-major for ≤ 3 float32 channels whatever
    # x's layout) against the tensor code's Gaussian parts, bit for bit, chunked or not.
    if chunk is not None:
        monkeypatch.setattr(G, "_ROW_CHUNK_PIXELS", chunk)
    b, h, w = 2, 9, 11
    g = torch.Generator().manual_seed(40 + d)
    values = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, 0.5,
                           3e38, 1e-30], dtype=torch.float64)
    pick = torch.randint(0, len(values), (b * h * w, d), generator=g)
    x = torch.where(torch.rand(b * h * w, d, generator=g) < 0.4, values[pick],
                    torch.randn(b * h * w, d, generator=g, dtype=torch.float64)).to(dtype)
    x[50:70] = x[49]  # a plateau (ties)
    x = x.t().contiguous().t() if channel_first else x
    assert G._native_layout(x)
    got = G._native_potentials(x, b, h, w)
    expected = G._grid_potentials(x.view(b, h, w, d), 0.0)
    for a, e in zip(got, expected):
        assert a.shape == e.shape and torch.equal(_bits(a), _bits(e))


@needs_native
def test_edge_potentials_refuses_bad_arguments():
    from dhtgraph._native.grid import edge_potentials

    mean, one = torch.zeros(3, 2), torch.ones(3, dtype=torch.long)
    box = torch.zeros(3, 4, dtype=torch.long)
    with pytest.raises(IndexError, match=r"\[0, 3\) \(got edge 1: \(0, 3\)\)"):
        edge_potentials(mean, torch.zeros(3), one, box, torch.tensor([[0, 0], [1, 3]]), 0.1)
    with pytest.raises(IndexError, match=r"\[0, 3\) \(got edge 0: \(-1, 1\)\)"):
        edge_potentials(mean, torch.zeros(3), None, None, torch.tensor([[-1], [1]]), 0.0,
                        channel_major=True)
    with pytest.raises(ValueError, match=r"'edge_index' of shape \(2, E\) \(got \(3, 2\)\)"):
        edge_potentials(mean, torch.zeros(3), one, box, torch.zeros(3, 2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match=r"'loop_value' of shape \(3,\) \(got \(4,\)\)"):
        edge_potentials(mean, torch.zeros(4), one, box, torch.zeros(2, 2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match=r"'size' of shape \(3,\) \(got \(4,\)\)"):
        edge_potentials(mean, torch.zeros(3), torch.ones(4, dtype=torch.long), box,
                        torch.zeros(2, 2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match=r"'bbox' of shape \(3, 4\)"):
        edge_potentials(mean, torch.zeros(3), one, box[:, :3], torch.zeros(2, 2, dtype=torch.long),
                        0.1)
    with pytest.raises(TypeError, match="'edge_index' to be an integer tensor"):
        edge_potentials(mean, torch.zeros(3), one, box, torch.zeros(2, 2), 0.1)
    for sizes in ((None, box), (one, None)):  # both read with c > 0
        name = "size" if sizes[0] is None else "bbox"
        with pytest.raises(ValueError, match=f"'{name}' with c > 0 \\(got None\\)"):
            edge_potentials(mean, torch.zeros(3), *sizes, torch.zeros(2, 2, dtype=torch.long),
                            0.1)
    with pytest.raises(ValueError, match="Expected a CPU tensor .*got meta"):
        edge_potentials(mean, torch.zeros(3), None, None,
                        torch.zeros(2, 2, dtype=torch.long, device="meta"), 0.0)


@needs_native
@pytest.mark.parametrize("channel_major", [False, True])
def test_edge_potentials_read_column_slices_in_place(channel_major):
    # A chunk of edge_affinity (edge_index[:, a:b], rows of stride E) and int32 edges
    # (converted) give the potentials of the contiguous edges.
    from dhtgraph._native.grid import edge_potentials

    g = torch.Generator().manual_seed(5)
    mean = torch.randn(50, 3, generator=g)
    size = torch.randint(1, 90, (50,), generator=g)
    corner = torch.randint(0, 30, (50, 2), generator=g)
    bbox = torch.cat([corner, corner + torch.randint(0, 9, (50, 2), generator=g)], 1)
    edges = torch.randint(0, 50, (2, 300), generator=g)
    part = edges[:, 100:220]
    assert not part.is_contiguous()
    loop = torch.rand(50, generator=g)
    expected = edge_potentials(mean, loop, size, bbox, part.contiguous(), 0.3, channel_major)
    for edge_index in (part, part.int()):
        got = edge_potentials(mean, loop, size, bbox, edge_index, 0.3, channel_major)
        assert torch.equal(got, expected)
    with _native.disabled():
        reference = edge_affinity(mean, torch.zeros(50, 3), size, bbox, part, compactness=0.3)
    got = edge_potentials(mean, torch.zeros(50), size, bbox, part, 0.3, channel_major)
    assert torch.equal(got, reference)
