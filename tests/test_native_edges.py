"""dhtgraph._native.edges: coalesced edge lists without a sort (pairs.h) equal the tensor
formulas."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtgraph import Partition, _native
from dhtgraph.testing import partitions, random_graphs

pytestmark = pytest.mark.skipif(not _native.available("edges"),
                                reason="native kernels 'edges' not in use")


def _native_edges():
    from dhtgraph._native import edges

    return edges


def _unique_pairs(lo, hi, n, self_loops=True, relabel=None, undirected=False):
    """The tensor formula: torch.unique of the keys lo·n + hi, decoded."""
    if relabel is not None:
        lo, hi = relabel[lo], relabel[hi]
    if undirected:
        lo, hi = torch.minimum(lo, hi), torch.maximum(lo, hi)
    if not self_loops:
        keep = lo != hi
        lo, hi = lo[keep], hi[keep]
    n = max(n, 1)
    key = torch.unique(lo * n + hi)
    return torch.stack([key // n, key % n])


def test_relabel_edges_by_hand():
    # Blocks {0, 1}, {2, 3}, {4}: the path 0-1-2-3-4 (both directions) and a loop at 4.
    labels = torch.tensor([0, 0, 1, 1, 2])
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4],
                               [1, 0, 2, 1, 3, 2, 4, 3, 4]])
    got = _native_edges().relabel_edges(labels, 3, edge_index)
    assert got.tolist() == [[0, 0, 1, 1, 1, 2, 2], [0, 1, 0, 1, 2, 1, 2]]
    assert got.dtype == torch.long and got.is_contiguous()
    # A transposed (non-contiguous) or 32-bit edge_index gives the same list.
    transposed = edge_index.t().contiguous().t()
    assert not transposed.is_contiguous()
    assert torch.equal(_native_edges().relabel_edges(labels, 3, transposed), got)
    assert torch.equal(_native_edges().relabel_edges(labels.int(), 3, edge_index.int()), got)


def test_relabel_edges_of_no_edges_and_one_block():
    edges = _native_edges()
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert edges.relabel_edges(torch.zeros(4, dtype=torch.long), 1, empty).shape == (2, 0)
    assert edges.relabel_edges(torch.zeros(0, dtype=torch.long), 0, empty).shape == (2, 0)
    ring = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert edges.relabel_edges(torch.zeros(3, dtype=torch.long), 1, ring).tolist() == [[0], [0]]


def test_coalesce_pairs_by_hand():
    lo = torch.tensor([3, 1, 3, 0, 1, 2, 2])
    hi = torch.tensor([1, 2, 1, 0, 2, 2, 0])
    edges = _native_edges()
    assert edges.coalesce_pairs(lo, hi, 4, self_loops=True).tolist() == [[0, 1, 2, 2, 3],
                                                                          [0, 2, 0, 2, 1]]
    assert edges.coalesce_pairs(lo, hi, 4).tolist() == [[1, 2, 3], [2, 0, 1]]  # no loops
    src = torch.tensor([3, 0, 2, 0, 1, 1, 2])
    dst = torch.tensor([0, 3, 2, 3, 0, 3, 1])
    assert edges.coalesce_pairs(src, dst, 4).tolist() == [[0, 1, 1, 2, 3], [3, 0, 3, 1, 0]]
    assert edges.coalesce_pairs(src, dst, 4, undirected=True).tolist() == [[0, 0, 1, 1],
                                                                           [1, 3, 2, 3]]
    assert edges.coalesce_pairs(src, dst, 4, undirected=True, self_loops=True).tolist() == [
        [0, 0, 1, 1, 2], [1, 3, 2, 3, 2]]
    relabel = torch.tensor([0, 0, 1, 1])
    assert edges.coalesce_pairs(src, dst, 2, relabel=relabel).tolist() == [[0, 1], [1, 0]]
    assert edges.coalesce_pairs(src, dst, 2, relabel=relabel, self_loops=True).tolist() == [
        [0, 0, 1, 1], [0, 1, 0, 1]]
    empty = edges.coalesce_pairs(torch.tensor([1]), torch.tensor([1]), 2)
    assert empty.shape == (2, 0) and empty.dtype == torch.long


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), m=st.integers(0, 80), seed=st.integers(0, 2**31 - 1),
       relabelled=st.booleans(), undirected=st.booleans(), loops=st.booleans())
def test_coalesce_pairs_equals_unique(n, m, seed, relabelled, undirected, loops):
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
    relabel, k = None, n
    if relabelled:
        k = int(torch.randint(1, n + 1, (1,), generator=g))
        relabel = torch.randint(0, k, (n,), generator=g)
    got = _native_edges().coalesce_pairs(src, dst, k, relabel=relabel, undirected=undirected,
                                         self_loops=loops)
    assert torch.equal(got, _unique_pairs(src, dst, k, loops, relabel, undirected))
    assert got.is_contiguous()


@pytest.mark.parametrize("m", [4095, 4096, 4097, 3 * 4096 + 5, 40_000])
@pytest.mark.parametrize("distinct", [True, False])
def test_long_edge_lists_equal_unique(m, distinct):
    # Edge lists of thousands of pairs around powers of two (the sizes a growing pair store
    # would cross), nearly all pairs kept (distinct) or nearly all left out as repeats.
    g = torch.Generator().manual_seed(m)
    n = 5000 if distinct else 3
    src, dst = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
    if not distinct:
        src, dst = src.sort().values, dst.sort().values
    e = _native_edges()
    assert torch.equal(e.coalesce_pairs(src, dst, n), _unique_pairs(src, dst, n, False))
    labels = torch.randint(0, 700, (n,), generator=g)
    p = Partition(labels)
    edge_index = torch.stack([src, dst])
    assert torch.equal(e.relabel_edges(p.labels, p.num_blocks, edge_index),
                       p.quotient(edge_index, self_loops=True))


@pytest.mark.parametrize("seed", range(6))
def test_relabel_edges_equals_the_quotient_on_random_graphs(seed):
    g = torch.Generator().manual_seed(seed)
    n = [1, 7, 60, 300, 2000, 5000][seed]
    edge_index = torch.randint(0, n, (2, 4 * n), generator=g)
    if seed % 2:  # sorted by source, as the contraction's edge lists are (runs of repeats)
        edge_index = edge_index[:, torch.argsort(edge_index[0] * n + edge_index[1])]
    p = Partition(torch.randint(0, max(1, n // 5), (n,), generator=g))
    got = _native_edges().relabel_edges(p.labels, p.num_blocks, edge_index)
    assert torch.equal(got, p.quotient(edge_index, self_loops=True))
    lo, hi = edge_index
    for loops in (True, False):
        assert torch.equal(_native_edges().coalesce_pairs(lo, hi, n, self_loops=loops),
                           _unique_pairs(lo, hi, n, loops))


def test_relabel_edges_of_a_contracted_grid_level():
    # A real level: the grid's quotient (with its loops) relabelled by a coarser partition.
    from dhtgraph.graph.pixel import grid_quotient

    g = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 50, (1, 40, 20), generator=g).repeat_interleave(2, dim=2)
    fine = Partition(raw.reshape(-1))
    edge_index = grid_quotient(fine.labels, fine.num_blocks, 1, 40, 40, loops=True)
    coarse = Partition(torch.randint(0, 40, (fine.num_blocks,), generator=g))
    got = _native_edges().relabel_edges(coarse.labels, coarse.num_blocks, edge_index)
    assert torch.equal(got, coarse.quotient(edge_index, self_loops=True))


@st.composite
def _edge_lists(draw, max_nodes=40, max_edges=150):
    # random_graphs draws a median of 2 edges; a drawn edge count gives real quotients.
    n = draw(st.integers(1, max_nodes), label="n")
    m = draw(st.integers(0, max_edges), label="m")
    node = st.integers(0, n - 1)
    pairs = draw(st.lists(st.tuples(node, node), min_size=m, max_size=m), label="edges")
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous(), n


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_relabel_edges_property(data):
    # Any edge list (loops, repeats, isolated nodes) and any partition of its nodes
    # (measured over 300 draws: median 17 nodes, 83 edges, 5 blocks, 12 quotient edges;
    # 94 % merge repeats, 76 % have several blocks and more than 2 quotient edges).
    edge_index, n = data.draw(_edge_lists())
    p = data.draw(partitions(n), label="partition")
    if data.draw(st.booleans(), label="sorted"):
        edge_index = edge_index[:, torch.argsort(edge_index[0] * n + edge_index[1])]
    got = _native_edges().relabel_edges(p.labels, p.num_blocks, edge_index)
    assert torch.equal(got, p.quotient(edge_index, self_loops=True))
    lo, hi = edge_index
    loops = data.draw(st.booleans(), label="self_loops")
    assert torch.equal(_native_edges().coalesce_pairs(lo, hi, n, self_loops=loops),
                       _unique_pairs(lo, hi, n, loops))


@settings(max_examples=20, deadline=None)
@given(graph=random_graphs(max_nodes=12, max_edges=30, undirected=True))
def test_coalesced_lists_are_fixed_points(graph):
    # A coalesced list (PyG's undirected convention) comes back unchanged.
    lo, hi = graph.edge_index
    assert torch.equal(_native_edges().coalesce_pairs(lo, hi, graph.num_nodes, self_loops=True),
                       graph.edge_index)


def test_concurrent_calls_agree():
    # The kernels are re-entrant: batch worker threads call them at the same time.
    g = torch.Generator().manual_seed(0)
    n = 20000
    edge_index = torch.randint(0, n, (2, 5 * n), generator=g)
    p = Partition(torch.randint(0, 3000, (n,), generator=g))
    expected = p.quotient(edge_index, self_loops=True)
    relabel = _native_edges().relabel_edges
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: relabel(p.labels, p.num_blocks, edge_index), range(16)))
    assert all(torch.equal(r, expected) for r in results)


@pytest.mark.parametrize("call, match", [
    (lambda e: e.relabel_edges(torch.tensor([0, 1]), 2, torch.tensor([[0], [2]])),
     r"'edge_index' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, -1]), 2, torch.tensor([[0], [1]])),
     r"'labels' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, 2]), 2, torch.tensor([[0], [1]])),
     r"'labels' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, 1]), 2, torch.tensor([0, 1])),
     r"'edge_index' to have shape \(2, E\)"),
    (lambda e: e.coalesce_pairs(torch.tensor([0, 1]), torch.tensor([1]), 2),
     r"'src' and 'dst' of the same length \(got 2, 1\)"),
    (lambda e: e.grid_quotient(torch.tensor([0, 1, 2]), 2, 1, 1, 3), r"'labels' values in 0..1"),
    (lambda e: e.grid_quotient(torch.tensor([0, 1]), 2, 1, 1, 3), "3 entries"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(_native_edges())


@pytest.mark.parametrize("src, dst, n, relabel, match", [
    ([0, 3], [1, 1], 3, None, r"'src' and 'dst' in \[0, 3\)"),
    ([0, 1], [-1, 1], 3, None, r"'src' and 'dst' in \[0, 3\)"),
    ([0, 4], [1, 1], 2, [0, 1, 1], r"'src' and 'dst' in \[0, 3\)"),
    ([0, 2], [1, 1], 2, [0, 1, 2], r"'relabel' in \[0, 2\)"),
    ([0, 2], [1, 1], 2, [0, -1, 1], r"'relabel' in \[0, 2\)"),
])
def test_coalesce_pairs_range_checks(src, dst, n, relabel, match):
    with pytest.raises(IndexError, match=match):
        _native_edges().coalesce_pairs(torch.tensor(src), torch.tensor(dst), n,
                                       relabel=None if relabel is None else torch.tensor(relabel))


@pytest.mark.parametrize("call, match", [
    (lambda e: e.relabel_edges(torch.tensor([0.0, 1.0]), 2, torch.tensor([[0], [1]])),
     "'labels' to be an integer tensor"),
    (lambda e: e.relabel_edges(torch.tensor([0, 1]), 2, torch.tensor([[0.0], [1.0]])),
     "'edge_index' to be an integer tensor"),
    (lambda e: e.coalesce_pairs(torch.tensor([True]), torch.tensor([1]), 2),
     "'src' to be an integer tensor"),
    (lambda e: e.coalesce_pairs(torch.tensor([0]), torch.tensor([1]), 2,
                                relabel=torch.tensor([0.2, 0.7])), "'relabel' to be an integer"),
    (lambda e: e.grid_quotient(torch.tensor([0.2, 0.7, 1.0]), 2, 1, 1, 3),
     "'labels' to be an integer tensor"),
])
def test_float_and_bool_indices_are_refused(call, match):
    # (.to(long) would truncate them: 0.2 and 0.7 one block)
    with pytest.raises(TypeError, match=match):
        call(_native_edges())


def test_negative_grid_sizes_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        _native_edges().grid_quotient(torch.zeros(2, dtype=torch.long), 1, -1, -2, 1)


@pytest.mark.parametrize("num_blocks", [-1, -3])
@pytest.mark.parametrize("shape", [(1, 0, 0), (1, 2, 2), (2, 3, 1)])
def test_negative_num_blocks_with_loops_is_refused(num_blocks, shape):
    # A loop per block of a negative count: the binding refuses it before the kernel
    # allocates anything (it returned a negative count, read as out of memory, and kept
    # its work area); the public function refuses a negative count on both paths.
    from dhtgraph.graph.pixel import grid_quotient

    labels = torch.zeros(shape[0] * shape[1] * shape[2], dtype=torch.long)
    with pytest.raises(ValueError, match=rf"non-negative 'num_blocks'.*got {num_blocks}"):
        _native_edges().grid_quotient(labels, num_blocks, *shape, loops=True)
    for loops in (False, True):
        with pytest.raises(ValueError, match=r"'num_blocks' to be a non-negative int"):
            grid_quotient(labels, num_blocks, *shape, loops=loops)
    # Still usable afterwards.
    assert grid_quotient(labels, 1, *shape, loops=True).tolist() == [[0], [0]]


@pytest.mark.parametrize("num_loops", [-1, -3, 3])
def test_grid_prepare_refuses_a_loop_count_outside_the_blocks(num_loops):
    # The kernel's own guard (the binding refuses first): code -2, no work area.
    import ctypes

    from dhtgraph._native import I64, PTR, function, pointer

    e = _native_edges()
    labels = torch.tensor([0, 1, 1, 0])
    work = ctypes.c_void_p()
    prepare = function("edges", "dht_grid_prepare", I64, PTR, I64, I64, I64, I64, I64, I64,
                       e._WORK)
    assert prepare(pointer(labels, torch.long), 1, 2, 2, 2, num_loops, e._NARROW_LIMIT,
                   ctypes.byref(work)) == -2
    assert work.value is None


def _counted_work_areas(monkeypatch, e):
    """Wraps the binding's ``function`` lookups: the lists of work areas a prepare call
    returned and of those dht_pairs_free received."""
    prepared, freed = [], []
    real = e.function

    def function(kernels, name, *signature):
        fn = real(kernels, name, *signature)
        if name == "dht_pairs_free":
            def free(work):
                freed.append(work.value)
                return fn(work)
            return free
        if name.endswith("_prepare"):
            def prepare(*args):
                count = fn(*args)
                if count >= 0:
                    prepared.append(args[-1]._obj.value)
                return count
            return prepare
        return fn

    monkeypatch.setattr(e, "function", function)
    return prepared, freed


def _failing_at(call_number, error, real):
    """``real``, raising ``error`` at its call_number-th call (1-based) only."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(None)
        if len(calls) == call_number:
            raise error
        return real(*args, **kwargs)
    return wrapped


