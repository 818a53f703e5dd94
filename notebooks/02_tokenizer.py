# %% [markdown]
# # The dHT tokenizer: hierarchy, selection, budget, gradients
#
# `dhtgraph.tokenize` builds a hierarchy of partitions of the pixel graph by differentiable
# edge contraction, selects the best block for every region with an information criterion
# and, optionally, merges down to an exact token budget. This notebook looks at each stage
# through the public API.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage import data
from skimage.segmentation import felzenszwalb, slic
from skimage.transform import resize

import dhtgraph
from dhtgraph.visualize import draw_boundaries, hierarchy_strip

torch.manual_seed(0)
image = (resize(data.astronaut(), (224, 224), anti_aliasing=True) * 255).astype(np.uint8)
tokens = dhtgraph.tokenize(image)
print(tokens.num_tokens.tolist(), "tokens;", "blocks per level:", tokens.hierarchy.num_blocks)

x = torch.as_tensor(image).permute(2, 0, 1).float() / 255
plt.figure(figsize=(4, 4))
plt.imshow(draw_boundaries(x, tokens.labels()[0]))
plt.axis("off")

# %% [markdown]
# ## The hierarchy
#
# Each level contracts one chosen edge per block; the chain refines at every step and every
# block stays connected (theory/, Theorem 2). Below: every level as a block-mean mosaic.

# %%
graph = dhtgraph.from_image(image)
tokens.hierarchy.validate(graph.edge_index)
levels = [tokens.hierarchy.absolute(t) for t in range(1, tokens.hierarchy.num_levels)]
plt.figure(figsize=(14, 2.5))
plt.imshow(hierarchy_strip(x, levels))
plt.axis("off")

# %% [markdown]
# ## Information criteria and the granularity knob ι
#
# The selected partition is a per-region cut of the hierarchy. ι is the granularity
# knob; the criterion changes the penalty on small blocks.

# %%
for criterion in ("aic", "aicc", "bic", "cic"):
    counts = [int(dhtgraph.tokenize(image, criterion=criterion, iota=iota).num_tokens[0])
              for iota in (2.0, 5.0, 20.0)]
    print(f"{criterion:5s} tokens at iota 2, 5, 20: {counts}")

# %% [markdown]
# ## Explained variation against SLIC and Felzenszwalb at equal token counts
#
# EV = Σ‖μ_S(p) − μ‖² / Σ‖x_p − μ‖² on RGB in [0, 1]; higher is better. The budget is
# exact: `max_tokens=k` gives k tokens whenever the selection had more.

# %%
def ev_of_labels(labels):
    return float(dhtgraph.explained_variation(image, dhtgraph.Partition.from_labels(
        torch.as_tensor(labels).reshape(-1))))

rows = []
for k in (100, 200, 400):
    ours = dhtgraph.tokenize(image, max_tokens=k)
    s = slic(image, n_segments=k, start_label=0)
    rows.append((k, int(ours.num_tokens[0]), float(dhtgraph.explained_variation(image, ours.partition)),
                 int(s.max()) + 1, ev_of_labels(s)))
print(" budget  dhtgraph(k, EV)      SLIC(k, EV)")
for k, kd, evd, ks, evs in rows:
    print(f"{k:7d}  {kd:5d} {evd:.3f}        {ks:5d} {evs:.3f}")
fz = felzenszwalb(image, scale=60, sigma=0.5, min_size=10)
print(f"Felzenszwalb: {int(fz.max()) + 1} regions, EV {ev_of_labels(fz):.3f}")

# %% [markdown]
# ## Batches: every image gets exactly the tokens it gets alone

# %%
other = (resize(data.coffee(), (224, 224), anti_aliasing=True) * 255).astype(np.uint8)
batch = dhtgraph.tokenize(np.stack([image, other]), max_tokens=300)
alone = dhtgraph.tokenize(other, max_tokens=300)
print("tokens per image:", batch.num_tokens.tolist())
print("same tokens for the second image:", torch.equal(batch.labels()[1], alone.labels()[0]))

# %% [markdown]
# ## Gradients
#
# With the learnable pixel encoder, a loss on the mean-injected image and on the token
# colours W μ* reaches the encoder, the variance projection and W (spec §8); the
# argmax choices and the selection carry no gradient.

# %%
model = dhtgraph.DHTTokenizer(dhtgraph.DHTConfig())
images = torch.as_tensor(np.stack([image, other])).permute(0, 3, 1, 2).float() / 255
out = model(images, max_tokens=200)
loss = out.injected.square().mean() + out.projected.square().mean()
loss.backward()
for name, parameter in model.named_parameters():
    if parameter.grad is not None:
        print(f"{name:28s} |grad| = {parameter.grad.norm():.2e}")

# %% [markdown]
# ## The official dHT weights
#
# `DHTTokenizer.from_dht_checkpoint` loads the released raster-to-vector tokenizer (not
# part of this project; the cell runs where the project's test data is present) and
# reproduces the reference implementation's partitions.

# %%
shared = Path.cwd().resolve()
while shared != shared.parent and not (shared / "shared" / "data" / "dht-r2v").exists():
    shared = shared.parent
checkpoint = shared / "shared" / "data" / "dht-r2v" / "r2v.pth"
if checkpoint.exists():
    from dhtgraph.nn import imagenet_normalize

    reference = np.load(shared / "shared" / "data" / "dht-reference" / "elephant.npz")
    official = dhtgraph.DHTTokenizer.from_dht_checkpoint(checkpoint)
    x_ref = torch.as_tensor(reference["input"]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        result = official(imagenet_normalize(x_ref))
    ours = result.partition
    theirs = dhtgraph.Partition.from_labels(torch.as_tensor(reference["seg_pretrain"]).long().reshape(-1))
    print("blocks:", ours.num_blocks, "reference:", theirs.num_blocks, "| identical partition:", ours == theirs)
else:
    print("official weights not found (they are test data, not part of dhtgraph)")
