"""dhtgraph.connected_components and choice_components: exact cases, networkx agreement."""

import networkx as nx
import pytest
import torch

from dhtgraph import Partition, choice_components, connected_components, grid_edge_index


def test_two_paths_and_an_isolated_node():
    edge_index = torch.tensor([[0, 3, 4], [1, 2, 5]])
    p = connected_components(edge_index, 7)
    assert p.labels.tolist() == [0, 0, 1, 1, 2, 2, 3]


def test_long_path_in_reverse_order():
    n = 1000
    edge_index = torch.stack([torch.arange(n - 1, 0, -1), torch.arange(n - 2, -1, -1)])
    assert connected_components(edge_index, n) == Partition.indiscrete(n)


def test_grid_is_one_component_and_empty_graph_is_discrete():
    assert connected_components(grid_edge_index(17, 23), 17 * 23).num_blocks == 1
    assert connected_components(torch.empty(2, 0, dtype=torch.long), 4) == Partition.discrete(4)
    assert connected_components(torch.empty(2, 0, dtype=torch.long), 0).num_blocks == 0


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_networkx_on_random_graphs(seed):
    g = torch.Generator().manual_seed(seed)
    n = 300
    edge_index = torch.randint(0, n, (2, 250), generator=g)
    ours = connected_components(edge_index, n)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edge_index.t().tolist())
    labels = torch.empty(n, dtype=torch.long)
    for k, component in enumerate(nx.connected_components(graph)):
        labels[list(component)] = k
    assert ours == Partition.from_labels(labels)


def test_choice_components_mutual_choices_and_loops():
    # 0 <-> 1 choose each other, 2 -> 1, 3 keeps its loop, 4 -> 5 -> 4
    choice = torch.tensor([1, 0, 1, 3, 5, 4])
    assert choice_components(choice).labels.tolist() == [0, 0, 0, 1, 2, 2]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: connected_components(torch.tensor([[0, 5]]).t(), 3), r"values in 0..2"),
        (lambda: connected_components(torch.zeros(3, 1, dtype=torch.long), 3), r"shape \(2, E\)"),
        (lambda: connected_components(torch.zeros(2, 1, dtype=torch.long), -1), "'num_nodes'"),
        (lambda: choice_components(torch.tensor([0, 2])), r"'choice' values in 0..1"),
        (lambda: choice_components(torch.zeros(2, 2, dtype=torch.long)), r"'choice' to have shape"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------ the union-find itself
from dhtgraph._union import (JUMPS_PER_READ, component_labels, forest_components,  # noqa: E402
                             functional_component_labels)


@pytest.mark.parametrize("seed", range(3))
def test_forest_with_deep_trees_and_extra_edges_agrees_with_networkx(seed):
    # Trees far deeper than 2**JUMPS_PER_READ (several rounds with nodes still moving
    # while edges hook): a pointer must never be dropped (it can be a link's only record).
    g = torch.Generator().manual_seed(seed)
    n = 3000
    parent = torch.arange(n)
    chain = torch.rand(n, generator=g) < 0.97  # long runs v → v − 1
    parent[1:] = torch.where(chain[1:], torch.arange(n - 1), parent[1:])
    low = torch.randint(0, n, (40,), generator=g)
    high = torch.randint(0, n, (40,), generator=g)
    labels, k = forest_components(parent.clone(), low, high)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(range(n), parent.tolist()))
    graph.add_edges_from(zip(low.tolist(), high.tolist()))
    expected = torch.empty(n, dtype=torch.long)
    for i, component in enumerate(sorted(nx.connected_components(graph), key=min)):
        expected[list(component)] = i
    # The draw really holds a tree deeper than one round of jumps resolves: the longest
    # run of v → v − 1 links.
    runs, longest = 0, 0
    for linked in chain[1:].tolist():
        runs = runs + 1 if linked else 0
        longest = max(longest, runs)
    assert longest > 2 ** JUMPS_PER_READ
    assert k == int(expected.max()) + 1 and torch.equal(labels.long(), expected)


def test_functional_components_of_a_long_chain_and_its_reverse():
    n = 5000
    forward = torch.cat([torch.arange(1, n), torch.tensor([n - 1])])  # v → v + 1
    backward = torch.cat([torch.tensor([0]), torch.arange(n - 1)])  # v → v − 1
    for choice in (forward, backward):
        labels, k = functional_component_labels(choice)
        assert k == 1 and not labels.any()
        assert torch.equal(labels, component_labels(torch.arange(n), choice, n)[0])


def test_functional_components_with_long_cycles_fall_back_exactly():
    # Cycles of length 3 and 5 (an argmax over symmetric potentials never makes them,
    # so the fast check fails and the min-forest algorithm answers) and a 2-cycle.
    choice = torch.tensor([1, 2, 0, 4, 5, 6, 7, 3, 9, 8, 9])
    labels, k = functional_component_labels(choice)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2] and k == 3


# ------------------------------------------- the native kernels equal the tensor path
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dhtgraph import _native  # noqa: E402
from dhtgraph._union import finish_components  # noqa: E402
from dhtgraph.testing import choices, grid_graphs  # noqa: E402

_needs_components = pytest.mark.skipif(not _native.available("components"),
                                       reason="native kernels 'components' not in use")


def _both(fn, *args):
    native = fn(*args)
    with _native.disabled():
        tensor = fn(*args)
    return native, tensor


def _same(native, tensor):
    assert native[1] == tensor[1]
    assert native[0].dtype == tensor[0].dtype and torch.equal(native[0], tensor[0])


