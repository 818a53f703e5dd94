"""dhtgraph.from_image: shapes, exact edges, inputs of every kind, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


# ---------------------------------------------------------------- layouts (issue 8)
@pytest.mark.parametrize("make", [torch.rand, lambda *s: torch.rand(*s).numpy()])
def test_channels_last_image_in_the_wrong_layout_is_refused(make):
    is_tensor = make is torch.rand
    wrong = make(16, 12, 3) if is_tensor else make(3, 16, 12)  # HWC tensor, CHW array
    if is_tensor:
        match = (r"\(C, H, W\) layout with 1 to 4 channels \(got shape \(16, 12, 3\), read as a "
                 r"12×3 image with 16 channels\): for a \(H, W, C\) image pass channels_last=True; "
                 r"to use all 16 channels pass channels_last=False")
    else:
        match = (r"\(H, W, C\) layout with 1 to 4 channels \(got shape \(3, 16, 12\), read as a "
                 r"3×16 image with 12 channels\): for a \(C, H, W\) image pass channels_last=False; "
                 r"to use all 12 channels pass channels_last=True")
    for convert in (as_image_tensor, from_image):
        with pytest.raises(ValueError, match=match):
            convert(wrong)


def test_channels_last_option_reads_both_layouts_alike():
    chw = torch.rand(3, 5, 7)
    hwc = chw.permute(1, 2, 0).contiguous()
    expected = as_image_tensor(chw)
    assert torch.equal(as_image_tensor(hwc, channels_last=True), expected)
    assert torch.equal(as_image_tensor(hwc.numpy()), expected)
    assert torch.equal(as_image_tensor(chw.numpy(), channels_last=False), expected)
    assert torch.equal(as_image_tensor(chw, channels_last=False), expected)
    batch = torch.rand(2, 3, 6, 5)
    assert torch.equal(as_image_tensor(batch.permute(0, 2, 3, 1), channels_last=True), batch)
    assert torch.equal(from_image(hwc, channels_last=True).x, from_image(chw).x)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) layout .*got shape \(2, 6, 5, 3\)"):
        as_image_tensor(batch.permute(0, 2, 3, 1))


def test_many_channels_are_accepted_when_the_layout_is_explicit():
    features = torch.rand(8, 4, 5)
    assert as_image_tensor(features, channels_last=False).shape == (1, 8, 4, 5)
    assert from_image(features.permute(1, 2, 0).numpy(), channels_last=True).x.shape == (20, 8)
    grey = np.zeros((4, 70), dtype=np.uint8)  # (H, W): always grey, never channels
    assert as_image_tensor(grey).shape == (1, 1, 4, 70)


def test_channels_last_option_is_checked(tmp_path):
    from PIL import Image

    with pytest.raises(TypeError, match=r"'channels_last' to be True, False or None \(got str 'yes'\)"):
        as_image_tensor(torch.rand(3, 2, 2), channels_last="yes")
    pil = Image.fromarray(np.zeros((2, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"'channels_last' to be None or True for a PIL image"):
        as_image_tensor(pil, channels_last=False)
    assert as_image_tensor(pil, channels_last=True).shape == (1, 3, 2, 3)


# ---------------------------------------------------------------- value ranges
def test_float_image_on_the_8_bit_scale_warns_and_names_the_fix():
    from dhtgraph.graph.pixel import ImageRangeWarning

    with pytest.warns(ImageRangeWarning, match=r"values in \[0, 1\] \(got 0..255\): 8-bit values "
                                               r"need '/ 255'"):
        as_image_tensor(np.array([[0.0, 255.0]]))
    with pytest.warns(ImageRangeWarning, match="got -300..1"):
        from_image(torch.tensor([[[-300.0, 1.0]]]))


def test_images_in_range_and_normalised_images_do_not_warn():
    import warnings

    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    extremes = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_image_tensor(torch.rand(3, 4, 4))
        as_image_tensor((extremes - mean) / std)  # ImageNet normalisation: -2.2..2.7
        as_image_tensor(np.full((2, 2), 255, dtype=np.uint8))  # integers are scaled
        as_image_tensor(np.full((2, 2), 65535, dtype=np.uint16))


def test_torch_uint16_maps_by_its_range():
    t = torch.tensor([[[0, 65535]]], dtype=torch.uint16)
    assert as_image_tensor(t).tolist() == [[[[0.0, 1.0]]]]


@pytest.mark.parametrize("channels_last", [None, True])
@pytest.mark.parametrize("dtype,scale", [(torch.uint8, 255.0), (torch.uint16, 65535.0)])
def test_integer_images_are_their_float32_values_over_the_range(dtype, scale, channels_last):
    # Every code value, bit for bit the float32 x / scale of the spec (÷255, ÷65535), in
    # the input's memory layout (pixels stored channels-last: a permuted (B, C, H, W)
    # view comes back), the input untouched.
    codes = int(scale) + 1
    side = 8 if codes == 256 else 128                 # (side, codes / side, 3): every code
    hwc = (torch.arange(3 * codes) % codes).to(dtype).view(side, codes // side, 3)
    image = hwc if channels_last else hwc.permute(2, 0, 1)
    before = image.clone()
    got = as_image_tensor(image, channels_last=channels_last)
    expected = hwc.permute(2, 0, 1).to(torch.float32)[None] / scale
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    assert got[0].stride() == expected[0].stride() == (1, 3 * codes // side, 3)
    assert torch.equal(image, before)
    array = hwc.numpy()
    kept = array.copy()
    assert torch.equal(as_image_tensor(array), expected) and np.array_equal(array, kept)


# ---------------------------------------------------------------- PIL modes
def test_the_same_grey_image_in_modes_L_I_and_F_agrees():
    from PIL import Image

    grey = (np.arange(8 * 9).reshape(8, 9) * 7 % 256).astype(np.uint8)
    pil = Image.fromarray(grey)
    expected = torch.from_numpy(grey / 255.0).float()
    for mode in ("L", "I", "F"):
        got = as_image_tensor(pil.convert(mode))
        assert torch.allclose(got[0, 0], expected, atol=1e-7), mode
    # 16-bit grey maps by its own range, 0..65535.
    deep = (np.arange(72).reshape(8, 9) * 900).astype(np.uint16)
    assert torch.allclose(as_image_tensor(Image.fromarray(deep))[0, 0],
                          torch.from_numpy(deep / 65535.0).float())


def test_fractional_mode_F_values_in_unit_range_warn():
    from PIL import Image

    from dhtgraph.graph.pixel import ImageRangeWarning

    pil = Image.fromarray(np.array([[0.25, 0.5]], dtype=np.float32), mode="F")
    with pytest.warns(ImageRangeWarning, match=r"PIL mode 'F' images are read on PIL's 8-bit "
                                               r"scale .* pass np.asarray\(image\)"):
        got = as_image_tensor(pil)
    assert torch.allclose(got.flatten(), torch.tensor([0.25, 0.5]) / 255)
    assert as_image_tensor(np.asarray(pil)).flatten().tolist() == [0.25, 0.5]


# ---------------------------------------------------------------- alpha
def test_alpha_premultiplies_colours_and_keeps_alpha():
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [7, 9, 11, 0], [255, 255, 255, 51]]],
                    dtype=np.uint8)
    x = from_image(rgba).x
    assert torch.allclose(x[0], torch.tensor([200, 100, 50, 255]) / 255.0)
    assert x[1].tolist() == [0, 0, 0, 0] and x[2].tolist() == [0, 0, 0, 0]  # hidden colour gone
    assert torch.allclose(x[3], torch.tensor([0.2, 0.2, 0.2, 0.2]))
    assert torch.allclose(from_image(rgba, alpha="straight").x, torch.from_numpy(rgba[0] / 255.0).float())
    with pytest.raises(ValueError, match=r"'alpha' to be one of \('premultiplied', 'straight'\)"):
        as_image_tensor(rgba, alpha="over")


def test_rgb_images_are_unchanged_by_the_alpha_option():
    rgb = torch.rand(3, 4, 4)
    assert torch.equal(as_image_tensor(rgb), as_image_tensor(rgb, alpha="straight"))


# ---------------------------------------------------------------- obscure errors
def test_meta_tensors_are_refused_by_name():
    meta = torch.empty(3, 4, 4, device="meta")
    for convert in (as_image_tensor, from_image):
        with pytest.raises(ValueError, match=r"'image' to hold pixel values \(got a tensor on the "
                                             r"'meta' device"):
            convert(meta)


def test_tensors_that_require_grad_keep_their_graph():
    image = torch.rand(3, 4, 4, requires_grad=True)
    out = as_image_tensor(image)
    assert out.requires_grad
    out.sum().backward()
    assert torch.equal(image.grad, torch.ones(3, 4, 4))


# --- grid_quotient: the closed-form directed layout equals the sorted, coalesced quotient ---

_QUOTIENT_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _quotient_by_sorting(labels, k, b, h, w, loops):
    """The quotient the slow way: relabel every pixel edge, drop loops, sort, unique."""
    from dhtgraph.partition import Partition

    edges = Partition(labels, k, canonical=True).quotient(grid_edge_index(h, w, b, device=labels.device))
    if loops:
        block = torch.arange(k, device=labels.device)
        key = torch.cat([edges[0] * k + edges[1], block * (k + 1)]).sort().values
        edges = torch.stack([key // k, key % k])
    return edges


@pytest.mark.parametrize("device", _QUOTIENT_DEVICES)
@pytest.mark.parametrize("b,h,w", [(1, 7, 9), (3, 5, 6), (1, 1, 11), (1, 11, 1), (2, 1, 5),
                                   (4, 6, 1), (1, 13, 17), (5, 3, 3)])
@pytest.mark.parametrize("colours", [2, 5, 40])
@pytest.mark.parametrize("loops", [False, True])
def test_grid_quotient_equals_sorted_quotient(device, b, h, w, colours, loops):
    from dhtgraph.graph.pixel import grid_quotient
    from dhtgraph.partition import Partition

    g = torch.Generator().manual_seed(b * 1000 + h * 31 + w + colours)
    # Few colours in runs along rows: repeated boundary pairs (the pre-sort deduplication)
    # and blocks that are not connected.
    raw = torch.randint(0, colours, (b, h, (w + 1) // 2), generator=g).repeat_interleave(2, dim=2)
    p = Partition(raw[:, :, :w].reshape(-1).to(device))
    got = grid_quotient(p.labels, p.num_blocks, b, h, w, loops=loops)
    expected = _quotient_by_sorting(p.labels, p.num_blocks, b, h, w, loops)
    assert got.dtype == torch.long and got.device == p.labels.device
    assert torch.equal(got, expected)


@pytest.mark.parametrize("device", _QUOTIENT_DEVICES)
@pytest.mark.parametrize("b,h,w", [(1, 1, 1), (1, 4, 3), (2, 9, 1), (1, 230, 210)])
def test_grid_quotient_of_single_pixels_is_the_grid(device, b, h, w):
    # One block per pixel: the quotient is the pixel grid itself; 230·210 blocks exceed the
    # 32-bit key range (k² ≥ 2³¹), so this also covers the 64-bit keys.
    from dhtgraph.graph.pixel import grid_quotient

    n = b * h * w
    labels = torch.arange(n, device=device)
    assert torch.equal(grid_quotient(labels, n, b, h, w), grid_edge_index(h, w, b, device=device))
    looped = grid_quotient(labels, n, b, h, w, loops=True)
    assert torch.equal(looped, _quotient_by_sorting(labels, n, b, h, w, True))


def test_grid_quotient_one_block_and_empty_rows():
    from dhtgraph.graph.pixel import grid_quotient

    labels = torch.zeros(12, dtype=torch.long)
    assert grid_quotient(labels, 1, 1, 3, 4).shape == (2, 0)
    assert torch.equal(grid_quotient(labels, 1, 1, 3, 4, loops=True), torch.tensor([[0], [0]]))


def _draw_grid_labels(data, side: int, min_width: int, blocks: tuple[int, int]):
    """``(b, h, w, raw)``: 1–3 images of h × w pixels (h ≤ side, min_width ≤ w ≤ side) and
    labels of their pixels in at most a drawn number of blocks (within ``blocks``)."""
    from dhtgraph.testing.partitions import labels as label_strategy

    b, h, w = (data.draw(st.integers(lo, n), label=name)
               for lo, n, name in ((1, 3, "b"), (1, side, "h"), (min_width, side, "w")))
    raw = data.draw(label_strategy(b * h * w, max_blocks=data.draw(st.integers(*blocks))))
    return b, h, w, raw


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_grid_quotient_property(data):
    # Any labelling of any small batch of grids, loops on or off (measured over 200 draws:
    # median 5 blocks, 92 % with a block edge, 65 % batched, 14 % one row).
    from dhtgraph.graph.pixel import grid_quotient
    from dhtgraph.partition import Partition

    b, h, w, raw = _draw_grid_labels(data, 8, 2, (4, 16))
    loops = data.draw(st.booleans())
    p = Partition(raw)
    got = grid_quotient(p.labels, p.num_blocks, b, h, w, loops=loops)
    assert torch.equal(got, _quotient_by_sorting(p.labels, p.num_blocks, b, h, w, loops))


# --- grid_quotient: the native kernel (CPU) equals the tensor implementation ---

def _both_paths(labels, k, b, h, w, loops):
    from dhtgraph import _native
    from dhtgraph.graph.pixel import grid_quotient

    native = grid_quotient(labels, k, b, h, w, loops=loops)
    with _native.disabled():
        tensor = grid_quotient(labels, k, b, h, w, loops=loops)
    return native, tensor


_needs_edges = pytest.mark.skipif(
    not __import__("dhtgraph")._native.available("edges"), reason="native kernels 'edges' not in use")


@_needs_edges
@pytest.mark.parametrize("loops", [False, True])
def test_grid_quotient_native_by_hand(loops):
    # 3×4 image: blocks 0 (left column pair), 1 (a ring around 2) and 3 (the last column).
    labels = torch.tensor([0, 1, 1, 3,
                           0, 1, 2, 3,
                           1, 1, 1, 3])
    native, tensor = _both_paths(labels, 4, 1, 3, 4, loops)
    pairs = [[0, 1], [1, 0], [1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]
    if loops:
        pairs = sorted(pairs + [[v, v] for v in range(4)])
    assert native.t().tolist() == pairs and torch.equal(native, tensor)


@_needs_edges
@pytest.mark.parametrize("b,h,w,blocks", [(1, 224, 224, 12000), (2, 64, 48, 30), (1, 1, 300, 7),
                                          (3, 50, 1, 9), (1, 97, 131, 97 * 131)])
def test_grid_quotient_native_equals_tensor_path(b, h, w, blocks):
    # Compact blocks as a contraction level makes them (runs along rows and columns), and
    # one block per pixel (64-bit keys in the tensor path).
    from dhtgraph.partition import Partition

    g = torch.Generator().manual_seed(h * w + blocks)
    if blocks == h * w:
        labels = torch.arange(b * h * w)
    else:
        side = max(1, int((b * h * w / blocks) ** 0.5))
        coarse = torch.randint(0, blocks, (b, -(-h // side), -(-w // side)), generator=g)
        grid = coarse.repeat_interleave(side, 1).repeat_interleave(side, 2)[:, :h, :w]
        noise = torch.rand(b, h, w, generator=g) < 0.2
        grid = torch.where(noise, torch.randint(0, blocks, (b, h, w), generator=g), grid)
        labels = Partition(grid.reshape(-1)).labels
    k = int(labels.max()) + 1
    for loops in (False, True):
        native, tensor = _both_paths(labels, k, b, h, w, loops)
        assert native.dtype == torch.long and native.is_contiguous()
        assert torch.equal(native, tensor)


@_needs_edges
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_grid_quotient_native_property(data):
    # Labels in runs along rows or columns (the boundary repeats the kernel skips) or
    # arbitrary (measured over 300 draws: median 42 pixels, 3 blocks, 6 quotient edges;
    # 84 % with a block edge).
    from dhtgraph.partition import Partition

    b, h, w, raw = _draw_grid_labels(data, 9, 1, (1, 12))
    run = data.draw(st.sampled_from([1, 2, 3]), label="run")
    grid = raw.view(b, h, w)
    axis = data.draw(st.sampled_from([1, 2]), label="axis")
    grid = grid.repeat_interleave(run, axis).narrow(axis, 0, grid.shape[axis]).contiguous()
    p = Partition(grid.reshape(-1))
    native, tensor = _both_paths(p.labels, p.num_blocks, b, h, w, data.draw(st.booleans()))
    assert torch.equal(native, tensor)


@_needs_edges
def test_grid_quotient_native_refuses_labels_out_of_range():
    from dhtgraph.graph.pixel import grid_quotient

    with pytest.raises(ValueError, match=r"'labels' values in 0..1"):
        grid_quotient(torch.tensor([0, 1, 2, 1]), 2, 1, 2, 2)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("num_blocks, error, match", [
    (-3, ValueError, r"Expected 'num_blocks' to be a non-negative int \(got -3\)"),
    (2.0, TypeError, r"Expected 'num_blocks' to be a non-negative int \(got float 2.0\)"),
])
def test_grid_quotient_refuses_a_bad_num_blocks_on_both_paths(native, num_blocks, error, match):
    from contextlib import nullcontext

    from dhtgraph import _native
    from dhtgraph.graph.pixel import grid_quotient

    for loops in (False, True):
        with nullcontext() if native else _native.disabled(), pytest.raises(error, match=match):
            grid_quotient(torch.tensor([0, 1, 1, 0]), num_blocks, 1, 2, 2, loops=loops)
