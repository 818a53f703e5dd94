"""Token assembly (assemble_tokens): one count of the pixels per token, exact centroids,
gradients through the region features and the mean injection with a budget."""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dhtgraph
from dhtgraph.features.mean_injection import mean_injection
from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
from dhtgraph.nn import DHTConfig, DHTTokenizer
from dhtgraph.nn.tokens import assemble_tokens
from dhtgraph.selection import ic_stopping, select_partition


def _images(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 4, 5, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest")
    return (smooth + 0.05 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)


class _PixelCounts(TorchDispatchMode):
    """Counts unweighted bincounts over ``n`` items (pixel-size counts)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.count = n, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ == "bincount" and args[0].numel() == self.n \
                and (len(args) < 2 or args[1] is None) and kwargs.get("weights") is None:
            self.count += 1
        return func(*args, **kwargs)


@pytest.mark.parametrize("max_tokens", [None, 6])
def test_pixel_sizes_are_counted_once(max_tokens):
    model = DHTTokenizer(DHTConfig.preset("recommended"))
    images = _images(2, 20, 24, seed=3)
    b, _, h, w = images.shape
    with torch.no_grad():
        x = model.encode(images)
        built = build_hierarchy(x, PixelGrid(b, h, w), compactness=0.01, weights="size",
                                stop=ic_stopping("aicc", 10.0))
        selection = select_partition(built, "aicc", 10.0)
        with _PixelCounts(b * h * w) as counts:
            tokens = assemble_tokens(images, x, built, selection, model.linear, max_tokens)
    assert counts.count == 1                      # 0.2.0: 3 with a budget, 2 without
    assert torch.equal(tokens.sizes, tokens.partition.sizes)
    if max_tokens is not None:
        assert tokens.num_tokens.tolist() == [6, 6]


def test_centroids_are_exact_means():
    # One flat 2×6000 image is one token; float32 sums of its columns (1.8e7 > 2^24)
    # would round, the exact mean is (0.5, 2999.5).
    tokens = dhtgraph.tokenize(np.full((2, 6000, 3), 90, np.uint8))
    assert tokens.num_tokens.tolist() == [1]
    assert tokens.centroids.tolist() == [[0.5, 2999.5]]
    assert tokens.centroids.dtype == torch.float32
    assert tokens.bbox.tolist() == [[0, 0, 1, 5999]]


def test_gradcheck_through_features_and_injection_with_a_budget():
    # Partition fixed by the input; the region features (pixel means) and W μ* are smooth
    # in it, also after a budget merge. (The injected image's residual x − x̄ is detached
    # by design, so its gradient reaches only W μ*.)
    torch.manual_seed(0)
    model = DHTTokenizer(encoder="rgb", color_scale=10.0, weights="argmax_edge",
                         var_projection=False, compactness=0.01).double()
    images = _images(1, 5, 6, seed=2).double().requires_grad_(True)
    free = model(images.detach())
    assert int(free.num_tokens[0]) > 3

    def values(img):
        tokens = model(img, max_tokens=3)
        return tokens.features, tokens.projected

    assert torch.autograd.gradcheck(values, (images,), eps=1e-7, atol=1e-5, fast_mode=True)
    tokens = model(images, max_tokens=3)
    assert tokens.num_tokens.tolist() == [3]
    tokens.features.sum().backward()
    # d Σ_t mean_t / d x_p = scale / |S(p)| per channel.
    per_pixel = 10.0 / tokens.sizes.double()[tokens.partition.labels]
    assert torch.allclose(images.grad.permute(0, 2, 3, 1).reshape(-1, 3),
                          per_pixel.unsqueeze(1).expand(-1, 3))
    # The injection's gradient: one per pixel of the token, into W μ*.
    values = tokens.projected.detach().requires_grad_(True)
    injected = mean_injection(images.detach(), tokens.partition,
                               values, sizes=tokens.sizes)
    injected.sum().backward()
    assert torch.equal(values.grad, tokens.sizes.double().unsqueeze(1).expand(-1, 3))
