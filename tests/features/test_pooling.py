"""Region statistics on a pixel grid: pool_grid_regions against pool_regions, exact
centroids, gradients, bad input; mean injection with counted sizes."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from dhtgraph.features.mean_injection import mean_injection
from dhtgraph.features.pooling import pool_grid_regions, pool_regions
from dhtgraph.graph.pixel import grid_coordinates
from dhtgraph.partition import Partition
from dhtgraph.testing.graphs import grid_graphs
from dhtgraph.testing.partitions import labels as label_strategy

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_hand_case():
    # 2×3 image:  0 0 1
    #             2 1 1      token 1 has runs (0, 2..2) and (1, 1..2)
    part = Partition(torch.tensor([0, 0, 1, 2, 1, 1]))
    x = torch.arange(6.0).unsqueeze(1)
    r = pool_grid_regions(part, x, 1, 2, 3)
    assert r.sizes.tolist() == [2, 3, 1]
    assert r.features.squeeze(1).tolist() == pytest.approx([0.5, 11 / 3, 3.0])
    assert r.bbox.tolist() == [[0, 0, 0, 1], [0, 1, 1, 2], [1, 0, 1, 0]]
    assert r.centroids.flatten().tolist() == pytest.approx([0.0, 0.5, 2 / 3, 5 / 3, 1.0, 0.0])
    assert r.centroids.dtype == torch.float32 and r.bbox.dtype == torch.long
    assert r.batch.tolist() == [0, 0, 0]


@settings(max_examples=40, deadline=None)
@given(graph=grid_graphs(max_side=9, max_images=3), data=st.data())
def test_equals_pool_regions_on_any_grid_partition(graph, data):
    b, h, w = graph.num_images, graph.height, graph.width
    n = b * h * w
    # Labels within each image (a token never spans two images in the library), few
    # blocks so that runs are long and ragged.
    per_image = data.draw(label_strategy(n, max_blocks=data.draw(st.integers(1, 6))))
    image = torch.arange(b).repeat_interleave(h * w)
    part = Partition(per_image * b + image)
    x = torch.rand(n, 3, generator=torch.Generator().manual_seed(n))
    pos = torch.stack(grid_coordinates(h, w, b), 1)
    want = pool_regions(part, x, pos=pos, batch=image)
    got = pool_grid_regions(part, x, b, h, w)
    assert torch.equal(got.features, want.features)
    assert torch.equal(got.sizes, want.sizes)
    assert torch.equal(got.bbox, want.bbox)
    # Small images: pool_regions' float32 sums are exact, so the centroids agree bit for bit.
    assert torch.equal(got.centroids, want.centroids)
    assert torch.equal(got.batch, want.batch)
    given_sizes = pool_grid_regions(part, x, b, h, w, sizes=part.sizes)
    assert torch.equal(given_sizes.features, got.features)


def test_centroids_are_exact_where_float32_sums_are_not():
    # One 1×6000 strip, one token: Σ col = 17,997,000 > 2^24, which float32 sums round.
    w = 6000
    part = Partition(torch.zeros(w, dtype=torch.long), 1)
    x = torch.zeros(w, 1)
    got = pool_grid_regions(part, x, 1, 1, w).centroids
    assert got.tolist() == [[0.0, 2999.5]]
    pos = torch.stack(grid_coordinates(1, w, 1), 1)
    assert pool_regions(part, x, pos=pos).centroids[0, 1].item() != 2999.5   # rounded sums


@pytest.mark.parametrize("device", DEVICES)
def test_features_are_differentiable(device):
    part = Partition(torch.tensor([0, 0, 1, 2, 1, 1, 2, 2, 1], device=device))
    x = torch.rand(9, 2, dtype=torch.float64, device=device, requires_grad=True)
    torch.autograd.gradcheck(lambda v: pool_grid_regions(part, v, 1, 3, 3).features, (x,))
    out = pool_grid_regions(part, x, 1, 3, 3)
    out.features.sum().backward()
    # d mean / d x_p = 1 / |S(p)|.
    assert torch.allclose(x.grad[:, 0], 1.0 / part.sizes[part.labels].double())


def test_bad_input():
    part = Partition(torch.tensor([0, 0, 1, 1]))
    x = torch.zeros(4, 1)
    with pytest.raises(ValueError, match=r"'partition' of the 1·2·3 pixels \(got 4 items\)"):
        pool_grid_regions(part, x, 1, 2, 3)
    with pytest.raises(ValueError, match=r"'x' of shape \(4, d\)"):
        pool_grid_regions(part, x[:3], 1, 2, 2)
    with pytest.raises(ValueError, match=r"'sizes' to be a LongTensor of shape \(2,\)"):
        pool_grid_regions(part, x, 1, 2, 2, sizes=torch.tensor([2.0, 2.0]))
    with pytest.raises(ValueError, match=r"'sizes' to be a LongTensor of shape \(2,\)"):
        pool_regions(part, x, sizes=torch.tensor([4]))


@pytest.mark.parametrize("grad", [False, True])
def test_mean_injection_with_counted_sizes(grad):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 4, 5, generator=g)
    part = Partition(torch.randint(0, 5, (40,), generator=g) + 5 * torch.arange(2).repeat_interleave(20))
    values = torch.rand(part.num_blocks, 3, generator=g, requires_grad=grad)
    want = mean_injection(image, part, values)
    got = mean_injection(image, part, values, sizes=part.sizes)
    assert torch.equal(got, want)
    pixels = image.permute(0, 2, 3, 1).reshape(-1, 3)
    expected = pixels - part.broadcast(part.reduce(pixels)) + part.broadcast(values.detach())
    assert torch.equal(got.detach().permute(0, 2, 3, 1).reshape(-1, 3), expected)   # same bits
    if grad:
        got.sum().backward()
        assert torch.equal(values.grad, part.sizes.float().unsqueeze(1).expand(-1, 3))
    with pytest.raises(ValueError, match=r"'sizes' of shape \(\d+,\), the pixels per token"):
        mean_injection(image, part, values, sizes=part.sizes[:-1])
