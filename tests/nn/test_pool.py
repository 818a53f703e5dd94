"""DHTPooling / DHTSelect / DHTConnect: dHT as a PyG pooling layer (issue 11).

The exact cases are worked out by hand from the method (spec §3–§5):

* level 0 has no self-loops, so every node merges with its best neighbour (largest
  Gaussian potential ``exp(−‖Δx‖²)``, ties to the larger neighbour index);
* a graph stops contracting at ≤ 6 blocks (``min_clusters``) or after ``⌈log₂ √n⌉`` levels;
* the AICc selection (ι = 5) compares ``IC(S) = −((m/n)·log(ι + 2πσ²) + P(m))`` with the
  nodes' start ``−√n``; ``P(3) ≈ 1.474``, ``P(5) ≈ 0.474``, ``P(9) ≈ 0.189``,
  ``P(10) ≈ 0.164``.
"""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn.pool.connect import Connect, ConnectOutput
from torch_geometric.nn.pool.select import Select

from dhtgraph import Partition, connected_components
from dhtgraph.nn import DHTConnect, DHTPooling, DHTSelect
from dhtgraph.selection import penalty
from dhtgraph.testing.graphs import random_graphs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def undirected(pairs):
    e = torch.tensor(pairs, dtype=torch.long).t()
    return torch.cat([e, e.flip(0)], dim=1)


def path_graph(n):
    return undirected([(i, i + 1) for i in range(n - 1)])


def two_cliques():
    pairs = list(itertools.combinations(range(5), 2)) + \
        list(itertools.combinations(range(5, 10), 2)) + [(4, 5)]
    return undirected(pairs)


def star(leaves):
    return undirected([(0, i) for i in range(1, leaves + 1)])


def ic(m, n, var, channels=1):
    fit = (m / n) * math.log(5.0 + (2 * math.pi * var) ** channels)
    return -(fit + float(penalty(torch.tensor([m]))[0]))


def test_penalties_used_in_the_hand_computations():
    assert float(penalty(torch.tensor([3]))[0]) == pytest.approx(1.4736, abs=1e-3)
    assert float(penalty(torch.tensor([5]))[0]) == pytest.approx(0.474, abs=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_path_of_three_groups(device):
    # x = 0,0,0 | 5,5,5 | 10,10,10 on a path of 9 nodes. Level 1: node 1 takes 2 (tie,
    # larger index), 2 takes 1, 3 takes 4 ... → {0,1,2}, {3,4,5}, {6,7,8}: 3 ≤ 6 blocks,
    # stop. IC of a group: −(3/9·log 5 + P(3)) ≈ −2.01 > −√9 = −3: selected; the top
    # (σ² = 50/3) has IC ≈ −4.9 < −2.01: not.
    assert ic(3, 9, 0.0) > -3 and ic(9, 9, 50 / 3) < ic(3, 9, 0.0)
    x = torch.tensor([0.0] * 3 + [5.0] * 3 + [10.0] * 3, device=device).unsqueeze(1)
    e = path_graph(9).to(device)
    for pool in ("weighted", "mean", "sum", "max"):
        out, edges, batch, info = DHTPooling(1, pool=pool).to(device)(x, e)
        assert info.cluster.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert edges.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
        assert batch.tolist() == [0, 0, 0]
        factor = 3.0 if pool == "sum" else 1.0
        assert out.view(-1).tolist() == pytest.approx([0.0, 5.0 * factor, 10.0 * factor])


def test_two_cliques_joined_by_one_edge():
    # K5 (x = 0) – K5 (x = 3) through edge (4, 5): each clique contracts to one block at
    # level 1 (its nodes' best neighbours are inside it, potential 1 vs e^−9). IC of a
    # clique −(½·log 5 + P(5)) ≈ −1.28 > −√10; the top (σ² = 2.25 in both channels)
    # −(log(5 + (2π·2.25)²) + P(10)) ≈ −5.49 < −1.28: two clusters.
    assert ic(5, 10, 0.0) > -math.sqrt(10) and ic(10, 10, 2.25, channels=2) < ic(5, 10, 0.0)
    x = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 3.0)])
    e = two_cliques()
    attr = torch.ones(e.shape[1], 3)
    out, edges, batch, info, eattr = DHTPooling(2, pool="mean")(x, e, edge_attr=attr,
                                                                 return_edge_attr=True)
    assert info.cluster.tolist() == [0] * 5 + [1] * 5
    assert edges.tolist() == [[0, 1], [1, 0]]
    assert out.tolist() == [[0.0, 0.0], [3.0, 3.0]]
    # Edge attributes summed onto the coarsened edges: one edge (4, 5) each way.
    assert eattr.tolist() == [[1.0] * 3, [1.0] * 3]


