"""The optional native kernels: the loader's settings and errors, and that the tokenizer
gives the same tokens (and gradients) with and without them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import dhtgraph
from dhtgraph import DHTConfig, DHTTokenizer, _native

needs_native = pytest.mark.skipif(
    _native.mode() == "off" or not _native.available(),
    reason=f"native kernels not in use here ({_native.status()})")


@pytest.fixture
def fresh(monkeypatch):
    """A loader with nothing built yet (the process's own state is restored after)."""
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setattr(_native, "_functions", {})
    monkeypatch.setattr(_native, "_fallback", {})
    monkeypatch.setenv(_native.ENV, "auto")  # also when the suite runs with 'on' or 'off'
    return monkeypatch


def test_an_unknown_setting_is_refused(monkeypatch):
    monkeypatch.setenv(_native.ENV, "fast")
    with pytest.raises(ValueError, match=r"DHTGRAPH_NATIVE to be one of 'auto', 'on', 'off' "
                                         r"\(got 'fast'\)"):
        _native.mode()
    with pytest.raises(ValueError, match="DHTGRAPH_NATIVE"):
        dhtgraph.tokenize(torch.rand(3, 8, 8))


def test_off_uses_the_tensor_path_everywhere(fresh):
    fresh.setenv(_native.ENV, "off")
    assert _native.library("components") is None
    assert not _native.enabled("components", torch.zeros(2))
    assert "off" in _native.status()
    assert _native._state == {}  # nothing was compiled


def test_an_unknown_kernel_set_is_refused():
    with pytest.raises(ValueError, match=r"Expected 'kernels' to be one of .*'components'.* "
                                         r"\(got 'nope'\)"):
        _native.library("nope")


def test_a_missing_compiler_falls_back_with_a_warning_or_fails_when_required(fresh, tmp_path):
    fresh.setenv("DHTGRAPH_CACHE_DIR", str(tmp_path))
    fresh.setenv("CC", str(tmp_path / "no-such-cc"))
    fresh.setenv(_native.ENV, "auto")
    with pytest.warns(RuntimeWarning, match="native kernels 'components' unavailable"):
        assert _native.library("components") is None
    assert not _native.enabled("components", torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per process, not one per kernel set
        assert "unavailable" in _native.status()
    fresh.setattr(_native, "_state", {})
    fresh.setenv(_native.ENV, "on")
    with pytest.raises(RuntimeError, match="DHTGRAPH_NATIVE=on but the native kernels "
                                           "'components' cannot be built"):
        _native.library("components")


def test_no_compiler_at_all_falls_back_silently(fresh, tmp_path):
    fresh.setenv("DHTGRAPH_CACHE_DIR", str(tmp_path))
    fresh.delenv("CC", raising=False)
    fresh.setattr(_native, "_compiler", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.library("components") is None
    assert "no C compiler" in _native.status()


@needs_native
def test_the_library_is_built_once_into_the_cache(fresh, tmp_path):
    cache = tmp_path / "cache"
    fresh.setenv("DHTGRAPH_CACHE_DIR", str(cache))
    assert _native.library("components") is not None
    built = list(cache.glob("components-*.so"))
    assert len(built) == 1 and oct(cache.stat().st_mode & 0o777) == "0o700"
    stamp = built[0].stat().st_mtime_ns
    fresh.setattr(_native, "_state", {})
    assert _native.library("components") is not None
    assert built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in cache.iterdir()] == [built[0].name]  # no partial files left


@needs_native
def test_a_cache_others_can_write_is_not_used(fresh, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    fresh.setenv("DHTGRAPH_CACHE_DIR", str(shared))
    assert _native.library("components") is not None
    assert _native.library("edges") is not None
    assert list(shared.iterdir()) == []
    used = {Path(_native.library(name)._name).parent for name in ("components", "edges")}
    assert len(used) == 1 and shared not in used  # one private directory per process
    assert f"cache {shared} is not private" in _native.status()


@needs_native
def test_a_compiler_command_with_arguments(fresh, tmp_path):
    fresh.setenv("DHTGRAPH_CACHE_DIR", str(tmp_path))
    fresh.setenv("CC", f"env {_native._compiler()[0]}")  # 'ccache gcc'-like: a word list
    assert _native.library("components") is not None


def test_every_kernel_set_builds_where_a_compiler_is_found():
    """A C file that fails to compile must not pass as green (the native tests would
    all be skipped): where a compiler exists, every set is in use."""
    if _native._compiler() is None or _native.mode() == "off":
        pytest.skip(f"no C compiler here or the kernels are off ({_native.status()})")
    assert _native.available(), _native.status()


def test_pointer_checks_device_and_dtype():
    with pytest.raises(ValueError, match=r"Expected a torch.int64 tensor for a native kernel "
                                         r"\(got torch.int32\)"):
        _native.pointer(torch.zeros(3, dtype=torch.int32), torch.long)
    with pytest.raises(ValueError, match="Expected a CPU tensor"):
        _native.pointer(torch.zeros(3, device="meta"))


@needs_native
def test_disabled_and_devices():
    assert _native.enabled("components", torch.zeros(3))
    with _native.disabled():
        assert not _native.enabled("components", torch.zeros(3))
        with _native.disabled():
            pass
        assert not _native.enabled("components")
    assert _native.enabled("components")
    assert not _native.enabled("components", torch.zeros(3, device="meta"))


def test_pointer_needs_a_contiguous_tensor():
    with pytest.raises(ValueError, match=r"Expected a contiguous tensor .* shape \(3, 2\)"):
        _native.pointer(torch.zeros(2, 3).t())


def _images(b=3, h=20, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 4, 5, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest")
    # Exact plateaus (ties), smooth ramps and noise in one batch.
    ramp = torch.linspace(0, 1, w).expand(3, h, w)
    smooth[-1] = ramp
    return (smooth + 0.05 * torch.rand(b, 3, h, w, generator=g) * (smooth != ramp)).clamp(0, 1)


def _tokens_both_ways(fn):
    native = fn()
    with _native.disabled():
        tensor = fn()
    return native, tensor


def _assert_same(a, b):
    assert a.partition == b.partition
    assert torch.equal(a.num_tokens, b.num_tokens)
    assert torch.equal(a.features, b.features)


@needs_native
@pytest.mark.parametrize("tie_break", ["hashed", "reference"])
@pytest.mark.parametrize("max_tokens", [None, 12])
def test_tokenize_gives_the_same_tokens_with_and_without_the_kernels(tie_break, max_tokens):
    images = _images()
    for batch in (images, images[0]):
        a, b = _tokens_both_ways(lambda: dhtgraph.tokenize(batch, max_tokens,
                                                           tie_break=tie_break))
        _assert_same(a, b)
    uint8 = (images[-1] * 255).round().to(torch.uint8)
    _assert_same(*_tokens_both_ways(lambda: dhtgraph.tokenize(uint8, tie_break=tie_break)))


@needs_native
@pytest.mark.parametrize("weights", ["argmax_edge", "size"])
def test_gradients_are_the_same_with_and_without_the_kernels(weights):
    def run():
        torch.manual_seed(0)
        model = DHTTokenizer(DHTConfig(compactness=0.1, weights=weights)).train()
        images = _images(2, 16, 16, seed=4).requires_grad_(True)
        tokens = model(images, max_tokens=20)
        loss = tokens.features.pow(2).mean() + tokens.projected.pow(2).mean()
        loss.backward()
        grads = [images.grad] + [p.grad for p in model.parameters() if p.grad is not None]
        return tokens, grads

    (a, grads_a), (b, grads_b) = _tokens_both_ways(run)
    _assert_same(a, b)
    assert len(grads_a) == len(grads_b) > 1
    for ga, gb in zip(grads_a, grads_b):
        assert torch.equal(ga, gb)


def test_the_status_line_is_public():
    line = dhtgraph.native_status()
    assert line == _native.status() and line.startswith("native kernels ")
    for name in _native.kernel_sets():
        assert f"{name}: " in line or "off" in line


def test_binding_helpers():
    same = torch.arange(4)
    assert _native.as_index(same, "x") is same  # no copy
    assert torch.equal(_native.as_index(torch.arange(4, dtype=torch.int32)[::2], "x"),
                       torch.tensor([0, 2]))
    with pytest.raises(TypeError, match=r"Expected 'labels' to be an integer tensor "
                                        r"\(got torch.float32\)"):
        _native.as_index(torch.zeros(2), "labels")
    with pytest.raises(TypeError, match="got torch.bool"):
        _native.as_index(torch.zeros(2, dtype=torch.bool), "mask")
    table = torch.arange(6).view(2, 3)
    first, second = _native.rows(table)
    assert second - first == 3 * 8


def test_a_changed_setting_takes_effect_at_once(monkeypatch):
    # mode() caches the parsed value per raw string: a new value is read at the next call.
    for raw, want in (("off", "off"), (" ON ", "on"), ("", "auto"), ("Auto", "auto"),
                      ("off", "off")):
        monkeypatch.setenv(_native.ENV, raw)
        assert _native.mode() == want
        if want == "off":
            assert not _native.enabled("components", torch.zeros(2))
    monkeypatch.delenv(_native.ENV)
    assert _native.mode() == "auto"
    monkeypatch.setenv(_native.ENV, "sometimes")
    for _ in range(2):  # an invalid value is not cached as valid
        with pytest.raises(ValueError, match=r"one of 'auto', 'on', 'off' \(got 'sometimes'\)"):
            _native.enabled("components", torch.zeros(2))
    with pytest.raises(ValueError, match=r"\(got 'sometimes'\)"):
        _native.enabled("components", torch.zeros(2, device="meta"))


def test_the_setting_is_read_from_a_replaced_os_environ(monkeypatch):
    # mode() reads os.environ's own mapping fast; an os.environ replaced by a plain
    # mapping (as some tools do) is read through its get().
    import os

    for raw, want in (("off", "off"), ("on", "on"), (None, "auto")):
        replaced = {} if raw is None else {_native.ENV: raw}
        monkeypatch.setattr(os, "environ", replaced)
        assert _native.mode() == want
    monkeypatch.setattr(os, "environ", {_native.ENV: "sometimes"})
    with pytest.raises(ValueError, match=r"\(got 'sometimes'\)"):
        _native.mode()


def test_pointer_is_the_data_address():
    t = torch.arange(6)
    assert _native.pointer(t) == t.data_ptr() and isinstance(_native.pointer(t), int)
    empty = torch.zeros(3, 0)
    assert _native.rows(empty) == (empty.data_ptr(),) * 3


def test_shape_address_and_integer_helpers():
    from dhtgraph._checks import is_integer_dtype

    _native.expect_shape("size", torch.zeros(3), (3,))
    with pytest.raises(ValueError, match=r"Expected 'size' of shape \(3,\) \(got \(2, 3\)\)"):
        _native.expect_shape("size", torch.zeros(2, 3), (3,))
    strided = torch.arange(6).view(2, 3).t()  # a view: no contiguity needed
    assert _native.address(strided) == strided.data_ptr()
    with pytest.raises(ValueError, match="Expected a CPU tensor"):
        _native.address(torch.zeros(2, device="meta"))
    assert all(is_integer_dtype(d) for d in (torch.int8, torch.uint8, torch.int32, torch.long))
    assert not any(is_integer_dtype(d) for d in (torch.bool, torch.float16, torch.float32,
                                                 torch.complex64))
