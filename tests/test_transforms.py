"""ToDHT: an image to its dHT region graph as a PyG transform (issue 11 §1)."""

import pytest
import torch
from torch_geometric.data import Data, Dataset
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import BaseTransform, Compose

from dhtgraph import Partition, ToDHT, grid_edge_index, tokenize


def two_colour_image():
    # Left half red, right half blue. With max_tokens=2 the budget's Ward merges join the
    # pieces of each flat half first (cost 0) and never across the colour edge (cost > 0):
    # exactly the two halves, whatever pieces the selection made.
    img = torch.zeros(3, 8, 8)
    img[0, :, :4] = 1.0
    img[2, :, 4:] = 1.0
    return img


def test_two_colour_image_by_hand():
    data = ToDHT(2, add_seg=True, add_img=True)(two_colour_image())
    assert isinstance(ToDHT(), BaseTransform)
    assert data.num_nodes == 2
    assert data.x.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    # Centroids (row, col): rows 0..7 → 3.5; columns 0..3 → 1.5, 4..7 → 5.5.
    assert data.pos.tolist() == [[3.5, 1.5], [3.5, 5.5]]
    assert data.edge_index.tolist() == [[0, 1], [1, 0]]
    assert data.sizes.tolist() == [32, 32]
    assert data.seg.shape == (1, 8, 8)
    assert data.seg[0, :, :4].eq(0).all() and data.seg[0, :, 4:].eq(1).all()
    assert torch.equal(data.img, two_colour_image().unsqueeze(0))


def test_agrees_with_tokenize_and_the_quotient():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 24, 24, generator=g)
    data = ToDHT(max_tokens=12, add_seg=True, iota=10.0)(img)
    tokens = tokenize(img, 12, iota=10.0)
    partition = tokens.partition
    assert torch.equal(data.seg.view(-1), partition.labels)
    assert data.num_nodes == partition.num_blocks <= 12
    pixels = img.permute(1, 2, 0).reshape(-1, 3)
    assert torch.allclose(data.x, partition.reduce(pixels, "mean"))
    assert torch.equal(data.edge_index, partition.quotient(grid_edge_index(24, 24)))
    assert torch.allclose(data.pos, tokens.centroids)


def test_more_node_features():
    data = ToDHT(2, node_features=("color", "std", "size", "centroid", "bbox"))(
        two_colour_image())
    assert data.x.shape == (2, 3 + 3 + 1 + 2 + 4)
    left = data.x[0].tolist()
    assert left[3:6] == [0.0, 0.0, 0.0]            # std of a flat token
    assert left[6] == 0.5                          # half the pixels
    assert left[7:9] == [3.5 / 8, 1.5 / 8]         # centroid / (H, W)
    assert left[9:] == [0.0, 0.0, 7 / 8, 3 / 8]    # inclusive bbox / (H, W)


def test_data_input_keeps_other_attributes():
    sample = Data(img=two_colour_image().unsqueeze(0), y=torch.tensor([7]))
    data = ToDHT()(sample)
    assert data.y.tolist() == [7] and "img" not in data
    assert "img" in sample  # the input is not modified


def test_uint8_image_is_scaled():
    img = (two_colour_image() * 255).to(torch.uint8)
    assert ToDHT(2)(img).x.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


class Images(Dataset):
    def __init__(self, transform=None):
        super().__init__(None, transform)
        g = torch.Generator().manual_seed(1)
        self.images = [torch.rand(3, 16, 16, generator=g) for _ in range(5)]

    def len(self):
        return len(self.images)

    def get(self, i):
        return Data(img=self.images[i].unsqueeze(0), y=torch.tensor([i]))


def test_in_a_dataset_and_dataloader_with_compose():
    transform = Compose([ToDHT(max_tokens=6)])
    seen = 0
    for batch in DataLoader(Images(transform=transform), batch_size=2):
        assert batch.x.shape[1] == 3 and batch.pos.shape[1] == 2
        assert int(batch.batch.max()) + 1 == batch.num_graphs
        counts = torch.bincount(batch.batch)
        assert counts.max() <= 6
        # Edges stay inside each graph after batching.
        assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
        seen += batch.num_graphs
    assert seen == 5


def test_repr_shows_the_options():
    text = repr(ToDHT(max_tokens=64, add_seg=True, iota=3.0, criterion="bic"))
    assert text == ("ToDHT(max_tokens=64, add_seg=True, add_img=False, "
                    "node_features=('color',), criterion='bic', iota=3.0)")


def test_bad_options_and_input():
    with pytest.raises(TypeError, match=r"Unknown ToDHT option\(s\) \['n_segments'\]"):
        ToDHT(n_segments=75)
    with pytest.raises(ValueError, match="'iota'"):
        ToDHT(iota=-1.0)
    with pytest.raises(ValueError, match="'criterion'"):
        ToDHT(criterion="mdl")
    with pytest.raises((TypeError, ValueError), match="'max_tokens'"):
        ToDHT(max_tokens=0)
    with pytest.raises(ValueError, match="'node_features'"):
        ToDHT(node_features=("colour",))
    with pytest.raises(TypeError, match="'add_seg' to be a bool"):
        ToDHT(add_seg=1)
    with pytest.raises(ValueError, match="encoder-free"):
        ToDHT(encoder="learned")
    with pytest.raises(ValueError, match="one image per call"):
        ToDHT()(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"image in one of \('img', 'image'\)"):
        ToDHT()(Data(x=torch.rand(4, 3)))


def test_seg_is_a_partition_and_tokens_are_connected():
    g = torch.Generator().manual_seed(2)
    img = torch.rand(3, 20, 20, generator=g)
    data = ToDHT(add_seg=True)(img)
    partition = Partition(data.seg.view(-1))
    partition.validate()
    assert partition.is_connected(grid_edge_index(20, 20))