def test_star_contracts_to_one_cluster_with_the_weighted_mean():
    # Centre 0 (x = 0), leaves 1–4 (x = 0) and 5–8 (x = 3). Level 0 has no loops, so every
    # leaf takes the centre and the centre takes leaf 4: one block of 9 (≤ 6 blocks: stop).
    # Its argmax-edge weights are √K̃: 1 for the centre and leaves 1–4, e^−4.5 for leaves
    # 5–8, so μ* = 12·e^−4.5 / (5 + 4·e^−4.5); its weighted σ² gives IC > −3 = −√9.
    x = torch.zeros(9, 1)
    x[5:] = 3.0
    out, edges, batch, info = DHTPooling(1)(x, star(8))
    w = math.exp(-4.5)
    mu = 12 * w / (5 + 4 * w)
    assert info.cluster.tolist() == [0] * 9
    assert out.view(-1).tolist() == pytest.approx([mu], rel=1e-5)
    var = (5 * mu ** 2 + 4 * w * (3 - mu) ** 2) / (5 + 4 * w)
    assert ic(9, 9, var) > -3
    assert edges.shape == (2, 0)
    # 'mean' is the exact node mean, 'max' the largest value.
    assert DHTPooling(1, pool="mean")(x, star(8))[0].item() == pytest.approx(12 / 9)
    assert DHTPooling(1, pool="max")(x, star(8))[0].item() == 3.0


def test_budget_is_exact_and_merges_adjacent_clusters():
    x = torch.tensor([0.0] * 3 + [5.0] * 3 + [10.0] * 3).unsqueeze(1)
    out, edges, batch, info = DHTPooling(1, max_clusters=2, pool="mean")(x, path_graph(9))
    # Ward costs: {0..2}+{3..5} and {3..5}+{6..8} tie (1.5·25); either way 2 clusters,
    # each a connected union of the three groups.
    assert out.shape == (2, 1) and batch.tolist() == [0, 0]
    assert Partition(info.cluster).is_connected(path_graph(9))
    assert sorted(Partition(info.cluster).sizes.tolist()) == [3, 6]


def test_is_a_pyg_select_and_connect():
    select = DHTSelect(2)
    assert isinstance(select, Select) and isinstance(DHTConnect(), Connect)
    out = select(torch.cat([torch.zeros(5, 2), torch.full((5, 2), 3.0)]), two_cliques())
    assert out.cluster_index.tolist() == [0] * 5 + [1] * 5
    assert out.num_clusters == 2 and out.node_index.tolist() == list(range(10))
    connected = DHTConnect()(out, two_cliques(), batch=torch.zeros(10, dtype=torch.long))
    assert isinstance(connected, ConnectOutput)
    assert connected.edge_index.tolist() == [[0, 1], [1, 0]]
    assert connected.batch.tolist() == [0, 0]


@st.composite
def featured_graphs(draw):
    graph = draw(random_graphs(min_nodes=1, max_nodes=24, max_edges=60, undirected=True))
    n = graph.num_nodes
    groups = draw(st.integers(1, 4))
    levels = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=groups, max_size=groups))
    x = torch.tensor([levels[i % groups] for i in range(n)]).unsqueeze(1)
    noise = draw(st.integers(0, 2**16))
    x = x + 0.05 * torch.randn(n, 1, generator=torch.Generator().manual_seed(noise))
    return x, graph.edge_index


def _check_output_laws(graph, budget):
    # theory/: every cluster is connected, the assignment is a Partition of the nodes, the
    # coarsened graph is the quotient, the pooled batch is every cluster's graph.
    # Returns (nodes, clusters), or None where the budget is refused.
    x, e = graph
    n = x.shape[0]
    parts = connected_components(e, n).num_blocks
    if budget is not None and parts > budget:
        with pytest.raises(ValueError, match=f"at most max_clusters={budget} connected "
                                             f"components \\(got graph 0 with {parts}\\)"):
            DHTPooling(1, max_clusters=budget)(x, e)
        return None
    out, edges, batch, info = DHTPooling(1, max_clusters=budget, pool="mean")(x, e)
    partition = Partition(info.cluster)
    partition.validate()
    assert partition.num_items == n and partition.num_blocks == out.shape[0]
    assert partition.is_connected(e)
    assert torch.equal(edges, partition.quotient(e))
    assert torch.allclose(out, partition.reduce(x, "mean"))
    assert batch.tolist() == [0] * out.shape[0]
    if budget is not None:
        assert out.shape[0] <= budget
    return n, out.shape[0]