_LEAK_CALLS = [
    ("grid", lambda e: e.grid_quotient(torch.tensor([0, 0, 1, 2, 2, 1]), 3, 1, 2, 3, loops=True)),
    ("relabel", lambda e: e.relabel_edges(torch.tensor([0, 0, 1]), 2,
                                          torch.tensor([[0, 1, 2], [1, 2, 0]]))),
    ("pairs", lambda e: e.coalesce_pairs(torch.tensor([2, 0, 1]), torch.tensor([0, 1, 2]), 3)),
]


@pytest.mark.parametrize("name, call", _LEAK_CALLS, ids=[c[0] for c in _LEAK_CALLS])
@pytest.mark.parametrize("where", ["empty", "rows"])
def test_the_work_area_is_freed_when_the_output_step_raises(monkeypatch, name, call, where):
    # Whatever raises between the prepare call and the write (the output's allocation,
    # the row views, an interrupt), the kernel's work area is freed once; and once per
    # call when nothing raises.
    e = _native_edges()
    expected = call(e)
    prepared, freed = _counted_work_areas(monkeypatch, e)
    assert torch.equal(call(e), expected)
    assert len(prepared) == 1 and freed == prepared
    if where == "empty":
        error = MemoryError("injected")
        monkeypatch.setattr(torch, "empty", _failing_at(1, error, torch.empty))
    else:  # the output's rows (relabel_edges reads its input's rows first)
        error = KeyboardInterrupt()
        monkeypatch.setattr(e, "rows", _failing_at(2 if name == "relabel" else 1, error,
                                                   e.rows))
    with pytest.raises(type(error)):
        call(e)
    assert len(prepared) == 2 and freed == prepared
    monkeypatch.undo()
    assert torch.equal(call(e), expected)


