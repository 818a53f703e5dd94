"""dhtgraph.tokenize (recommended defaults) and explained variation."""

import numpy as np
import pytest
import torch

import dhtgraph
from dhtgraph.metrics import explained_variation
from dhtgraph.partition import Partition


def _photo(h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, 5, 3))
    img = np.kron(coarse, np.ones((h // 4, w // 5 + 1, 1)))[:h, :w]
    return np.clip(img + 0.03 * rng.random((h, w, 3)), 0, 1)


def test_explained_variation_hand_value():
    image = torch.tensor([[[[0.0, 0.0, 1.0, 3.0]]]])  # mean 1, total variation 1+1+0+4 = 6
    ev = explained_variation(image, Partition(torch.tensor([0, 0, 1, 1])))
    # Block means 0, 2 → explained (1+1+1+1) / 6.
    assert ev.tolist() == pytest.approx([4 / 6])
    assert explained_variation(image, Partition.discrete(4)).item() == pytest.approx(1.0)
    assert explained_variation(image, Partition.indiscrete(4)).item() == pytest.approx(0.0)


def test_uint8_and_float_inputs_agree():
    photo = _photo()
    as_uint8 = (photo * 255).round().astype(np.uint8)
    a = dhtgraph.tokenize(as_uint8)
    b = dhtgraph.tokenize(torch.from_numpy(as_uint8).permute(2, 0, 1).float() / 255)
    assert a.partition == b.partition
    assert a.image_size == (40, 48) and a.num_images == 1


def test_budget_and_quality():
    photo = (_photo(seed=1) * 255).astype(np.uint8)
    free = dhtgraph.tokenize(photo)
    k = int(free.num_tokens[0])
    budget = max(1, k // 2)
    capped = dhtgraph.tokenize(photo, max_tokens=budget)
    assert int(capped.num_tokens[0]) == budget
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    assert explained_variation(image, capped.partition).item() > 0.8
    assert dhtgraph.tokenize(photo, max_tokens=10 * k).partition == free.partition


def test_batched_arrays_and_options():
    batch = (np.stack([_photo(seed=2), _photo(seed=3)]) * 255).astype(np.uint8)
    tokens = dhtgraph.tokenize(batch, max_tokens=9, criterion="bic")
    assert tokens.num_tokens.tolist() == [9, 9]
    with pytest.raises(TypeError, match="Unknown tokenize option"):
        dhtgraph.tokenize(batch, colour="lab")
    with pytest.raises(ValueError, match="'criterion'"):
        dhtgraph.tokenize(batch, criterion="best")
    with pytest.raises(ValueError, match="'max_tokens'"):
        dhtgraph.tokenize(batch, max_tokens=0)


def test_nan_image_is_refused():
    photo = _photo()
    photo[3, 4, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        dhtgraph.tokenize(photo)


def test_tiny_images():
    one = dhtgraph.tokenize(np.zeros((1, 1, 3), dtype=np.uint8))
    assert one.partition.num_blocks == 1
    strip = np.zeros((1, 5, 3), dtype=np.uint8)
    strip[0, 3:] = 255
    k = int(dhtgraph.tokenize(strip).num_tokens[0])
    assert k == 5  # five pixels: no block of ≥ 2 pixels beats a pixel's starting IC here
    for budget in (1, 2, 3, 10):
        capped = dhtgraph.tokenize(strip, max_tokens=budget)
        assert int(capped.num_tokens[0]) == min(k, budget)


def _texture(size=48, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.kron(rng.random((6, 6, 3)), np.ones((size // 6, size // 6, 1)))
    return (np.clip(smooth + 0.15 * rng.random((size, size, 3)), 0, 1) * 255).astype(np.uint8)


def test_iota_and_criterion_options_change_the_tokens():
    image = _texture()
    counts = [int(dhtgraph.tokenize(image, iota=iota).num_tokens[0]) for iota in (1.0, 10.0, 100.0)]
    assert counts[0] < counts[1] < counts[2]
    aicc = int(dhtgraph.tokenize(image, criterion="aicc").num_tokens[0])
    bic = int(dhtgraph.tokenize(image, criterion="bic").num_tokens[0])
    assert bic <= aicc
    assert dhtgraph.tokenize(image, criterion="bic").partition != \
        dhtgraph.tokenize(image, criterion="aicc").partition


@pytest.mark.parametrize("option", [dict(encoder="learned"), dict(var_projection=True)])
def test_options_that_need_trained_weights_are_refused(option):
    with pytest.raises(ValueError, match="needs trained weights.*DHTTokenizer.*from_dht_checkpoint"):
        dhtgraph.tokenize(_photo(), **option)


def test_the_global_rng_is_left_alone():
    import importlib

    module = importlib.import_module("dhtgraph.tokenize")
    module._clear_cache()  # the first call per configuration builds the modules
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    first = dhtgraph.tokenize(_photo(), max_tokens=5, iota=12.5)
    assert torch.equal(torch.get_rng_state(), before)
    second = dhtgraph.tokenize(_photo(), max_tokens=5, iota=12.5)
    assert torch.equal(torch.get_rng_state(), before)
    assert first.partition == second.partition


def test_explained_variation_refuses_blocks_across_images():
    images = torch.rand(2, 3, 2, 2)
    with pytest.raises(ValueError, match="lie inside one image"):
        explained_variation(images, Partition.indiscrete(8))


def test_float64_images_are_computed_in_the_module_dtype():
    from dhtgraph import DHTConfig, DHTTokenizer

    images = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    for encoder in ("rgb", "learned"):
        model = DHTTokenizer(DHTConfig(encoder=encoder)).eval()
        with torch.no_grad():
            ours = model(images)
            reference = model(images.float())
        assert ours.partition == reference.partition


def test_no_module_is_shared_between_threads_or_moved():
    import importlib
    import threading

    module = importlib.import_module("dhtgraph.tokenize")

    seen = {}

    def run(name):
        photo = _photo(seed=4)
        tokens = dhtgraph.tokenize(photo, max_tokens=7)
        seen[name] = (tokens.partition, module._tokenizer(
            module.DHTConfig.preset("recommended", in_channels=3), torch.device("cpu")))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mine = module._tokenizer(module.DHTConfig.preset("recommended", in_channels=3),
                             torch.device("cpu"))
    modules = [seen[i][1] for i in range(3)] + [mine]
    assert len({id(m) for m in modules}) == 4  # one module per thread (all alive here)
    assert seen[0][0] == seen[1][0] == seen[2][0]


def test_meta_images_are_refused():
    with pytest.raises(ValueError, match="meta"):
        dhtgraph.tokenize(torch.empty(1, 3, 8, 8, device="meta"))


# --- options wired from the input and threading stages (issues 8 and 13) ---
def test_num_threads_option_gives_the_same_tokens_and_restores_torch():
    image = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(3))
    before = torch.get_num_threads()
    one = dhtgraph.tokenize(image, max_tokens=30, num_threads=1)
    assert torch.get_num_threads() == before
    default = dhtgraph.tokenize(image, max_tokens=30)
    assert torch.equal(one.partition.labels, default.partition.labels)
    with pytest.raises(ValueError, match="'num_threads'"):
        dhtgraph.tokenize(image, num_threads=0)


def test_channels_last_option_reaches_the_image_reader():
    hwc = torch.rand(24, 24, 3, generator=torch.Generator().manual_seed(4))
    with pytest.raises(ValueError, match="channels_last=True"):
        dhtgraph.tokenize(hwc)
    assert torch.equal(dhtgraph.tokenize(hwc, channels_last=True).labels(),
                       dhtgraph.tokenize(hwc.permute(2, 0, 1)).labels())
    with pytest.raises(ValueError, match="'alpha'"):
        dhtgraph.tokenize(hwc, channels_last=True, alpha="x")


def test_a_bad_generator_is_refused_also_without_a_budget():
    with pytest.raises(TypeError, match="'generator'"):
        dhtgraph.tokenize(torch.rand(3, 8, 8), generator="x")


def _ramp(side: int) -> torch.Tensor:
    # 0..0.25 over 128 px: as uint8, plateaus of 2×2 pixels (steps of 1/255)
    axis = torch.linspace(0, 0.25, side)
    return torch.stack([axis.view(1, -1).expand(side, side), axis.view(-1, 1).expand(side, side),
                        torch.full((side, side), 0.5)])


@pytest.mark.parametrize("quantised", [False, True])
def test_smooth_gradients_get_a_photograph_like_token_count_by_default(quantised):
    # issue 8: the reference's tie rule chains the whole ramp into one block (float32:
    # 1 token, EV 0) or, as uint8, stripes of its 8-bit plateaus; the default 'hashed'
    # rule gives compact blocks with the explained variation of a photograph.
    image = _ramp(128)
    if quantised:
        image = (image * 255).round().to(torch.uint8)
    tokens = dhtgraph.tokenize(image)
    k = int(tokens.num_tokens[0])
    assert 50 <= k <= 1000
    pixels = image.float() / (255 if quantised else 1)
    assert float(explained_variation(pixels, tokens.labels()[0])) > 0.95
    if not quantised:   # the reference's rule, for contrast: one token
        assert int(dhtgraph.tokenize(image, tie_break="reference").num_tokens[0]) == 1


def test_plateaus_stay_whole_by_default():
    # A constant image is one token; a fully transparent half and an opaque half are two
    # (the hash never splits a plateau: along equal pixels the index decides).
    assert int(dhtgraph.tokenize(torch.full((3, 64, 64), 0.3)).num_tokens[0]) == 1
    image = torch.zeros(4, 16, 16)
    image[:3, :8], image[3, :8] = torch.tensor([0.8, 0.1, 0.1]).view(3, 1, 1), 1.0
    image[:3, 8:] = torch.rand(3, 8, 16, generator=torch.Generator().manual_seed(0))
    assert int(dhtgraph.tokenize(image).num_tokens[0]) == 2


def test_the_checkpoint_preset_keeps_the_reference_tie_rule():
    from dhtgraph.nn.config import DHTConfig

    assert DHTConfig().tie_break == "hashed"
    assert DHTConfig.preset("recommended").tie_break == "hashed"
    assert DHTConfig.preset("r2v").tie_break == "reference"


def test_unknown_tie_break_is_refused():
    with pytest.raises(ValueError, match="'tie_break'"):
        dhtgraph.tokenize(torch.rand(3, 8, 8), tie_break="random")