@settings(max_examples=30)
@given(featured_graphs(), st.sampled_from([None, 2, 3]))
def test_output_laws(graph, budget):
    _check_output_laws(graph, budget)


def test_the_law_strategy_draws_non_trivial_cases():
    # Measured on its own draws (not on another test's): the laws must see graphs where the
    # pooling actually merged some nodes but not all, in at least a third of the examples.
    drawn = []

    @settings(max_examples=30, derandomize=True, database=None)
    @given(featured_graphs(), st.sampled_from([None, 2, 3]))
    def laws(graph, budget):
        result = _check_output_laws(graph, budget)
        if result is not None:
            drawn.append(result)

    laws()
    merged = sum(1 for n, k in drawn if 1 < k < n)
    assert drawn and merged >= len(drawn) // 3, drawn


def random_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for k in sizes:
        e = torch.randint(0, k, (2, 3 * k), generator=g)
        graphs.append(Data(x=torch.randn(k, 3, generator=g), edge_index=torch.cat([e, e.flip(0)], 1)))
    return graphs


@pytest.mark.parametrize("pool", ["weighted", "mean"])
def test_batch_independence(pool):
    graphs = random_batch([12, 40, 7, 25])
    layer = DHTPooling(3, pool=pool, max_clusters=6)
    batch = Batch.from_data_list(graphs)
    out, edges, out_batch, info = layer(batch.x, batch.edge_index, batch.batch)
    start = 0
    for i, graph in enumerate(graphs):
        alone = layer(graph.x, graph.edge_index)
        mine = out_batch == i
        assert torch.equal(out[mine], alone[0])
        k = int(mine.sum())
        assert torch.equal(info.cluster[batch.batch == i] - start, alone[3].cluster)
        inside = mine[edges[0]]
        assert torch.equal(edges[:, inside] - start, alone[1])
        start += k


def test_gradients_reach_the_parameters_and_the_input():
    graphs = random_batch([20, 30], seed=1)
    batch = Batch.from_data_list(graphs)
    layer = DHTPooling(3, 4)
    x = batch.x.clone().requires_grad_()
    out, _, out_batch, _ = layer(x, batch.edge_index, batch.batch)
    assert out.shape[1] == 4 == layer.out_channels
    (out.pow(2).sum()).backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    assert grads["select.projection.weight"].abs().sum() > 0
    assert x.grad.abs().sum() > 0
    # The loop potential gets a gradient once blocks hold variance and choose loops.
    assert grads["select.var_projection.bias"] is not None


def test_loop_potential_gradient_is_non_zero_when_loops_are_chosen():
    # A path of 40 nodes in 8 groups 1.2 apart: after level 1 blocks have variance, and a
    # block that takes its own loop (potential sigmoid(a·σ² + b)) while a neighbour takes
    # it pools with weight m·√K̃(loop): the loop parameters get a (small) gradient. With
    # groups 3 apart no chosen block takes its loop and the gradient is exactly 0.
    x = torch.repeat_interleave(torch.arange(8.0) * 1.2, 5).unsqueeze(1)
    x = x + 0.2 * torch.sin(torch.arange(40.0)).unsqueeze(1)
    layer = DHTPooling(1, min_clusters=1)
    out = layer(x, path_graph(40))[0]
    out.pow(2).sum().backward()
    assert layer.select.var_projection.bias.grad.abs() > 0
    assert layer.select.var_projection.weight.grad.abs() > 0


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 2, dtype=torch.float64, generator=g)
    e = path_graph(12)
    layer = DHTPooling(2).double()
    torch.autograd.gradcheck(lambda v: layer(v, e)[0], (x.requires_grad_(),))


def test_unpool_restores_node_count_and_order():
    graphs = random_batch([9, 14])
    batch = Batch.from_data_list(graphs)
    layer = DHTPooling(3, pool="mean")
    out, edges, out_batch, info = layer(batch.x, batch.edge_index, batch.batch)
    x, e, b = layer.unpool(out, info)
    assert x.shape == batch.x.shape
    assert torch.equal(e, batch.edge_index) and torch.equal(b, batch.batch)
    assert torch.equal(x, out[info.cluster])
    assert torch.allclose(Partition(info.cluster).reduce(x, "mean"), out)


