"""Region descriptors (method spec §7): samples, soft mask, mixing, histograms."""

import pytest
import torch

from dhtgraph import Partition, grid_partition
from dhtgraph.features import (bounding_boxes, gradient_histogram, positional_histogram,
                               region_features, sample_regions)
from dhtgraph.features.region import mix_background
from dhtgraph.nn import RegionFeatures

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _features(image, part, p, grid, lam=0.01, background=None, **kw):
    c = image.shape[1]
    bg = torch.zeros(c, p, p, dtype=image.dtype) if background is None else background
    return region_features(image, part, p, grid, torch.tensor(lam, dtype=image.dtype), bg, **kw)


@pytest.mark.parametrize("device", DEVICES)
def test_grid_tokens_are_the_vit_patches_exactly(device):
    image = torch.randn(2, 3, 8, 12, device=device)
    part = grid_partition(2, 8, 12, 4, device=device)
    out = _features(image, part, 4, (2, 3), background=torch.randn(3, 4, 4, device=device))
    patches = torch.nn.functional.unfold(image, 4, stride=4)  # (B, C·P·P, L), timm order
    expected = patches.permute(0, 2, 1).reshape(-1, 3, 4, 4)
    assert torch.equal(out.samples, expected)
    assert torch.equal(out.patches, expected)  # M⁺ = 1: neither λ nor β enter
    assert torch.equal(out.mask, torch.ones(12, 4, 4, device=device))
    assert torch.equal(out.position, torch.eye(6, device=device).repeat(2, 1))
    assert out.batch.tolist() == [0] * 6 + [1] * 6
    assert out.num_tokens.tolist() == [6, 6]


def test_bilinear_samples_hand_values():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    one = Partition(torch.zeros(4, dtype=torch.long))
    samples, mask = sample_regions(image, one, 3)
    assert samples[0, 0].tolist() == [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]
    assert torch.equal(mask, torch.ones(1, 3, 3))


def test_soft_mask_and_mixing_hand_values():
    # 2×2 image, token 0 = three pixels (L-shape), token 1 = the bottom-right pixel.
    image = torch.tensor([[[[4.0, 8.0], [12.0, 16.0]]]])
    part = Partition(torch.tensor([0, 0, 0, 1]))
    assert bounding_boxes(part, 2, 2).tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]
    samples, mask = sample_regions(image, part, 3)
    assert mask[0].tolist() == [[1.0, 1.0, 1.0], [1.0, 0.75, 0.5], [1.0, 0.5, 0.0]]
    assert torch.equal(mask[1], torch.ones(3, 3))  # a one-pixel box: every sample is inside
    assert torch.equal(samples[1, 0], torch.full((3, 3), 16.0))
    lam, beta = torch.tensor(0.25), torch.full((1, 3, 3), 100.0)
    mixed = mix_background(samples, mask, lam, beta)
    # Bottom-right sample of token 0: M⁺ = 0, x̂ = 16 → λ·16 + (1 − λ)·β = 4 + 75.
    assert mixed[0, 0, 2, 2].item() == 79.0
    # Centre: M⁺ = 0.75, x̂ = 10 → (0.75 + 0.25·0.25)·10 + 0.75·0.25·100.
    torch.testing.assert_close(mixed[0, 0, 1, 1], torch.tensor(0.8125 * 10 + 18.75))


def test_positional_histogram_hand_values():
    part = Partition(torch.tensor([0, 0, 1, 1,
                                   0, 0, 1, 1,
                                   0, 2, 2, 2,
                                   0, 2, 2, 2]))
    hist = positional_histogram(part, 4, 4, (2, 2))
    torch.testing.assert_close(hist, torch.tensor([[4 / 6, 0, 2 / 6, 0], [0, 1.0, 0, 0],
                                                 [0, 0, 2 / 6, 4 / 6]]))
    # Another grid: 4×4 image on a 1×2 grid.
    assert positional_histogram(part, 4, 4, (1, 2))[1].tolist() == [0.0, 1.0]


