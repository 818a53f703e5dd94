"""dhtgraph.metrics: hand-computed cases, scikit-image equivalents, batches, bad input."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from skimage.segmentation import felzenszwalb, find_boundaries, slic

import dhtgraph
from dhtgraph import metrics as M

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# 4×4: four 2×2 squares, and a truth that splits column 3 off.
QUADS = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
COLUMN = torch.tensor([[0, 0, 0, 1]] * 4)


def rng_image(h=40, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- hand-computed cases
def test_boundary_pixels_by_hand():
    thin = M.boundary_pixels(QUADS)[0].int().tolist()
    assert thin == [[0, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]]
    thick = M.boundary_pixels(QUADS, "thick")[0].int().tolist()
    assert thick == [[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]]


@pytest.mark.parametrize("device", DEVICES)
def test_recall_precision_by_hand(device):
    seg, truth = QUADS.to(device), COLUMN.to(device)
    # truth boundary: column 2 (4 pixels); ours: 7 pixels; they share (1, 2).
    assert M.boundary_recall(seg, truth, 0).tolist() == [0.25]
    assert M.boundary_precision(seg, truth, 0).tolist() == [1 / 7]
    assert M.boundary_recall(seg, truth, 1).tolist() == [1.0]   # column 1 is 1 away
    assert M.boundary_precision(seg, truth, 1).tolist() == [6 / 7]  # (1, 0) is 2 away
    assert M.boundary_recall(seg, truth).device.type == device


def test_tolerance_is_chebyshev():
    y, x = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    truth, seg = (x + y >= 8).long(), (x + y >= 10).long()  # boundary moved by (1, 1)
    assert M.boundary_recall(seg, truth, 0).item() == 0.0
    assert M.boundary_recall(seg, truth, 1).item() == 1.0
    # ours: the 10 pixels x + y = 9; the two at the image edge have no (x−1, y−1)
    assert M.boundary_precision(seg, truth, 1).item() == 0.8


def test_default_tolerance():
    assert M.default_tolerance(224, 224) == 1
    assert M.default_tolerance(481, 321) == 1
    assert M.default_tolerance(1024, 1024) == 4  # 3.62
    assert M.default_tolerance(100, 100) == 0    # 0.35
    seg = torch.zeros(224, 224, dtype=torch.long)
    seg[:, 101:] = 1
    truth = torch.zeros_like(seg)
    truth[:, 100:] = 1
    assert M.boundary_recall(seg, truth).item() == 1.0  # r = 1 at 224²
    assert M.boundary_recall(seg, truth, 0).item() == 0.0


def test_undersegmentation_and_asa_by_hand():
    # segments 1 and 3 each put 2 pixels in either truth segment: 2 + 2 leaked each.
    assert M.undersegmentation_error(QUADS, COLUMN).tolist() == [0.5]
    assert M.achievable_segmentation_accuracy(QUADS, COLUMN).tolist() == [12 / 16]
    # one segment over a 3:1 truth: UE = (min(12, 4) + min(4, 12)) / 16, ASA = 12/16.
    whole = torch.zeros(4, 4, dtype=torch.long)
    assert M.undersegmentation_error(whole, COLUMN).tolist() == [0.5]
    truth = torch.zeros(4, 4, dtype=torch.long)
    truth[0, 0] = 1
    assert M.undersegmentation_error(whole, truth).tolist() == [2 / 16]
    assert M.achievable_segmentation_accuracy(whole, truth).tolist() == [15 / 16]
    # a refinement of the truth: no error.
    assert M.undersegmentation_error(QUADS, torch.tensor([[0, 0, 1, 1]] * 4)).tolist() == [0.0]
    assert M.achievable_segmentation_accuracy(QUADS, QUADS * 7).tolist() == [1.0]


def test_compactness_by_hand():
    assert M.compactness(QUADS).item() == pytest.approx(math.pi / 4)  # squares: 4π·4/8²
    strip = torch.zeros(1, 3, dtype=torch.long)                       # area 3, perimeter 8
    assert M.compactness(strip).item() == pytest.approx(4 * math.pi * 3 / 64)
    pixels = torch.arange(6).view(2, 3)                               # singletons: π/4 each
    assert M.compactness(pixels).item() == pytest.approx(math.pi / 4)
    # an L of 3 pixels (perimeter 8) and its complement in a 2×2 (one pixel, 4)
    ell = torch.tensor([[0, 0], [0, 1]])
    expected = 3 / 4 * 4 * math.pi * 3 / 64 + 1 / 4 * 4 * math.pi / 16
    assert M.compactness(ell).item() == pytest.approx(expected)


def test_colour_metrics_by_hand():
    image = torch.tensor([[[0.0, 0.5, 1.0, 1.0]]])  # (C=1, H=1, W=4)
    seg = torch.tensor([[0, 0, 1, 1]])
    # means 0.25 and 1; overall mean 0.625
    explained = 2 * 0.375 ** 2 + 2 * 0.375 ** 2
    total = 0.625 ** 2 + 0.125 ** 2 + 2 * 0.375 ** 2
    assert M.explained_variation(image, seg).item() == pytest.approx(explained / total)
    assert M.intra_cluster_variation(image, seg).item() == pytest.approx((0.25 + 0) / 2)
    assert M.psnr(image, seg).item() == pytest.approx(10 * math.log10(1 / (2 * 0.25 ** 2 / 4)))
    assert M.psnr(image, torch.arange(4).view(1, 4)).item() == math.inf
    assert M.explained_variation(image, torch.zeros(1, 4, dtype=torch.long)).item() == 0.0
    assert M.num_tokens(seg).tolist() == [2]


# ---------------------------------------------------------------- against scikit-image
def test_thick_boundaries_match_skimage():
    image = rng_image()
    labels = felzenszwalb(image, scale=50, sigma=0.5, min_size=5)
    assert labels.max() > 20
    ours = M.boundary_pixels(torch.as_tensor(labels), "thick")[0].numpy()
    np.testing.assert_array_equal(ours, find_boundaries(labels, connectivity=1, mode="thick"))
    thin = M.boundary_pixels(torch.as_tensor(labels))[0].numpy()
    assert (thin <= ours).all() and thin.sum() < ours.sum()


def test_psnr_matches_skimage():
    image = rng_image(seed=1)
    labels = slic(image, n_segments=60, start_label=0)
    x = image.astype(np.float64) / 255
    means = np.stack([np.bincount(labels.ravel(), x[..., c].ravel()) / np.bincount(labels.ravel())
                      for c in range(3)], 1)
    expected = peak_signal_noise_ratio(x, means[labels], data_range=1.0)
    # ours reads uint8 through float32 (as every dhtgraph input): agreement to ~1e-8
    assert M.psnr(image, torch.as_tensor(labels)).item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- batches and inputs
def test_batch_is_per_image_and_labels_are_per_image():
    images = np.stack([rng_image(seed=s) for s in range(3)])
    segs = torch.stack([torch.as_tensor(slic(im, n_segments=30, start_label=0)) for im in images])
    truths = torch.stack([torch.as_tensor(felzenszwalb(im, scale=200)) for im in images])
    tensor = torch.as_tensor(images).permute(0, 3, 1, 2)
    for metric in (M.boundary_recall, M.boundary_precision, M.undersegmentation_error,
                   M.achievable_segmentation_accuracy):
        together = metric(segs, truths)
        alone = torch.cat([metric(segs[i], truths[i]) for i in range(3)])
        assert torch.equal(together, alone), metric.__name__
    for metric in (M.explained_variation, M.intra_cluster_variation, M.psnr):
        together = metric(images, segs)
        alone = torch.cat([metric(images[i], segs[i]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-12, atol=0, msg=metric.__name__)
        torch.testing.assert_close(metric(tensor, segs), together, rtol=1e-12, atol=0)
    assert torch.equal(M.compactness(segs), torch.cat([M.compactness(s) for s in segs]))
    assert M.num_tokens(segs).tolist() == [len(torch.unique(s)) for s in segs]


def test_partition_input_equals_label_images():
    # a Partition of the B·H·W pixels (as tokenize returns it): blocks numbered globally
    images = np.stack([rng_image(seed=s) for s in range(2)])
    labels = torch.stack([torch.as_tensor(slic(im, n_segments=30, start_label=0)) for im in images])
    partition = dhtgraph.Partition.from_labels((labels + torch.tensor([0, 1000]).view(2, 1, 1)).reshape(-1))
    size = labels.shape[1:]
    truth = torch.stack([torch.as_tensor(felzenszwalb(im, scale=200)) for im in images])
    for metric in (M.boundary_recall, M.undersegmentation_error, M.achievable_segmentation_accuracy):
        assert torch.equal(metric(partition, truth, image_size=size), metric(labels, truth))
    assert torch.equal(M.compactness(partition, image_size=size), M.compactness(labels))
    assert M.num_tokens(partition, image_size=size).tolist() == M.num_tokens(labels).tolist()
    for metric in (M.explained_variation, M.psnr, M.intra_cluster_variation):
        torch.testing.assert_close(metric(images, partition), metric(images, labels),
                                   rtol=1e-12, atol=0)
    assert dhtgraph.explained_variation is M.explained_variation


def test_label_numbering_does_not_matter():
    image = rng_image(seed=3)
    seg = torch.as_tensor(slic(image, n_segments=40, start_label=0))
    truth = torch.as_tensor(felzenszwalb(image, scale=100))
    renamed = seg * 13 + 5
    for metric in (M.boundary_recall, M.undersegmentation_error, M.achievable_segmentation_accuracy):
        assert torch.equal(metric(seg, truth), metric(renamed, truth))
    assert torch.equal(M.compactness(seg), M.compactness(renamed))
    assert torch.equal(M.psnr(image, seg), M.psnr(image, renamed))


# ---------------------------------------------------------------- bad input
def test_bad_input_errors():
    seg = torch.zeros(2, 8, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"'truth' to have the image size \(8, 8\) of 'seg' \(got \(8, 9\)\)"):
        M.boundary_recall(seg, torch.zeros(2, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'truth' to hold as many images as 'seg', 2 \(got 3\)"):
        M.undersegmentation_error(seg, torch.zeros(3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'seg' to have shape \(1, 8, 8\) to match 'image'"):
        M.psnr(torch.rand(3, 8, 8), seg)
    with pytest.raises(ValueError, match="'seg' to be a non-empty partition"):
        M.compactness(dhtgraph.Partition.discrete(0), image_size=(4, 4))
    with pytest.raises(ValueError, match="'seg' to be non-empty"):
        M.num_tokens(torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="'image_size' \\(H, W\\) with a Partition 'seg'"):
        M.compactness(dhtgraph.Partition.discrete(16))
    with pytest.raises(ValueError, match=r"'seg' to partition B·4·4 pixels \(got 18 items\)"):
        M.compactness(dhtgraph.Partition.discrete(18), image_size=(4, 4))
    with pytest.raises(ValueError, match="block spanning two images"):
        M.num_tokens(dhtgraph.Partition.indiscrete(32), image_size=(4, 4))
    with pytest.raises(TypeError, match="'seg' to have an integer dtype"):
        M.compactness(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"'truth' to hold non-negative labels \(got minimum -1\)"):
        M.boundary_recall(seg, seg - 1)
    with pytest.raises(ValueError, match=r"2 \(H, W\) or 3 \(B, H, W\) dimensions \(got 4\)"):
        M.compactness(seg[None])
    with pytest.raises(ValueError, match="'tolerance' to be a non-negative int"):
        M.boundary_recall(seg, seg, -1)
    with pytest.raises(ValueError, match="'mode' to be one of"):
        M.boundary_precision(seg, seg, mode="inner")
    with pytest.raises(ValueError, match="'data_range' to be a positive number"):
        M.psnr(torch.rand(1, 8, 8), seg[:1], data_range=0)
    with pytest.raises(ValueError, match=r"'partition' over 64 pixels \(got 16\)"):
        M.explained_variation(torch.rand(1, 8, 8), dhtgraph.Partition.discrete(16))
