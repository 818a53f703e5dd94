# %% [markdown]
# # dHT for any graph: the `ToDHT` transform and the `DHTPooling` layer
#
# The hierarchy and the information-criterion selection need no pixels: node features, an
# edge list and a batch vector are enough. This notebook shows the two PyG parts built on
# the tokenizer's own stages: `ToDHT`, an image → region-graph transform in the role of
# PyG's `ToSLIC`, and `DHTPooling`, a graph pooling layer with the shape of `EdgePooling`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage import data
from skimage.transform import resize
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GCNConv, global_mean_pool
from torch_geometric.transforms import Compose

from dhtgraph import DHTPooling, Partition, ToDHT

torch.manual_seed(0)
image = resize(data.astronaut(), (96, 96), anti_aliasing=True).astype(np.float32)
img = torch.as_tensor(image).permute(2, 0, 1)  # (3, 96, 96), what ToSLIC takes too

# %% [markdown]
# ## `ToDHT`: an image to its region graph
#
# `x` is the mean colour of every token (more pooled features with `node_features=`),
# `pos` its centroid (row, col), `edge_index` the region adjacency. Options are the
# tokenizer's (`max_tokens`, `iota`, `criterion`, ...), checked when the transform is made.

# %%
transform = Compose([ToDHT(max_tokens=64, add_seg=True, node_features=("color", "size"))])
graph = transform(img)
print(transform)
print(graph)
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
axes[0].imshow(image)
axes[0].set_title("image")
colours = graph.x[:, :3].numpy()
axes[1].imshow(colours[graph.seg[0].numpy()])
src, dst = graph.edge_index
for a, b in zip(src.tolist(), dst.tolist()):
    if a < b:
        axes[1].plot(graph.pos[[a, b], 1], graph.pos[[a, b], 0], "k-", lw=0.5)
axes[1].scatter(graph.pos[:, 1], graph.pos[:, 0], s=6, c="k")
axes[1].set_title(f"{graph.num_nodes} tokens and their adjacency")
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## `DHTPooling` on a graph without positions
#
# Two noisy communities joined by one edge. The layer runs the contraction levels on a
# learnable projection of the node features (the pixel encoder's role), selects clusters by
# the AICc and returns the quotient graph. Without positions the compactness term is off
# (compactness 0). `unpool` gives every node its cluster's row back.

# %%
def undirected(pairs):
    e = torch.tensor(pairs).t()
    return torch.cat([e, e.flip(0)], 1)


g = torch.Generator().manual_seed(0)
half = 8
pairs = [(a, b) for a in range(2 * half) for b in range(a + 1, 2 * half)
         if (a < half) == (b < half) and torch.rand(1, generator=g) < 0.5]
edge_index = undirected(pairs + [(half - 1, half)])
x = torch.cat([torch.zeros(half, 2), torch.full((half, 2), 2.0)]) + 0.1 * torch.randn(2 * half, 2, generator=g)
pool = DHTPooling(2, pool="mean")
x_out, edges_out, batch_out, info = pool(x, edge_index)
print(pool)
print("cluster of every node:", info.cluster.tolist())
print("coarsened edges:", edges_out.tolist())
print("connected clusters:", Partition(info.cluster).is_connected(edge_index))
print("unpooled shape:", pool.unpool(x_out, info)[0].shape)

# %% [markdown]
# ## A small GNN with `DHTPooling`
#
# Graph classification on a generated set: two planted communities whose nodes carry their
# community's sign, against random graphs with the same counts and shuffled features.
# GCN → DHTPooling (4 clusters per graph, the tokenizer's differentiable pooled mean) →
# GCN → mean → linear. Chance is 50 %.

# %%
def make_set(count, seed):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        half = int(torch.randint(5, 9, (1,), generator=g))
        n = 2 * half
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)
                 if (a < half) == (b < half) and torch.rand(1, generator=g) < 0.6]
        pairs.append((half - 1, half))
        sign = torch.cat([torch.ones(half), -torch.ones(half)])
        feats = (sign + 0.5 * torch.randn(n, generator=g)).unsqueeze(1)
        if i % 2 == 0:
            pairs = sorted({tuple(sorted(torch.randint(0, n, (2,), generator=g).tolist()))
                            for _ in range(len(pairs))} - {(v, v) for v in range(n)})
            feats = feats[torch.randperm(n, generator=g)]
        graphs.append(Data(x=feats, edge_index=undirected(pairs), y=torch.tensor([i % 2])))
    return graphs


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.pool = GCNConv(1, 8), DHTPooling(8, max_clusters=4)
        self.conv2, self.head = GCNConv(8, 8), torch.nn.Linear(8, 2)

    def forward(self, data):
        h = self.conv1(data.x, data.edge_index).relu()
        h, e, b, _ = self.pool(h, data.edge_index, data.batch)
        return self.head(global_mean_pool(self.conv2(h, e).relu(), b))


torch.manual_seed(0)
train, test = make_set(64, 1), make_set(64, 2)
model = Net()
opt = torch.optim.Adam(model.parameters(), lr=0.03)
for epoch in range(10):
    for batch in DataLoader(train, batch_size=32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), batch.y).backward()
        opt.step()
with torch.no_grad():
    batch = next(iter(DataLoader(test, batch_size=64)))
    print("test accuracy:", (model(batch).argmax(1) == batch.y).float().mean().item())

# %% [markdown]
# `benchmarks/pooling.py` compares DHTPooling with PyG's EdgePooling, ClusterPooling,
# TopKPooling, SAGPooling, ASAPooling and graclus (time, growth with size, memory, and
# accuracy of this GNN on two generated sets); see the README for the measured numbers.