@_needs_components
def test_native_components_by_hand():
    _same(*_both(component_labels, torch.tensor([0, 3, 4, 6]), torch.tensor([1, 2, 5, 6]), 8))
    _same(*_both(functional_component_labels, torch.tensor([1, 0, 1, 3, 5, 4])))
    _same(*_both(functional_component_labels, torch.tensor([1, 2, 0, 4, 5, 6, 7, 3, 9, 8, 9])))
    native = functional_component_labels(torch.tensor([1, 2, 0, 4, 5, 6, 7, 3, 9, 8, 9]))
    assert native[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2] and native[1] == 3
    forest = torch.tensor([0, 0, 2, 2, 1, 5], dtype=torch.int32)
    _same(*_both(forest_components, forest))
    _same(*_both(forest_components, forest, torch.tensor([5, 3], dtype=torch.int32),
                 torch.tensor([4, 0], dtype=torch.int32)))
    assert forest_components(forest)[0].tolist() == [0, 0, 1, 1, 0, 2]
    for n in (0, 1):
        empty = torch.zeros(0, dtype=torch.long)
        _same(*_both(component_labels, empty, empty, n))
        _same(*_both(functional_component_labels, torch.zeros(n, dtype=torch.long)))


@_needs_components
@pytest.mark.parametrize("seed", range(4))
def test_native_components_equal_the_tensor_path_at_scale(seed):
    g = torch.Generator().manual_seed(seed)
    n = [1000, 50176, 3000, 20000][seed]
    # Grid-like choices (a neighbour each, 2-cycles) and arbitrary ones (long cycles).
    side = int(n ** 0.5)
    offset = torch.tensor([-side, -1, 1, side])[torch.randint(0, 4, (n,), generator=g)]
    grid_choice = (torch.arange(n) + offset).clamp(0, n - 1)
    _same(*_both(functional_component_labels, grid_choice))
    _same(*_both(functional_component_labels, torch.randint(0, n, (n,), generator=g)))
    src, dst = torch.randint(0, n, (2, n // 2), generator=g)
    _same(*_both(component_labels, src, dst, n))
    parent = (torch.arange(n) - (torch.rand(n, generator=g) < 0.9).long()).clamp(0)
    for dtype in (torch.int32, torch.long):
        _same(*_both(forest_components, parent.to(dtype), src[:40].to(dtype), dst[:40].to(dtype)))
    group, k = forest_components(parent)
    _same(*_both(finish_components, group, k, group[src[:50]], group[dst[:50]]))


@_needs_components
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_native_components_property(data):
    # Contraction-like choices on grids and arbitrary edge lists on their nodes (measured
    # over 300 draws: median 12 nodes, 4 choice components, 2 edge components).
    graph = data.draw(grid_graphs(max_side=6, max_images=2), label="grid")
    choice = data.draw(choices(graph.edge_index, graph.num_nodes), label="choice")
    _same(*_both(functional_component_labels, choice))
    n = graph.num_nodes
    m = data.draw(st.integers(0, 2 * n), label="m")
    ends = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                              min_size=m, max_size=m), label="edges")
    src, dst = torch.tensor(ends, dtype=torch.long).reshape(-1, 2).t()
    _same(*_both(component_labels, src, dst, n))
    forest = torch.minimum(choice, torch.arange(n))
    _same(*_both(forest_components, forest.int(), src.int(), dst.int()))


@_needs_components
def test_native_components_fall_back_on_bad_indices():
    # Out-of-range indices: the tensor path's own error, whichever path is on.
    for call in (lambda: functional_component_labels(torch.tensor([0, 2])),
                 lambda: functional_component_labels(torch.tensor([0, -1])),
                 lambda: component_labels(torch.tensor([0]), torch.tensor([3]), 2)):
        with _native.disabled(), pytest.raises((IndexError, RuntimeError)) as expected:
            call()
        with pytest.raises(expected.type):
            call()


@_needs_components
def test_native_components_of_int32_strided_and_float_inputs():
    # Converted copies live until the kernel returns (int32, strided); float and bool
    # inputs are not truncated: the tensor path decides, whichever path is on.
    choice = torch.tensor([1, 0, 1, 3, 5, 4, 4, 2])
    wide = torch.stack([choice, choice], 1).reshape(-1)[::2]  # not contiguous
    assert not wide.is_contiguous()
    for c in (choice.int(), wide, choice.to(torch.int16)):
        _same(*_both(functional_component_labels, c))
    src, dst = torch.tensor([[0, 3, 4, 6, 6, 1], [1, 2, 5, 6, 0, 7]])
    _same(*_both(component_labels, src.int()[::2], dst[::2], 8))
    forest = torch.tensor([0, 0, 2, 2, 1, 5, 5, 0])
    _same(*_both(forest_components, forest[:6], src.int()[:2], torch.tensor([5, 3])[:2]))
    from dhtgraph._native import components as N
    assert N.choice_components(torch.tensor([0.2, 0.7])) is None
    assert N.edge_components(torch.tensor([0.0]), torch.tensor([1.0]), 2) is None
    assert N.forest_components(torch.tensor([0.0, 0.9])) is None
    assert N.forest_components(torch.tensor([0, 0]), torch.tensor([True]),
                               torch.tensor([1])) is None
    for call in (lambda: functional_component_labels(torch.tensor([0.2, 0.7])),
                 lambda: component_labels(torch.tensor([0.0]), torch.tensor([1.0]), 2)):
        try:
            with _native.disabled():
                tensor = call()
        except Exception as error:  # the tensor path's own error, on both paths
            with pytest.raises(type(error)):
                call()
        else:
            _same(call(), tensor)