def test_dataloader_batches():
    graphs = random_batch([5, 17, 30, 11, 8, 21])
    layer = DHTPooling(3, pool="mean")
    seen = 0
    for data in DataLoader(graphs, batch_size=4):
        out, edges, batch, info = layer(data.x, data.edge_index, data.batch)
        assert batch.max() + 1 == data.num_graphs
        assert info.cluster.numel() == data.num_nodes
        seen += data.num_graphs
    assert seen == 6


def test_isolated_nodes_and_single_node_graphs():
    x = torch.randn(4, 2)
    e = torch.zeros(2, 0, dtype=torch.long)
    out, edges, batch, info = DHTPooling(2, pool="mean")(x, e, torch.tensor([0, 1, 1, 2]))
    assert info.cluster.tolist() == [0, 1, 2, 3] and batch.tolist() == [0, 1, 1, 2]


def test_bad_input():
    layer = DHTPooling(2)
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match=r"'edge_index' values in \[0, 5\) \(got 0..7\)"):
        layer(x, torch.tensor([[0, 1], [7, 2]]))
    with pytest.raises(ValueError, match=r"'batch' to be an integer tensor of shape \(5,\)"):
        layer(x, path_graph(5), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="'x' to be a float tensor"):
        layer(torch.ones(5, 2, dtype=torch.long), path_graph(5))
    with pytest.raises(ValueError, match="'x' to have 2 channels"):
        layer(torch.randn(5, 3), path_graph(5))
    with pytest.raises(ValueError, match="'pool' to be one of"):
        DHTPooling(2, pool="median")
    with pytest.raises(ValueError, match="'criterion' to be one of"):
        DHTPooling(2, criterion="mdl")
    with pytest.raises(ValueError, match="'iota'"):
        DHTPooling(2, iota=-1)
    with pytest.raises((TypeError, ValueError), match="'max_clusters'"):
        DHTPooling(2, max_clusters=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ratio'"):
        DHTPooling(2, ratio=0.5)
    with pytest.raises(ValueError, match="'pos'"):
        DHTPooling(2, compactness=0.1)(x, path_graph(5))


def test_repr_shows_options():
    text = repr(DHTPooling(3, 8, iota=2.0, max_clusters=4, pool="mean"))
    for part in ("DHTPooling(3, 8", "pool='mean'", "iota=2.0", "max_clusters=4", "'aicc'"):
        assert part in text


def planted_vs_random(num_graphs, seed):
    """Label 1: two planted dense communities (joined by one edge) whose nodes carry their
    community's sign (±1 + noise); label 0: a random graph with the same node and edge
    counts and the same features shuffled over its nodes. Homophily is the signal."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        half = int(torch.randint(5, 9, (1,), generator=g))
        n = 2 * half
        pairs = [(a, b) for a, b in itertools.combinations(range(n), 2)
                 if (a < half) == (b < half)]
        keep = torch.rand(len(pairs), generator=g) < 0.6
        pairs = [p for p, k in zip(pairs, keep) if k] + [(half - 1, half)]
        sign = torch.cat([torch.ones(half), -torch.ones(half)])
        x = (sign + 0.5 * torch.randn(n, generator=g)).unsqueeze(1)
        if i % 2 == 0:
            count = len(pairs)
            pairs = set()
            while len(pairs) < count:
                a, b = torch.randint(0, n, (2,), generator=g).tolist()
                if a != b:
                    pairs.add((min(a, b), max(a, b)))
            pairs = sorted(pairs)
            x = x[torch.randperm(n, generator=g)]
        graphs.append(Data(x=x, edge_index=undirected(pairs), y=torch.tensor([i % 2])))
    return graphs


@pytest.mark.parametrize("seed", [0])
def test_small_gnn_with_dhtpooling_learns_planted_communities(seed):
    from torch_geometric.nn import GCNConv, global_mean_pool

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = GCNConv(1, 8)
            self.pool = DHTPooling(8, max_clusters=4)
            self.conv2 = GCNConv(8, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, data):
            h = self.conv1(data.x, data.edge_index).relu()
            h, e, b, _ = self.pool(h, data.edge_index, data.batch)
            h = self.conv2(h, e).relu()
            return self.head(global_mean_pool(h, b))

    train, test = planted_vs_random(64, seed=1), planted_vs_random(64, seed=2)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(10):
        for data in DataLoader(train, batch_size=32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(data), data.y).backward()
            opt.step()
    with torch.no_grad():
        data = next(iter(DataLoader(test, batch_size=64)))
        accuracy = (model(data).argmax(1) == data.y).float().mean().item()
    # Chance is 0.5 (balanced labels).
    assert accuracy >= 0.8, accuracy