def test_int32_and_strided_inputs_equal_the_int64_ones():
    e = _native_edges()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 1, 0])
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 1], [1, 2, 3, 4, 5, 6, 7, 0, 6]])
    wide = torch.zeros(2, 18, dtype=torch.long)
    wide[:, ::2] = edge_index
    expected = e.relabel_edges(labels, 3, edge_index)
    for lab, edges in ((labels.int(), edge_index.int()), (labels, wide[:, ::2]),
                       (torch.stack([labels, labels], 1)[:, 0], edge_index.t().contiguous().t())):
        assert torch.equal(e.relabel_edges(lab, 3, edges), expected)
    assert torch.equal(e.coalesce_pairs(edge_index[0].int(), wide[1, ::2], 8),
                       e.coalesce_pairs(edge_index[0], edge_index[1], 8))
    grid = torch.tensor([0, 0, 1, 2, 2, 1], dtype=torch.int32)
    assert torch.equal(e.grid_quotient(grid, 3, 1, 2, 3),
                       e.grid_quotient(grid.long(), 3, 1, 2, 3))
    assert torch.equal(e.grid_quotient(torch.stack([grid, grid], 1)[:, 1], 3, 1, 2, 3),
                       e.grid_quotient(grid.long(), 3, 1, 2, 3))


