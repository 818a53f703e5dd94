# %% [markdown]
# # Raster to vector from dHT partitions
#
# Every token becomes one closed SVG path filled with its mean colour. Boundaries are
# traced once on the pixel-corner lattice, cut into chains shared by exactly two blocks
# (or a block and the image border), simplified once, and drawn forwards by one
# neighbour and backwards by the other: no cracks, no lost blocks, holes included.

# %%
import io
import xml.etree.ElementTree as ET

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from skimage import data
from skimage.transform import resize

import dhtgraph

image = (resize(data.coffee(), (224, 336), anti_aliasing=True) * 255).astype(np.uint8)
tokens = dhtgraph.tokenize(image)
svg = dhtgraph.to_svg(image, tokens.partition)
root = ET.fromstring(svg)
print(f"{int(tokens.num_tokens[0])} tokens -> {svg.count('<path')} paths, {len(svg.encode()) / 1024:.1f} KB")
print(svg[:300], "…")

# %% [markdown]
# ## Rasterise and compare
#
# `resvg` (the `resvg-py` package, in the `test` extra) renders the SVG; PSNR is measured
# against the input. The ceiling is the partition filled with exact block means.

# %%
def render(svg_text, width, height):
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg_text, width=width, height=height)
    rgba = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA")).astype(np.float64)
    alpha = rgba[..., 3:] / 255
    return rgba[..., :3] * alpha + 255 * (1 - alpha)


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


h, w = image.shape[:2]
flat = image.reshape(-1, 3).astype(np.float64)
ceiling = tokens.partition.broadcast(tokens.partition.reduce(torch.as_tensor(flat))).numpy().reshape(h, w, 3)
print(f"ceiling (block means): {psnr(ceiling, image):.2f} dB")
try:
    rendered = render(svg, w, h)
    print(f"SVG at tolerance 1 px: {psnr(rendered, image):.2f} dB")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].imshow(image)
    axes[1].imshow(rendered.astype(np.uint8))
    for ax, title in zip(axes, ("input", "SVG")):
        ax.set_title(title)
        ax.axis("off")
except ImportError:
    print("resvg-py is not installed; skipping the rendering")

# %% [markdown]
# ## The rate knob
#
# `tolerance` (pixels) trades bytes for fidelity; `max_bytes` searches the smallest
# tolerance that fits a byte budget. Exact pixel boundaries are `tolerance=0`.

# %%
for tolerance in (0.0, 0.5, 1.0, 2.0, 4.0):
    text = dhtgraph.to_svg(image, tokens.partition, tolerance=tolerance)
    line = f"tolerance {tolerance:3.1f}: {len(text.encode()) / 1024:6.1f} KB"
    try:
        line += f", {psnr(render(text, w, h), image):.2f} dB"
    except ImportError:
        pass
    print(line)
budgeted = dhtgraph.to_svg(image, tokens.partition, max_bytes=60_000)
print("with max_bytes=60000:", len(budgeted.encode()), "bytes")
try:
    dhtgraph.to_svg(image, tokens.partition, max_bytes=20_000)
except ValueError as err:  # a budget this partition cannot meet is an error, never ignored
    print(err)

# %% [markdown]
# ## Coarser and finer
#
# `vectorize` tokenizes with the library defaults; `max_tokens` (coarser) and `iota`
# (finer) move along the hierarchy.

# %%
for k in (50, 200, None):
    text = dhtgraph.vectorize(image, max_tokens=k)
    print(f"max_tokens={k}: {text.count('<path')} paths, {len(text.encode()) / 1024:.1f} KB")

# %% [markdown]
# ## Escaping
#
# Everything written into the document is escaped, so a title cannot inject markup.

# %%
hostile = dhtgraph.to_svg(image, tokens.partition, title='"/><script>alert(1)</script>')
print("<script>" in hostile, ET.fromstring(hostile).find("{http://www.w3.org/2000/svg}title").text)
