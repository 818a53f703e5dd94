"""Building the hierarchy: chain property, stopping rules per image, the top (spec §4)."""

import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy.build import build_hierarchy, max_levels_for
from dhtgraph.hierarchy.contraction import BlockState


def _pixels(images):
    b, c, h, w = images.shape
    x = images.permute(0, 2, 3, 1).reshape(-1, c)
    node = torch.arange(h * w)
    pos = torch.stack([node // w, node % w], 1).repeat(b, 1)
    edges = grid_edge_index(h, w, b)
    batch = torch.arange(b).repeat_interleave(h * w)
    return BlockState.from_pixels(x, pos, edges, batch), edges


def _images(b=2, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 3, 3, generator=g) * 4
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True) \
        + 0.05 * torch.rand(b, 3, h, w, generator=g)


def test_max_levels():
    assert max_levels_for(224, 224) == 8
    assert max_levels_for(1, 1) == 0
    assert max_levels_for(2, 2) == 1


def test_hierarchy_is_a_connected_chain_ending_in_one_block_per_image():
    state, edges = _pixels(_images())
    built = build_hierarchy(state, 2, (12, 10), compactness=0.1)
    h = built.hierarchy
    h.validate(edges)
    top = h.absolute(h.num_levels - 1)
    assert top.num_blocks == 2
    assert torch.equal(top.labels, torch.arange(2).repeat_interleave(120))
    # Level 1 has no loops: every pixel joins a neighbour, so the count at least halves.
    assert h.num_blocks[1] <= h.num_blocks[0] // 2
    assert len(built.states) == h.num_levels
    for t, st in enumerate(built.states):
        assert st.num_blocks == h.num_blocks[t]
        assert int(st.size.sum()) == 240


def test_stopping_rules_are_per_image():
    images = _images(3, seed=1)
    state, _ = _pixels(images)
    calls = []

    def observer(partition, st, active):
        calls.append(active.clone())
        # Image 1 stops improving at once; the others keep going.
        return torch.tensor([True, False, True])

    built = build_hierarchy(state, 3, (12, 10), observer=observer)
    levels = built.num_levels.tolist()
    assert levels[1] == 2  # level 1 never stops; it stops after level 2
    assert levels[0] > 2 and levels[2] > 2
    for b in range(3):
        alone, _ = _pixels(images[b:b + 1])
        single = build_hierarchy(alone, 1, (12, 10),
                                 observer=lambda p, s, a, b=b: torch.tensor([b != 1]))
        assert int(single.num_levels[0]) == levels[b]
        # Same blocks at the image's last level, same statistics.
        mine = built.states[levels[b]]
        keep = mine.batch == b
        theirs = single.states[levels[b]]
        assert torch.equal(mine.mean[keep], theirs.mean)
        assert torch.equal(mine.size[keep], theirs.size)


def test_min_blocks_stops_an_image():
    state, _ = _pixels(_images(1, 16, 16))
    free = build_hierarchy(state, 1, (16, 16), min_blocks=6)
    assert free.hierarchy.num_blocks == [256, 90, 30, 8, 2, 1]
    built = build_hierarchy(state, 1, (16, 16), min_blocks=30)
    counts = built.hierarchy.num_blocks
    # It stopped at the first level with ≤ 30 blocks (before max_levels = 4), then the top.
    assert counts == [256, 90, 30, 1]
    assert built.num_levels.tolist() == [2] and max_levels_for(16, 16) == 4
    assert all(k > 30 for k in counts[:-2]) and counts[-2] <= 30


def test_one_pixel_image():
    state, edges = _pixels(torch.rand(1, 3, 1, 1))
    built = build_hierarchy(state, 1, (1, 1))
    assert built.hierarchy.num_blocks == [1, 1]