def test_public_callers_keep_their_tensor_behaviour_on_float_labels():
    # grid_quotient's tensor path takes float labels: the same result on both paths.
    from dhtgraph.graph.pixel import grid_quotient

    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    native = grid_quotient(labels, 2, 1, 2, 2)
    with _native.disabled():
        assert torch.equal(native, grid_quotient(labels, 2, 1, 2, 2))


def test_empty_inputs():
    e = _native_edges()
    none = torch.zeros(0, dtype=torch.long)
    assert e.relabel_edges(none, 0, none.view(2, 0)).shape == (2, 0)
    assert e.coalesce_pairs(none, none, 0).shape == (2, 0)
    assert e.coalesce_pairs(none, none, 3, relabel=torch.tensor([0, 1, 2])).shape == (2, 0)
    assert e.grid_quotient(none, 0, 0, 3, 3).shape == (2, 0)
    assert e.grid_quotient(none, 0, 1, 0, 0, loops=True).shape == (2, 0)


@pytest.mark.parametrize("b, h, w", [(0, 3, 3), (0, 0, 0), (2, 0, 5), (1, 0, 2), (3, 0, 1),
                                     (2, 4, 0), (1, 1, 0), (2, 1, 1), (1, 1, 4), (1, 4, 1)])
@pytest.mark.parametrize("loops", [False, True])
def test_grid_quotient_of_empty_and_thin_grids_equals_the_tensor_path(b, h, w, loops):
    # No image, no row (height 0: the scan must not read a first row) or no column, and
    # single rows and columns, through the public function on both paths.
    from dhtgraph.graph.pixel import grid_quotient

    labels = torch.arange(b * h * w) % 3
    k = int(labels.max()) + 1 if labels.numel() else 0
    got = grid_quotient(labels, k, b, h, w, loops=loops)
    assert torch.equal(got, _tensor_grid_quotient(labels, k, b, h, w, loops))


