"""region_graph: the quotient of the pixel graph as a PyG Data."""

import pytest
import torch
from torch_geometric.data import Batch

from dhtgraph import Partition, from_image, region_graph


def _example():
    # 2×3 image:   0 0 1
    #              2 1 1
    image = torch.arange(6, dtype=torch.float32).view(1, 2, 3)
    part = Partition(torch.tensor([0, 0, 1, 2, 1, 1]))
    return image, part


def test_hand_values():
    image, part = _example()
    g = from_image(image)
    data = region_graph(part, g.edge_index, g.x, g.pos)
    assert data.num_nodes == 3
    assert data.sizes.tolist() == [2, 3, 1]
    assert data.edge_index.tolist() == [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    torch.testing.assert_close(data.x.flatten(), torch.tensor([0.5, (2 + 4 + 5) / 3, 3.0]))
    torch.testing.assert_close(data.pos, torch.tensor([[0.0, 0.5], [2 / 3, 5 / 3], [1.0, 0.0]]))
    assert data.batch.tolist() == [0, 0, 0]


def test_batched_images_and_pyg_batch():
    images = torch.rand(2, 3, 4, 4)
    g = from_image(images)
    part = Partition(torch.arange(32) // 4)  # rows of 4 pixels, 4 per image
    data = region_graph(part, g.edge_index, g.x, g.pos, batch=g.batch)
    assert data.batch.tolist() == [0] * 4 + [1] * 4
    # Blocks of different images are never adjacent.
    src, dst = data.edge_index
    assert torch.equal(data.batch[src], data.batch[dst])
    both = Batch.from_data_list([data, data])
    assert both.num_nodes == 16
    assert torch.equal(both.edge_index[:, data.edge_index.shape[1]:], data.edge_index + 8)


def test_bad_input():
    image, part = _example()
    g = from_image(image)
    with pytest.raises(ValueError, match="'x' to have shape \\(6, F\\)"):
        region_graph(part, g.edge_index, torch.rand(5, 3))
    with pytest.raises(TypeError, match="'partition'"):
        region_graph(part.labels, g.edge_index)
    with pytest.raises(ValueError, match="one image"):
        region_graph(Partition(torch.zeros(6, dtype=torch.long)), g.edge_index,
                     batch=torch.tensor([0, 0, 0, 1, 1, 1]))
