"""DHTPooling against PyG's pooling layers, all in one process (issue 11 §4).

What it measures, for every layer (DHTPooling, DHTPooling with one contraction level,
EdgePooling, ClusterPooling, TopKPooling, SAGPooling, ASAPooling, graclus + avg_pool_x):

1. **Time** (median wall time) of one forward call and of forward + backward (loss
   ``out.square().sum()``, gradients into x and the layer's parameters) on
   - 4-neighbour grid graphs of 64², 224², 512² nodes,
   - random geometric graphs (uniform points in the unit square, radius for a mean degree
     of about 8; scipy's cKDTree) of 10k, 100k, 1M nodes,
   with 8 smooth noisy node features. A layer whose first forward takes more than
   ``--skip-after`` seconds (default 20) is timed once and skipped on larger graphs, and
   a layer whose forward + backward, grown linearly in the node count from the previous
   graph, would exceed it is skipped there, with the reason in the table. Also: nodes
   out, peak extra resident memory of the first forward (RSS sampled every 2 ms; memory
   the allocator already holds from earlier layers does not show), time per node and its
   growth from the smallest to the largest graph.
   "Per level": DHTPooling builds ⌈log₂ √n⌉-capped levels in one call; its time per call
   is also reported divided by the levels it built, and ``DHTPooling(levels=1)`` is one
   contraction level, the like-for-like match of one EdgePooling call.
2. **Accuracy** of the same small GNN (GCN 16 → pool → GCN 16 → mean → linear) with each
   layer on two generated graph-classification sets (:func:`dataset`: two planted
   communities vs random graphs with the same counts; two vs three planted communities;
   community-valued node features), 128 training and 128 test graphs, Adam 0.01, batch 32,
   30 epochs (quick: 10), mean ± std over seeds (5, quick mode 2).

graclus needs a backend: PyG 2.8's ``torch_geometric.nn.graclus`` calls pyg-lib ≥ 0.6; without
it the script calls torch-cluster's ``graclus_cluster`` (the same algorithm) and records
which in the JSON; with neither it is skipped with the reason
(``pip install --no-index --find-links ../shared/wheels torch-cluster``).

Usage: ``python benchmarks/pooling.py [--quick]``; writes ``benchmarks/results/pooling.json``.
Quick mode: grids 64², 224²; random geometric graphs 10k, 100k; 1 repeat (else 3); 2 seeds.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/tokenize.py would shadow the standard library's tokenize: the script's
# folder goes last on the path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from _common import median_time, peak_extra_memory, write_json  # noqa: E402

from dhtgraph import grid_edge_index  # noqa: E402
from dhtgraph.nn.pool import DHTPooling  # noqa: E402

CHANNELS = 8
SKIP_AFTER_S = 20.0


# ----------------------------------------------------------------------------- graphs
def grid_graph(side: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    pos = torch.stack([rows.reshape(-1), cols.reshape(-1)], 1).float() / side
    return _features(pos, g), grid_edge_index(side, side)


def geometric_graph(n: int, seed: int = 0, degree: float = 8.0):
    from scipy.spatial import cKDTree

    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=g, dtype=torch.float64)
    radius = math.sqrt(degree / (math.pi * n))
    pairs = cKDTree(pos.numpy()).query_pairs(radius, output_type="ndarray")
    e = torch.from_numpy(pairs).long().t()
    return _features(pos.float(), g), torch.cat([e, e.flip(0)], 1)


def _features(pos, g):
    # Smooth pieces (a few sinusoids of the position) plus noise: regions a pooling can find.
    freq = torch.randn(2, CHANNELS, generator=g) * 6
    return torch.sin(pos @ freq) + 0.1 * torch.randn(pos.shape[0], CHANNELS, generator=g)


# ----------------------------------------------------------------------------- layers
def _graclus_available():
    try:
        import torch_cluster  # noqa: F401
        return None
    except Exception as error:  # noqa: BLE001 - report why
        return f"torch-cluster not importable ({type(error).__name__}: {error})"


def graclus_backend():
    """'torch_geometric' when PyG's graclus runs (it needs pyg-lib ≥ 0.6 in PyG 2.8),
    else 'torch_cluster' (its graclus_cluster, the same algorithm PyG used to call)."""
    from torch_geometric.nn import graclus

    try:
        graclus(torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
        return "torch_geometric"
    except ImportError:
        return "torch_cluster"


def graclus_cluster(edge_index, weight, num_nodes):
    if graclus_backend() == "torch_geometric":
        from torch_geometric.nn import graclus

        return graclus(edge_index, weight, num_nodes)
    import torch_cluster

    return torch_cluster.graclus_cluster(edge_index[0], edge_index[1], weight, num_nodes)


class Graclus(torch.nn.Module):
    """graclus clustering (edge weight: feature similarity) + avg_pool_x."""

    def forward(self, x, edge_index, batch):
        from torch_geometric.nn import avg_pool_x

        weight = torch.exp(-(x[edge_index[0]] - x[edge_index[1]]).pow(2).sum(-1)).detach()
        cluster = graclus_cluster(edge_index, weight, x.shape[0])
        out, b = avg_pool_x(cluster, x, batch)
        return out, b


def make_layer(name: str, channels: int):
    from torch_geometric.nn import ASAPooling, ClusterPooling, EdgePooling, SAGPooling, TopKPooling

    return {
        "DHTPooling": lambda: DHTPooling(channels),
        "DHTPooling(levels=1)": lambda: DHTPooling(channels, levels=1),
        "EdgePooling": lambda: EdgePooling(channels),
        "ClusterPooling": lambda: ClusterPooling(channels),
        "TopKPooling": lambda: TopKPooling(channels, ratio=0.5),
        "SAGPooling": lambda: SAGPooling(channels, ratio=0.5),
        "ASAPooling": lambda: ASAPooling(channels, ratio=0.5),
        "graclus": lambda: Graclus(),
    }[name]()


LAYERS = ["DHTPooling", "DHTPooling(levels=1)", "EdgePooling", "ClusterPooling", "TopKPooling",
          "SAGPooling", "ASAPooling", "graclus"]


def run_layer(layer, x, edge_index, batch):
    """(pooled x, pooled batch) of any of the layers."""
    if isinstance(layer, Graclus):
        return layer(x, edge_index, batch)
    out = layer(x, edge_index, batch=batch)
    if isinstance(layer, DHTPooling):
        return out[0], out[2]
    name = type(layer).__name__
    if name in ("EdgePooling", "ClusterPooling"):
        return out[0], out[2]
    if name == "ASAPooling":
        return out[0], out[3]
    return out[0], out[3]  # TopK / SAG: x, edge_index, edge_attr, batch, perm, score


# ----------------------------------------------------------------------------- timing
def time_graphs(quick: bool, repeats: int, skip_after: float):
    sizes = [("grid", s) for s in ((64, 224) if quick else (64, 224, 512))]
    sizes += [("rgg", n) for n in ((10_000, 100_000) if quick else (10_000, 100_000, 1_000_000))]
    graclus_missing = _graclus_available()
    rows, skipped, last = [], {}, {}
    for kind, size in sizes:
        x, e = grid_graph(size) if kind == "grid" else geometric_graph(size)
        n = x.shape[0]
        batch = torch.zeros(n, dtype=torch.long)
        label = f"grid {size}²" if kind == "grid" else f"rgg {size:,}"
        print(f"== {label}: {n} nodes, {e.shape[1]} directed edges", flush=True)
        for name in LAYERS:
            row = {"graph": label, "kind": kind, "nodes": n, "edges": int(e.shape[1]),
                   "layer": name}
            if name == "graclus" and graclus_missing:
                row["skipped"] = graclus_missing
                rows.append(row)
                continue
            if name in skipped:
                row["skipped"] = skipped[name]
                rows.append(row)
                continue
            if name in last:
                n0, t0 = last[name]
                predicted = t0 * n / n0
                if predicted > skip_after:
                    row["skipped"] = (f"predicted forward+backward {predicted:.0f} s > "
                                      f"{skip_after:.0f} s (linear growth from {t0:.1f} s at "
                                      f"{n0} nodes)")
                    skipped[name] = row["skipped"]
                    rows.append(row)
                    print(f"  {name:22s} {row['skipped']}", flush=True)
                    continue
            torch.manual_seed(0)
            layer = make_layer(name, CHANNELS)
            result = {}

            def first_call():
                start = time.perf_counter()
                with torch.no_grad():
                    result["out"] = run_layer(layer, x, e, batch)[0]
                result["seconds"] = time.perf_counter() - start

            try:
                # The first call: peak extra resident memory (sampled) and a time that
                # decides whether the layer is timed further.
                row["peak_extra_mb"] = peak_extra_memory(first_call) / 2**20
                out, first = result["out"], result["seconds"]
            except Exception as error:  # noqa: BLE001 - a peer failing is a result
                row["skipped"] = f"error: {type(error).__name__}: {str(error)[:200]}"
                rows.append(row)
                print(f"  {name:22s} {row['skipped']}", flush=True)
                continue
            row["nodes_out"] = int(out.shape[0])
            if first > skip_after:
                row["forward_s"] = first
                row["note"] = f"timed once ({first:.1f} s > {skip_after:.0f} s)"
                skipped[name] = f"forward took {first:.1f} s > {skip_after:.0f} s on a smaller graph"
                rows.append(row)
                print(f"  {name:22s} forward {first:8.3f} s (once; skipped on larger graphs)",
                      flush=True)
                continue

            def forward():
                with torch.no_grad():
                    run_layer(layer, x, e, batch)

            xg = x.clone().requires_grad_()

            def forward_backward():
                layer.zero_grad(set_to_none=True)
                xg.grad = None
                out, _ = run_layer(layer, xg, e, batch)
                out.square().sum().backward()

            row["forward_s"] = median_time(forward, repeats=repeats, warmup=0)
            row["forward_backward_s"] = median_time(forward_backward, repeats=repeats, warmup=0)
            last[name] = (n, row["forward_backward_s"])
            row["us_per_node"] = 1e6 * row["forward_s"] / n
            if isinstance(layer, DHTPooling):
                built = layer.select.select(x, e, batch)
                row["levels"] = int(built.num_levels.max())
            rows.append(row)
            print(f"  {name:22s} fwd {row['forward_s']:8.3f} s  fwd+bwd "
                  f"{row['forward_backward_s']:8.3f} s  {row['nodes_out']:>8} out  "
                  f"{row['peak_extra_mb']:8.1f} MB", flush=True)
            if row["forward_backward_s"] > skip_after:
                skipped[name] = (f"forward+backward took {row['forward_backward_s']:.1f} s > "
                                 f"{skip_after:.0f} s on a smaller graph")
    return rows


def summarise(rows):
    summary = {}
    by = {(r["graph"], r["layer"]): r for r in rows}
    for graph in dict.fromkeys(r["graph"] for r in rows):
        dht, edge = by.get((graph, "DHTPooling(levels=1)")), by.get((graph, "EdgePooling"))
        full = by.get((graph, "DHTPooling"))
        if dht and edge and "forward_s" in dht and "forward_s" in edge:
            summary[f"EdgePooling / DHTPooling(levels=1) forward, {graph}"] = \
                edge["forward_s"] / dht["forward_s"]
        if full and edge and "forward_s" in full and "forward_s" in edge:
            summary[f"EdgePooling / DHTPooling (all levels) forward, {graph}"] = \
                edge["forward_s"] / full["forward_s"]
            if full.get("levels"):
                summary[f"EdgePooling / (DHTPooling per level) forward, {graph}"] = \
                    edge["forward_s"] / (full["forward_s"] / full["levels"])
    for layer in LAYERS:
        rgg = [r for r in rows if r["layer"] == layer and r["kind"] == "rgg" and "us_per_node" in r]
        if len(rgg) >= 2:
            summary[f"{layer} time per node, {rgg[-1]['graph']} / {rgg[0]['graph']}"] = \
                rgg[-1]["us_per_node"] / rgg[0]["us_per_node"]
    return summary


# ----------------------------------------------------------------------------- accuracy
def _undirected(pairs):
    e = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    return torch.cat([e, e.flip(0)], 1)


def _communities(sizes, p_in, g):
    offsets = [0] + list(itertools.accumulate(sizes))
    pairs = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        block = list(itertools.combinations(range(a, b), 2))
        keep = torch.rand(len(block), generator=g) < p_in
        pairs += [p for p, k in zip(block, keep) if k]
    for i in range(len(sizes) - 1):  # one bridge between consecutive communities
        pairs.append((offsets[i + 1] - 1, offsets[i + 1]))
    return pairs, offsets[-1]


def _random(n, m, g):
    pairs = set()
    while len(pairs) < m:
        a, b = torch.randint(0, n, (2,), generator=g).tolist()
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    return list(pairs)


def dataset(name: str, count: int, seed: int):
    """Balanced labels. Nodes of a planted community carry its value (a random sign per
    community, ±1) plus N(0, 0.5²) noise, so homophily is the signal a pooling can use.

    - 'planted-vs-random': label 1 two communities (edge probability 0.6 inside, one
      bridge); label 0 a random graph with the same node and edge counts and the same
      features shuffled over its nodes;
    - 'two-vs-three-communities': 18–30 nodes in two (label 0) or three (label 1)
      communities, features as above.
    """
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        label = i % 2
        if name == "planted-vs-random":
            half = int(torch.randint(5, 9, (1,), generator=g))
            sizes = [half, half]
        else:
            n = int(torch.randint(18, 31, (1,), generator=g))
            parts = 2 + label
            sizes = [n // parts + (1 if j < n % parts else 0) for j in range(parts)]
        pairs, n = _communities(sizes, 0.6, g)
        signs = torch.where(torch.rand(len(sizes), generator=g) < 0.5, -1.0, 1.0)
        x = torch.repeat_interleave(signs, torch.tensor(sizes)) + 0.5 * torch.randn(n, generator=g)
        if name == "planted-vs-random" and label == 0:
            pairs = _random(n, len(pairs), g)
            x = x[torch.randperm(n, generator=g)]
        graphs.append(Data(x=x.unsqueeze(1), edge_index=_undirected(pairs),
                           y=torch.tensor([label])))
    return graphs


class Net(torch.nn.Module):
    def __init__(self, pool_name: str, hidden: int = 16):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(1, hidden)
        self.pool = make_layer(pool_name, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.head = torch.nn.Linear(hidden, 2)

    def forward(self, data):
        from torch_geometric.nn import global_mean_pool

        h = self.conv1(data.x, data.edge_index).relu()
        if isinstance(self.pool, Graclus):
            from torch_geometric.nn.pool import avg_pool

            weight = torch.exp(-(h[data.edge_index[0]] - h[data.edge_index[1]]).pow(2).sum(-1))
            cluster = graclus_cluster(data.edge_index, weight.detach(), h.shape[0])
            from torch_geometric.data import Batch
            pooled = avg_pool(cluster, Batch(x=h, edge_index=data.edge_index, batch=data.batch))
            h, e, b = pooled.x, pooled.edge_index, pooled.batch
        else:
            out = self.pool(h, data.edge_index, batch=data.batch)
            name = type(self.pool).__name__
            if name in ("DHTPooling", "EdgePooling", "ClusterPooling"):
                h, e, b = out[0], out[1], out[2]
            else:
                h, e, b = out[0], out[1], out[3]
        h = self.conv2(h, e).relu()
        return self.head(global_mean_pool(h, b))


def accuracy(pool_name: str, set_name: str, seed: int, epochs: int):
    from torch_geometric.loader import DataLoader

    torch.manual_seed(seed)
    train = dataset(set_name, 128, seed=1000 + seed)
    test = dataset(set_name, 128, seed=2000 + seed)
    model = Net(pool_name)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        model.train()
        for data in DataLoader(train, batch_size=32, shuffle=True):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(data), data.y).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        data = next(iter(DataLoader(test, batch_size=len(test))))
        return (model(data).argmax(1) == data.y).float().mean().item()


def accuracies(quick: bool):
    seeds = 2 if quick else 5
    epochs = 10 if quick else 30
    missing = _graclus_available()
    table = []
    for set_name in ("planted-vs-random", "two-vs-three-communities"):
        for name in LAYERS:
            if name == "DHTPooling(levels=1)":
                continue
            if name == "graclus" and missing:
                table.append({"set": set_name, "layer": name, "skipped": missing})
                continue
            start = time.perf_counter()
            try:
                values = [accuracy(name, set_name, s, epochs) for s in range(seeds)]
            except Exception as error:  # noqa: BLE001
                table.append({"set": set_name, "layer": name,
                              "skipped": f"error: {type(error).__name__}: {str(error)[:200]}"})
                continue
            row = {"set": set_name, "layer": name, "seeds": seeds, "epochs": epochs,
                   "mean": statistics.mean(values),
                   "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                   "values": values, "seconds": time.perf_counter() - start}
            table.append(row)
            print(f"  {set_name:26s} {name:16s} {row['mean']:.3f} ± {row['std']:.3f} "
                  f"({row['seconds']:.0f} s)", flush=True)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-after", type=float, default=SKIP_AFTER_S)
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    payload = {"quick": args.quick, "threads": torch.get_num_threads(),
               "torch": torch.__version__,
               "graclus": _graclus_available() or f"backend {graclus_backend()}"}
    if not args.no_timing:
        rows = time_graphs(args.quick, repeats, args.skip_after)
        payload["timing"] = rows
        payload["summary"] = summarise(rows)
        for key, value in payload["summary"].items():
            print(f"{key}: {value:.2f}")
        write_json("pooling" + ("_quick" if args.quick else ""), payload)
    if not args.no_accuracy:
        print("== accuracy", flush=True)
        payload["accuracy"] = accuracies(args.quick)
    path = write_json("pooling" + ("_quick" if args.quick else ""), payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