def _tensor_grid_quotient(labels, k, b, h, w, loops):
    from dhtgraph.graph.pixel import grid_quotient

    with _native.disabled():
        return grid_quotient(labels, k, b, h, w, loops=loops)


@pytest.mark.parametrize("loops", [False, True])
def test_grid_quotient_of_dense_boundaries_equals_the_tensor_path(loops):
    # Nearly every neighbouring pair on a boundary (far more pairs than the kernel's first
    # guess of n / 8: its pair store grows), over several images.
    g = torch.Generator().manual_seed(5)
    b, h, w, k = 3, 37, 29, 700
    labels = Partition(torch.randint(0, k, (b * h * w,), generator=g)).labels
    k = int(labels.max()) + 1
    got = _native_edges().grid_quotient(labels, k, b, h, w, loops=loops)
    assert torch.equal(got, _tensor_grid_quotient(labels, k, b, h, w, loops))


@pytest.mark.parametrize("below", [0, 1])
def test_int32_and_int64_scratch_agree_at_the_switch(monkeypatch, below):
    # The kernels use int32 scratch when every index and count fits in the limit (2³¹ − 1;
    # lowered here to reach the switch on small inputs): m + k for an edge list, 4n + k for
    # the grid. At the limit (below=0) the int32 form, one under it the int64 form.
    e = _native_edges()
    g = torch.Generator().manual_seed(11)
    n, m = 300, 1200
    edge_index = torch.randint(0, n, (2, m), generator=g)
    edge_index = edge_index[:, torch.argsort(edge_index[0] * n + edge_index[1])]
    p = Partition(torch.randint(0, 60, (n,), generator=g))
    monkeypatch.setattr(e, "_NARROW_LIMIT", m + p.num_blocks - below)
    assert torch.equal(e.relabel_edges(p.labels, p.num_blocks, edge_index),
                       p.quotient(edge_index, self_loops=True))
    lo, hi = edge_index
    monkeypatch.setattr(e, "_NARROW_LIMIT", m + n - below)
    assert torch.equal(e.coalesce_pairs(lo, hi, n, undirected=True),
                       _unique_pairs(lo, hi, n, False, undirected=True))
    b, h, w = 2, 12, 17
    labels = Partition(torch.randint(0, 40, (b * h * w,), generator=g)).labels
    k = int(labels.max()) + 1
    monkeypatch.setattr(e, "_NARROW_LIMIT", 4 * b * h * w + k - below)
    for loops in (False, True):
        assert torch.equal(e.grid_quotient(labels, k, b, h, w, loops=loops),
                           _tensor_grid_quotient(labels, k, b, h, w, loops))
