"""grid_partition: the plain ViT's square-patch partition."""

import pytest
import torch

from dhtgraph import Partition, grid_partition


def test_hand_labels_row_major_per_image():
    part = grid_partition(2, 4, 6, 2)
    first = [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]]
    assert part.labels.view(2, 4, 6)[0].tolist() == first
    assert torch.equal(part.labels.view(2, 4, 6)[1], part.labels.view(2, 4, 6)[0] + 6)
    assert part.num_blocks == 12
    part.validate()  # canonical as promised
    assert part == Partition.from_labels(part.labels)


def test_blocks_are_the_timm_patches():
    image = torch.rand(2, 3, 8, 12)
    part = grid_partition(2, 8, 12, 4)
    pixels = image.permute(0, 2, 3, 1).reshape(-1, 3)
    means = part.reduce(pixels, "mean")
    # timm's patch order: unfold row-major over the (H/P, W/P) grid.
    patches = torch.nn.functional.unfold(image, 4, stride=4)  # (B, C·16, 6)
    expected = patches.view(2, 3, 16, 6).mean(2).permute(0, 2, 1).reshape(-1, 3)
    torch.testing.assert_close(means, expected)


def test_sides_must_be_multiples():
    with pytest.raises(ValueError, match="'width' to be a multiple of 'patch_size' 4"):
        grid_partition(1, 8, 10, 4)
    with pytest.raises(ValueError, match="'batch_size'"):
        grid_partition(0, 8, 8, 4)
