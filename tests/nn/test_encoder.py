"""Pixel encoders: reference architecture, any size, encoder-free colours (spec §2)."""

import pytest
import torch
import torch.nn.functional as F

from dhtgraph.nn.encoder import ColorEncoder, PixelEncoder, rgb_to_lab


def test_state_dict_names_match_the_reference():
    names = set(PixelEncoder(3, 8).state_dict())
    for key in ("ds.0.weight", "ds.1.running_var", "cv.0.weight", "cv.1.bias", "cv.3.weight",
                "cv.4.running_mean"):
        assert key in names
    assert PixelEncoder(3, 8).cv[0].weight.shape == (32, 3, 2, 2)


def test_multiple_of_four_is_the_plain_formula():
    torch.manual_seed(0)
    enc = PixelEncoder(3, 4).eval()
    x = torch.randn(2, 3, 8, 12)
    up = F.interpolate(enc.cv[:5](x), scale_factor=4, mode="bilinear", align_corners=True)
    assert torch.allclose(enc(x), F.silu(enc.ds(x) + up), atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 10), (3, 16)])
def test_any_size_is_accepted(size):
    enc = PixelEncoder(3, 8).eval()
    out = enc(torch.rand(1, 3, *size))
    assert out.shape == (1, 8, *size) and torch.isfinite(out).all()


def test_lab_of_known_colours():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 3, 1)
    lab = rgb_to_lab(rgb)[0, :, :, 0].T
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    assert torch.allclose(lab[1], torch.zeros(3), atol=1e-3)
    assert torch.allclose(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.1)


def test_color_encoder_options():
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(ColorEncoder(3, "rgb", 2.0)(x), 2 * x)
    with pytest.raises(ValueError, match="'color_space'"):
        ColorEncoder(3, "hsv")
    with pytest.raises(ValueError, match="3 input channels"):
        ColorEncoder(1, "lab")
