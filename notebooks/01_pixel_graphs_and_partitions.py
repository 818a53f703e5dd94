# %% [markdown]
# # Pixel graphs and partitions
#
# An image is a graph: one node per pixel, edges between neighbouring pixels. A
# tokenization is a *partition* of that graph's nodes into connected blocks. This notebook
# shows the objects everything else in dhtgraph is built from: `from_image`, `Partition`,
# `connected_components` and `Hierarchy` (definitions in `theory/`).

# %%
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch
from skimage import data
from torch_geometric.data import Batch

import dhtgraph

image = data.astronaut()[::8, ::8]          # 64×64×3 uint8
graph = dhtgraph.from_image(image)
print(graph)
print("edges: 2·(2HW − H − W) =", 2 * (2 * 64 * 64 - 64 - 64))

# %% [markdown]
# Node `y·W + x` is the pixel at row `y`, column `x`; `edge_index` holds both directions,
# sorted, with no self-loops (PyG's convention), so graphs batch with PyG as usual.

# %%
small = [dhtgraph.from_image(np.random.default_rng(i).random((3, 4, 3))) for i in range(2)]
batch = Batch.from_data_list(small)
print(batch)
print("8-connectivity:", dhtgraph.from_image(image, connectivity=8).num_edges, "edges")

# %% [markdown]
# ## Partitions are equivalence classes
#
# A `Partition` stores canonical labels: blocks numbered by the first pixel they contain.
# Equal partitions have equal labels, whatever numbering they came with.

# %%
a = dhtgraph.Partition.from_labels(torch.tensor([4, 4, 9, 9, 1, 1]))
b = dhtgraph.Partition.from_labels(torch.tensor([0, 1, 1, 2, 2, 3]))
print("a:", a.labels.tolist(), " b:", b.labels.tolist())
print("a ∧ b (meet):", a.meet(b).labels.tolist())
print("a ∨ b (join):", a.join(b).labels.tolist())
print("a ∧ b refines a:", a.meet(b).refines(a), "| a refines a ∨ b:", a.refines(a.join(b)))

# %% [markdown]
# ## Connected components, checked against networkx
#
# Threshold the image's brightness and split the pixel graph where neighbouring pixels fall
# on different sides: the blocks are connected components, computed with tensor code only.

# %%
bright = torch.as_tensor(image.mean(axis=2) > 100).reshape(-1)
src, dst = graph.edge_index
same = bright[src] == bright[dst]
components = dhtgraph.connected_components(graph.edge_index[:, same], graph.num_nodes)
g = nx.Graph()
g.add_nodes_from(range(graph.num_nodes))
g.add_edges_from(graph.edge_index[:, same].t().tolist())
print(components.num_blocks, "components; networkx finds", nx.number_connected_components(g))
print("every block connected:", components.is_connected(graph.edge_index))

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(image)
axes[1].imshow(components.labels.view(64, 64) % 20, cmap="tab20")
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## Hierarchies
#
# A hierarchy is a chain ⊥ = π₀ ≤ π₁ ≤ … of partitions. Here: the components, then the
# components merged by brightness, then everything.

# %%
by_brightness = dhtgraph.Partition.from_labels(bright.long())
hierarchy = dhtgraph.Hierarchy.from_absolute([components, components.join(by_brightness),
                                              dhtgraph.Partition.indiscrete(graph.num_nodes)])
hierarchy.validate()
print(hierarchy)
print("level 2 relative to level 1:", hierarchy.level(2))
