"""dhtgraph.datasets.mosaics: determinism by seed, ground truth consistent with the image."""

import pytest
import torch

import dhtgraph
from dhtgraph import metrics
from dhtgraph.datasets import MosaicConfig, MosaicDataset, generate_mosaics

KINDS = ["voronoi", "polygons"]


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_set_and_image_i_independent_of_the_set(kind):
    a = generate_mosaics(20, kind=kind, size=48, noise=0.05, texture=0.1, seed=3)
    b = generate_mosaics(20, kind=kind, size=48, noise=0.05, texture=0.1, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.truth, b.truth)
    tail = generate_mosaics(3, kind=kind, size=48, noise=0.05, texture=0.1, seed=3, start=17)
    assert torch.equal(tail.images, a.images[17:]) and torch.equal(tail.truth, a.truth[17:])
    other = generate_mosaics(20, kind=kind, size=48, noise=0.05, texture=0.1, seed=4)
    assert not torch.equal(other.truth, a.truth)


@pytest.mark.parametrize("kind", KINDS)
def test_flat_regions_are_the_truth_regions(kind):
    clean = generate_mosaics(6, kind=kind, size=64, seed=1)
    for image, truth in zip(clean.images, clean.truth):
        colour = image.permute(1, 2, 0).reshape(-1, 3)
        by_colour = dhtgraph.Partition.from_labels(torch.unique(colour, dim=0, return_inverse=True)[1])
        assert by_colour == dhtgraph.Partition.from_labels(truth.reshape(-1))
        assert int(truth.max()) + 1 == len(torch.unique(truth))  # numbered 0..K−1
    ev = metrics.explained_variation(clean.images, clean.truth)
    torch.testing.assert_close(ev, torch.ones(6, dtype=torch.float64), rtol=1e-12, atol=0)
    counts = metrics.num_tokens(clean.truth)
    assert counts.min() >= 4 and counts.max() <= 80, counts


@pytest.mark.parametrize("kind", KINDS)
def test_degradations_keep_the_truth_and_have_their_strength(kind):
    clean = generate_mosaics(4, kind=kind, size=64, seed=2)
    noisy = generate_mosaics(4, kind=kind, size=64, seed=2, noise=0.03)
    rich = generate_mosaics(4, kind=kind, size=64, seed=2, texture=0.2, gradient=0.3, blur=1.0)
    assert torch.equal(clean.truth, noisy.truth) and torch.equal(clean.truth, rich.truth)
    inside = (clean.images > 0.1) & (clean.images < 0.9)  # away from clipping
    residual = (noisy.images - clean.images)[inside]
    assert residual.std().item() == pytest.approx(0.03, rel=0.1)
    assert metrics.explained_variation(rich.images, rich.truth).max() < 1.0
    assert metrics.psnr(noisy.images, noisy.truth).mean() > metrics.psnr(rich.images, rich.truth).mean()


def test_region_count_follows_config():
    few = metrics.num_tokens(generate_mosaics(6, size=96, regions=(5, 5)).truth)
    many = metrics.num_tokens(generate_mosaics(6, size=96, regions=(60, 60)).truth)
    assert few.tolist() == [5] * 6
    assert (many >= 55).all() and (many <= 60).all()


def test_dataset_items_and_device():
    data = MosaicDataset(3, kind="polygons", size=32, seed=5)
    image, truth = data[2]
    assert len(data) == 3 and image.shape == (3, 32, 32) and truth.shape == (32, 32)
    assert truth.dtype == torch.long and 0 <= float(image.min()) <= float(image.max()) <= 1
    assert torch.equal(image, generate_mosaics(1, kind="polygons", size=32, seed=5, start=2).images[0])


def test_config_errors():
    with pytest.raises(ValueError, match="'kind' to be one of"):
        MosaicConfig(kind="hexagons")
    with pytest.raises(ValueError, match="'noise' to be a non-negative number"):
        MosaicConfig(noise=-0.1)
    with pytest.raises(ValueError, match=r"'regions' lo <= hi \(got \(9, 3\)\)"):
        MosaicConfig(regions=(9, 3))
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        generate_mosaics(2, colour=1)
    with pytest.raises(TypeError, match="'num_images' to be a non-negative int"):
        generate_mosaics(2.5)
