"""dhtgraph.from_image: shapes, exact edges, inputs of every kind, bad input."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.utils import is_undirected

from dhtgraph import from_image, grid_edge_index
from dhtgraph.graph import as_image_tensor


def test_2x2_exact_edges():
    g = from_image(torch.zeros(1, 2, 2))
    # 0 1
    # 2 3
    assert g.edge_index.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3], [1, 2, 0, 3, 0, 3, 1, 2]]


def test_2x2_eight_connectivity_exact_edges():
    e = grid_edge_index(2, 2, connectivity=8)
    assert e.tolist() == [[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], [1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2]]


@pytest.mark.parametrize("b, h, w", [(1, 1, 1), (1, 1, 7), (1, 5, 1), (2, 3, 4), (3, 6, 5)])
def test_edge_count_and_convention(b, h, w):
    g = from_image(torch.rand(b, 2, h, w))
    assert g.num_nodes == b * h * w
    assert g.edge_index.shape == (2, 2 * b * (2 * h * w - h - w))
    assert g.edge_index.dtype == torch.int64
    src, dst = g.edge_index
    assert bool((src != dst).all())
    key = src * g.num_nodes + dst
    assert bool((key[1:] > key[:-1]).all())  # sorted and unique = coalesced
    assert is_undirected(g.edge_index, num_nodes=g.num_nodes)
    assert bool((g.batch[src] == g.batch[dst]).all())  # images never share an edge
    assert g.batch.tolist() == sum([[i] * h * w for i in range(b)], [])
    e8 = grid_edge_index(h, w, b, connectivity=8)
    assert e8.shape[1] == 2 * b * (4 * h * w - 3 * h - 3 * w + 2)


def test_node_order_and_features_row_major():
    img = torch.arange(2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 3) / 16  # (C, H, W)
    g = from_image(img, alpha="straight")  # 2 channels would otherwise be grey+alpha
    assert (g.x[:, 0] * 16).tolist() == [0, 1, 2, 3, 4, 5]
    assert (g.x[:, 1] * 16).tolist() == [6, 7, 8, 9, 10, 11]
    assert g.pos.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert g.image_size == (2, 3) and g.num_images == 1 and "batch" not in g


def test_numpy_uint8_maps_to_unit_interval_and_matches_tensor():
    arr = np.array([[[0, 255, 51]]], dtype=np.uint8)  # (H, W, C) = (1, 1, 3)
    g = from_image(arr)
    assert torch.allclose(g.x, torch.tensor([[0.0, 1.0, 0.2]]))
    gray = from_image(np.full((2, 3), 255, dtype=np.uint8))
    assert gray.x.shape == (6, 1) and bool((gray.x == 1).all())
    batched = from_image(np.zeros((2, 3, 4, 3), dtype=np.float64))
    assert batched.x.dtype == torch.float32 and batched.batch.shape == (24,)


def test_pil_and_path_inputs(tmp_path):
    from PIL import Image

    arr = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    pil = Image.fromarray(arr)
    path = tmp_path / "img.png"
    pil.save(path)
    expected = from_image(arr).x
    assert torch.equal(from_image(pil).x, expected)
    assert torch.equal(from_image(path).x, expected)
    assert torch.equal(from_image(str(path)).x, expected)
    palette = pil.convert("P")
    assert from_image(palette).x.shape == (20, 3)


def test_batches_with_pyg_batch_and_dataloader():
    graphs = [from_image(torch.rand(3, 2, 3)), from_image(torch.rand(3, 3, 2))]
    batch = Batch.from_data_list(graphs)
    assert batch.num_nodes == 12 and batch.edge_index.shape[1] == 14 + 14
    assert batch.batch.tolist() == [0] * 6 + [1] * 6
    assert batch.edge_index[:, 14:].min() == 6
    loaded = next(iter(DataLoader(graphs, batch_size=2)))
    assert torch.equal(loaded.edge_index, batch.edge_index)


def test_one_by_one_image():
    g = from_image(torch.rand(3, 1, 1))
    assert g.num_nodes == 1 and g.edge_index.shape == (2, 0)


@pytest.mark.parametrize(
    "image, error, match",
    [
        (torch.rand(1, 1, 2, 2, 2), ValueError, r"3 \(C, H, W\) or 4 \(B, C, H, W\) dimensions \(got 5\)"),
        (np.zeros((2,)), ValueError, r"2 \(H, W\), 3 \(H, W, C\) or 4 \(B, H, W, C\) dimensions \(got 1\)"),
        (torch.rand(3, 0, 4), ValueError, "non-empty sides"),
        (np.zeros((0, 4, 3)), ValueError, "non-empty sides"),
        (np.zeros((2, 2), dtype=bool), TypeError, "dtype uint8, uint16 or float \\(got bool\\)"),
        (np.zeros((2, 2), dtype=complex), TypeError, "got complex128"),
        (np.zeros((2, 2), dtype=object), TypeError, "got object"),
        (torch.zeros(3, 2, 2, dtype=torch.bool), TypeError, "float, uint8 or uint16 dtype"),
        (torch.zeros(3, 2, 2, dtype=torch.complex64), TypeError, "float, uint8 or uint16 dtype"),
        (torch.tensor([[[float("nan")]]]), ValueError, "finite values"),
        (np.array([[np.inf]]), ValueError, "finite values"),
        ([[0.0]], TypeError, "got list"),
    ],
)
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        from_image(image)


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        from_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="readable image file"):
        from_image(text)
    with pytest.raises(ValueError, match="a directory"):
        from_image(tmp_path)


@pytest.mark.parametrize("connectivity", [6, 0, "4", True, None])
def test_bad_connectivity(connectivity):
    with pytest.raises(ValueError, match=r"'connectivity' to be 4 or 8"):
        from_image(torch.rand(1, 2, 2), connectivity=connectivity)


def test_as_image_tensor_keeps_float_values():
    t = torch.tensor([[[-2.0, 3.0]]])
    assert torch.equal(as_image_tensor(t), t[None])


def test_image_files_keep_their_bit_depth_and_alpha(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    u16 = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    Image.fromarray(u16).save(tmp_path / "u16.png")
    assert torch.allclose(from_image(tmp_path / "u16.png").x[:, 0],
                          torch.from_numpy(u16.reshape(-1) / 65535.0).float())
    f32 = (rng.random((5, 6)) * 255).astype(np.float32)  # PIL's 'F' scale is 0..255
    Image.fromarray(f32, mode="F").save(tmp_path / "f.tiff")
    assert torch.allclose(from_image(tmp_path / "f.tiff").x[:, 0], torch.from_numpy(f32.reshape(-1) / 255))
    la = rng.integers(0, 256, (5, 6, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    straight = torch.from_numpy(la.reshape(-1, 2) / 255.0).float()
    assert torch.allclose(from_image(tmp_path / "la.png", alpha="straight").x, straight)
    premultiplied = torch.stack([straight[:, 0] * straight[:, 1], straight[:, 1]], dim=1)
    assert torch.allclose(from_image(tmp_path / "la.png").x, premultiplied)
    palette = Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).convert("P")
    palette.info["transparency"] = 0
    assert from_image(palette).x.shape == (4, 4)  # palette with a transparent colour: RGBA


def test_32_bit_integer_files_out_of_range_are_refused(tmp_path):
    from PIL import Image

    Image.fromarray(np.array([[0, 70000]], dtype=np.int32), mode="I").save(tmp_path / "i.tiff")
    with pytest.raises(ValueError, match=r"mode 'I' to hold values on PIL's 8-bit scale 0..255 "
                                         r"\(got 0..70000\): for 16-bit data pass image.convert"):
        from_image(tmp_path / "i.tiff")