def test_gradient_histogram():
    flat = torch.ones(1, 3, 6, 6)
    part = grid_partition(1, 6, 6, 3)
    assert torch.equal(gradient_histogram(flat, part, 3), torch.zeros(4, 9))
    edge = torch.zeros(1, 3, 6, 6)
    edge[..., 3:] = 1.0  # vertical edge between columns 2 and 3
    hist = gradient_histogram(edge, part, 3)
    assert hist.shape == (4, 9)
    # Left patches see it in their right column, right patches in their left column.
    left = hist[0].view(3, 3)
    assert bool((left[:, 2] > 0).all()) and bool((left[:, :2] == 0).all())
    out = _features(edge, part, 3, (2, 2), gradient=True)
    assert torch.equal(out.gradient, hist)
    assert out.flat().shape == (4, 27 + 4 + 9)


def test_gradients_float64():
    torch.manual_seed(0)
    part = Partition(torch.tensor([0, 0, 1, 0, 1, 1, 2, 2, 1]))  # 3×3, irregular tokens
    image = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)

    def f(image, lam, beta):
        return region_features(image, part, 4, (2, 2), lam, beta).patches

    assert torch.autograd.gradcheck(f, (image, lam, beta))
    out = f(image, lam, beta)
    grads = torch.autograd.grad(out.square().sum(), (image, lam, beta))
    assert all(bool(torch.isfinite(g).all()) and bool(g.abs().sum() > 0) for g in grads)


def test_module_matches_functional_core_and_initial_mixing():
    torch.manual_seed(1)
    image = torch.randn(2, 3, 8, 8)
    part = Partition(torch.randint(0, 3, (2, 1, 8, 8)).add(torch.tensor([0, 3]).view(2, 1, 1, 1))
                     .flatten())
    module = RegionFeatures(3, 4)
    torch.testing.assert_close(module.mixing, torch.tensor(0.01))
    with torch.no_grad():
        module.background.normal_()
    got = module(image, part, (2, 2))
    want = region_features(image, part, 4, (2, 2), module.mixing, module.background)
    assert torch.equal(got.patches, want.patches) and torch.equal(got.position, want.position)


def test_images_do_not_interact():
    torch.manual_seed(2)
    image = torch.randn(3, 3, 6, 6)
    labels = torch.randint(0, 4, (3, 36))
    parts = [Partition(labels[i]) for i in range(3)]
    offsets = [0] + [sum(p.num_blocks for p in parts[:i + 1]) for i in range(3)]
    joint = Partition(torch.cat([p.labels + offsets[i] for i, p in enumerate(parts)]))
    bg = torch.randn(3, 4, 4)
    together = _features(image, joint, 4, (3, 3), background=bg)
    for i, p in enumerate(parts):
        alone = _features(image[i:i + 1], p, 4, (3, 3), background=bg)
        assert torch.equal(together.patches[offsets[i]:offsets[i + 1]], alone.patches)


def test_bad_input():
    image = torch.rand(2, 3, 4, 4)
    bg = torch.zeros(3, 2, 2)
    lam = torch.tensor(0.01)
    with pytest.raises(ValueError, match="partition the B·H·W = 2·4·4 = 32 pixels"):
        region_features(image, grid_partition(1, 4, 4, 2), 2, (2, 2), lam, bg)
    with pytest.raises(ValueError, match="'background' of shape \\(3, 2, 2\\)"):
        region_features(image, grid_partition(2, 4, 4, 2), 2, (2, 2), lam, torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="one image"):
        region_features(image, Partition(torch.zeros(32, dtype=torch.long).index_fill_(
            0, torch.arange(20, 32), 1)), 2, (2, 2), lam, bg)
    with pytest.raises(ValueError, match="'image' to have 4 dimensions"):
        region_features(image[0], grid_partition(1, 4, 4, 2), 2, (2, 2), lam, bg)
    with pytest.raises(ValueError, match="'mixing_init'"):
        RegionFeatures(3, 2, mixing_init=1.5)
