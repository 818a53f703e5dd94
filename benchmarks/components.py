"""Connected components on grid graphs: time growth with size (issue 2).

Measures dhtgraph.connected_components on 4-connected grids keeping 55 % of their
edges at random (many components of varied shape) and on the whole grid (one
component, the longest chains), at 512², 1024² and 2048², with 2 threads. Compares with
scipy.sparse.csgraph.connected_components (C code) in the same run. Prints a table and
writes benchmarks/results/components.json.

Run: ``python benchmarks/components.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shares its name with the standard library's ``tokenize``: keep
# this folder off the import path until the standard library has loaded it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch

sys.path.append(str(_HERE))
from _common import median_time, write_json  # noqa: E402

from dhtgraph import connected_components, grid_edge_index  # noqa: E402


def cut_grid(side: int, seed: int = 0) -> torch.Tensor:
    """A side×side grid keeping each undirected edge with probability 0.55 (seeded)."""
    edge_index = grid_edge_index(side, side)
    src, dst = edge_index
    g = torch.Generator().manual_seed(seed)
    undirected = src < dst
    keep_pair = torch.rand(int(undirected.sum()), generator=g) > 0.45
    keep = torch.zeros_like(src, dtype=torch.bool)
    keep[undirected.nonzero().squeeze(1)[keep_pair]] = True
    return edge_index[:, keep]


def main() -> None:
    torch.set_num_threads(2)
    try:
        import numpy as np
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components as scipy_cc
    except ImportError:  # scipy comes with scikit-image; keep the script usable without it
        scipy_cc = None
    rows = []
    for side in (512, 1024, 2048):
        n = side * side
        for kind, edges in (("full grid", grid_edge_index(side, side)), ("55% kept", cut_grid(side))):
            t = median_time(lambda: connected_components(edges, n), repeats=7)
            k = connected_components(edges, n).num_blocks
            row = {"side": side, "graph": kind, "edges": edges.shape[1], "blocks": k,
                   "seconds": t, "ns_per_edge": 1e9 * t / max(edges.shape[1], 1)}
            if scipy_cc is not None:
                e = edges.numpy()
                m = coo_matrix((np.ones(e.shape[1], dtype=np.int8), (e[0], e[1])), shape=(n, n))
                row["scipy_seconds"] = median_time(lambda: scipy_cc(m, directed=False), repeats=3)
            rows.append(row)
            print(f"{side:5d}² {kind:10s} E={row['edges']:9d} K={k:8d} "
                  f"{t * 1e3:9.1f} ms  {row['ns_per_edge']:6.1f} ns/edge"
                  + (f"  scipy {row['scipy_seconds'] * 1e3:8.1f} ms" if "scipy_seconds" in row else ""))
    for kind in ("full grid", "55% kept"):
        small = next(r for r in rows if r["graph"] == kind and r["side"] == 512)
        large = next(r for r in rows if r["graph"] == kind and r["side"] == 2048)
        print(f"{kind}: time per edge at 2048² / 512² = {large['ns_per_edge'] / small['ns_per_edge']:.2f}")
    print("written", write_json("components", {"threads": 2, "rows": rows}))


if __name__ == "__main__":
    main()
