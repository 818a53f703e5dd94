"""The threading policy (dhtgraph.threads): thread counts restored, choices, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dhtgraph
from dhtgraph import threads
from dhtgraph.nn import DHTTokenizer
from dhtgraph.nn import tokenizer as tokenizer_module
from dhtgraph.nn.tokenizer import concat_tokens
from dhtgraph.threads import (SMALL_INPUT_PIXELS, batch_workers, busy_cpus, choose_num_threads,
                              limit, map_chunks, per_thread_control, run_with_policy)

#: Pixels above torch's element-wise grain size (32768) so 2 threads open parallel regions.
SIDE = 200


@pytest.fixture
def two_threads():
    """Run the test with torch at 2 intra-op threads; restore the count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _image(side: int = SIDE, seed: int = 0) -> torch.Tensor:
    # Smooth colour blobs plus noise: many levels, ties broken by the data, not the order.
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear",
                                             align_corners=False)
    return (smooth + 0.05 * torch.rand(1, 3, side, side, generator=g)).clamp(0, 1)


def _tokenize(images, num_threads=None, **kw):
    return dhtgraph.tokenize(images, num_threads=num_threads, **kw)


# ------------------------------------------------------------------------ limit
def test_limit_sets_and_restores(two_threads):
    with limit(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with limit(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == 2


def test_limit_restores_on_error(two_threads):
    with pytest.raises(RuntimeError, match="inside"):
        with limit(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_limit_nested_and_public_alias(two_threads):
    assert dhtgraph.num_threads is limit
    with dhtgraph.num_threads(1):
        with limit(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_limit_same_count_changes_nothing(two_threads, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    with limit(2):
        pass
    assert calls == []


@pytest.mark.parametrize("bad, error, message", [
    (0, ValueError, r"Expected 'num_threads' to be a positive int \(got 0\)"),
    (1.5, TypeError, r"Expected 'num_threads' to be a positive int \(got float 1.5\)"),
    (True, TypeError, r"Expected 'num_threads' to be a positive int \(got bool True\)"),
])
def test_limit_refuses_bad_counts(bad, error, message, two_threads):
    with pytest.raises(error, match=message):
        with limit(bad):
            pass
    assert torch.get_num_threads() == 2


# ------------------------------------------------------------------ the policy
def test_explicit_count_is_used_as_given(two_threads):
    assert choose_num_threads(10, 3) == 3
    assert choose_num_threads(10 ** 8, 1) == 1
    with pytest.raises(ValueError, match=r"Expected 'num_threads' to be a positive int or None"):
        choose_num_threads(10, 0)
    with pytest.raises(ValueError, match=r"Expected 'pixels' to be a non-negative int"):
        choose_num_threads(-1)


def test_small_inputs_get_one_thread(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert choose_num_threads(SMALL_INPUT_PIXELS - 1, busy=0) == 1
    assert choose_num_threads(SMALL_INPUT_PIXELS, busy=0) == 2
    assert choose_num_threads(224 * 224, busy=0) == 1    # one 224² image: 1 thread is faster
    assert choose_num_threads(512 * 512, busy=0) == 2    # idle: torch's count


def test_large_inputs_get_the_free_cpus(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    big = SMALL_INPUT_PIXELS
    assert choose_num_threads(big, busy=0) == 2          # idle: torch's count
    assert choose_num_threads(big, busy=1) == 1          # one CPU taken by others
    assert choose_num_threads(big, busy=7) == 1          # never below one
    assert choose_num_threads(big, busy=None) == 2       # unknown load: torch's count
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    assert choose_num_threads(big, busy=0) == 2          # never above torch's count


def test_one_thread_setting_is_respected(monkeypatch):
    # DataLoader workers and torchrun set one thread: the policy never raises it.
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    with limit(1):
        assert choose_num_threads(10 ** 8, busy=0) == 1


def test_busy_cpus_reads_the_run_queue(tmp_path, monkeypatch):
    fake = tmp_path / "loadavg"
    fake.write_text("3.00 2.00 1.00 5/300 1234\n")
    monkeypatch.setattr(threads, "_LOADAVG", str(fake))
    own = threads._own_running_threads()
    assert own >= 1                                      # this thread is running
    assert busy_cpus() == max(5 - own, 0)
    fake.write_text("garbage\n")
    assert busy_cpus() is None
    monkeypatch.setattr(threads, "_LOADAVG", str(tmp_path / "absent"))
    assert busy_cpus() is None


def test_policy_measures_the_load_at_call_time(two_threads, tmp_path, monkeypatch):
    fake = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "_LOADAVG", str(fake))
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    fake.write_text("0.10 0.10 0.10 1/300 1234\n")    # only this thread runs

    def no_scan():
        raise AssertionError("an idle machine needs no scan of this process's threads")

    monkeypatch.setattr(threads, "_own_running_threads", no_scan)
    assert choose_num_threads(10 ** 6) == 2
    fake.write_text("9.00 9.00 9.00 9/300 1234\n")    # eight other tasks want the CPUs
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 1)
    assert choose_num_threads(10 ** 6) == 1
    fake.write_text("2.00 2.00 2.00 3/300 1234\n")    # this process's two threads + one
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 2)
    assert choose_num_threads(10 ** 6) == 1
    fake.write_text("2.00 2.00 2.00 2/300 1234\n")    # only this process's two threads
    assert choose_num_threads(10 ** 6) == 2


def test_busy_cpus_on_this_machine():
    busy = busy_cpus()
    assert busy is None or busy >= 0


def test_run_with_policy_restores_and_passes_the_result(two_threads):
    seen = []
    big = torch.zeros(1, 3, 1024, 1024)
    assert run_with_policy(lambda x: seen.append(torch.get_num_threads()) or "out",
                           big, num_threads=1) == "out"
    assert seen == [1] and torch.get_num_threads() == 2
    run_with_policy(lambda x: seen.append(torch.get_num_threads()), torch.zeros(3, 8, 8))
    assert seen[-1] == 1                                 # small input → one thread
    with pytest.raises(KeyError, match="boom"):
        run_with_policy(lambda x: {}["boom"], big, num_threads=1)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"Expected 'images' to have 3 or 4 dimensions \(got 2\)"):
        run_with_policy(lambda x: x, torch.zeros(8, 8))


def test_run_with_policy_leaves_threads_alone_off_the_cpu(two_threads):
    seen = []
    small = torch.empty(1, 3, 8, 8, device="meta")      # stands in for a CUDA tensor
    run_with_policy(lambda x: seen.append(torch.get_num_threads()), small)
    assert seen == [2]
    run_with_policy(lambda x: seen.append(torch.get_num_threads()), small, num_threads=1)
    assert seen == [2, 1]


# --------------------------------------------------------------- determinism
def _same_tokens(a, b) -> None:
    assert torch.equal(a.partition.labels, b.partition.labels)
    assert torch.equal(a.num_tokens, b.num_tokens)
    assert torch.equal(a.features, b.features)
    assert torch.equal(a.injected, b.injected)


@pytest.mark.parametrize("max_tokens", [None, 60])
def test_tokens_do_not_depend_on_the_thread_count(two_threads, max_tokens):
    images = torch.cat([_image(seed=0), _image(seed=1)])
    reference = _tokenize(images, 1, max_tokens=max_tokens)
    assert int(reference.num_levels.max()) >= 4          # a real hierarchy, not a trivial one
    for n in ((2, 3, None) if max_tokens is None else (2,)):
        _same_tokens(_tokenize(images, n, max_tokens=max_tokens), reference)
    assert torch.get_num_threads() == 2


@pytest.mark.shared
def test_photograph_tokens_do_not_depend_on_the_thread_count(shared_dir, two_threads):
    from PIL import Image

    photo = np.array(Image.open(shared_dir / "data" / "images" / "bedcat.jpg")
                       .convert("RGB").resize((224, 224), Image.BICUBIC))
    images = torch.from_numpy(photo).permute(2, 0, 1).float().div(255)
    one = _tokenize(images, 1, max_tokens=400)
    _same_tokens(_tokenize(images, 2, max_tokens=400), one)
    _same_tokens(dhtgraph.tokenize(photo, max_tokens=400), one)    # today's default path


def _worker_threads(_):
    return torch.get_num_threads(), choose_num_threads(10 ** 8, busy=0)


def test_dataloader_workers_run_one_thread(two_threads):
    # torch's DataLoader sets one intra-op thread in each worker; the policy keeps it.
    loader = torch.utils.data.DataLoader(range(1), num_workers=1, collate_fn=_worker_threads,
                                         multiprocessing_context="fork")
    assert list(loader) == [(1, 1)]


def test_omp_num_threads_sets_what_the_policy_uses():
    # torchrun sets OMP_NUM_THREADS=1 for each process when it is unset; the policy keeps it.
    import os
    import subprocess
    import sys

    code = ("import torch; from dhtgraph.threads import choose_num_threads; "
            "print(torch.get_num_threads(), choose_num_threads(10 ** 8, busy=0))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


# ------------------------------------------------------- threads across the images of a batch
needs_control = pytest.mark.skipif(not per_thread_control(),
                                   reason="torch's OpenMP runtime not found: no batch pool")


def _mixed_batch() -> torch.Tensor:
    """Four 200² images that stop after different numbers of levels (6, 1, 6, 8)."""
    tiled = _image(64, 2).repeat(1, 1, 4, 4)[..., :SIDE, :SIDE]
    return torch.cat([_image(seed=0), torch.full((1, 3, SIDE, SIDE), 0.5), _image(seed=1),
                      tiled])


def _assert_identical(a, b) -> None:
    """Every field of two Tokens equal, bit for bit (the hierarchy level by level)."""
    assert a.image_size == b.image_size
    assert a.partition.num_blocks == b.partition.num_blocks
    assert torch.equal(a.partition.labels, b.partition.labels)
    assert a.hierarchy.num_items == b.hierarchy.num_items
    assert a.hierarchy.num_blocks == b.hierarchy.num_blocks
    for p, q in zip(a.hierarchy.steps, b.hierarchy.steps):
        assert torch.equal(p.labels, q.labels)
    for name in ("features", "projected", "batch", "num_tokens", "injected", "num_levels",
                 "selected_mean", "sizes", "bbox", "centroids", "edge_index"):
        u, v = getattr(a, name), getattr(b, name)
        assert u.dtype == v.dtype and torch.equal(u, v), name


@pytest.fixture
def spy(monkeypatch):
    """Records the worker counts the tokenizer hands to map_chunks."""
    calls = []

    def recording(fn, images, workers):
        calls.append(workers)
        return map_chunks(fn, images, workers)

    monkeypatch.setattr(tokenizer_module, "map_chunks", recording)
    return calls


@needs_control
@pytest.mark.parametrize("max_tokens", [None, 60])
@pytest.mark.parametrize("cpus", [2, 4])
def test_batch_pool_is_bit_identical_to_one_call(two_threads, spy, monkeypatch, max_tokens,
                                                 cpus):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    images = _mixed_batch()
    one = _tokenize(images, 1, max_tokens=max_tokens)             # one call, one thread
    assert spy == [] and sorted(set(one.num_levels.tolist())) == [1, 6, 8]
    pooled = _tokenize(images, cpus, max_tokens=max_tokens)
    assert spy == [cpus]                                          # chunks of 4 // cpus images
    _assert_identical(pooled, one)
    _assert_identical(_tokenize(images, max_tokens=max_tokens), one)   # the default policy
    assert spy == [cpus, 2]
    assert torch.get_num_threads() == 2


@needs_control
def test_module_pool_in_inference_mode_and_no_grad(two_threads, spy):
    model = DHTTokenizer(encoder="lab").eval()
    images = _mixed_batch()
    with torch.no_grad():
        one = model(images, 50, num_threads=1)
        _assert_identical(model(images, 50, num_threads=2), one)
    with torch.inference_mode():
        pooled = model(images, 50, num_threads=2)
    assert spy == [2, 2] and pooled.features.is_inference()
    _assert_identical(pooled, one)


@needs_control
def test_checkpoint_encoder_pool_is_bit_identical(two_threads, spy):
    # The learned (convolutional) encoder in eval mode: batch independent, so pooled.
    model = DHTTokenizer(encoder="learned").eval()
    images = torch.cat([_image(seed=3), _image(seed=4)])
    with torch.no_grad():
        _assert_identical(model(images, num_threads=2), model(images, num_threads=1))
    assert spy == [2]


@needs_control
def test_batch_pool_is_not_used_where_batch_matters(two_threads, spy):
    images = torch.cat([_image(seed=0), _image(seed=1)])
    model = DHTTokenizer(encoder="lab").eval()
    out = model(images, 40, num_threads=2)                  # gradients wanted: one call
    assert out.projected.requires_grad and spy == []
    out.projected.sum().backward()
    assert model.linear.weight.grad is not None
    with torch.no_grad():
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        a = model(images, 40, generator=g1, num_threads=2)   # the draws span the batch
        _assert_identical(a, model(images, 40, generator=g2, num_threads=1))
        learned = DHTTokenizer(encoder="learned").train()    # BatchNorm couples images
        learned(images, num_threads=2)
        model(images[:1], num_threads=2)                     # one image
        with torch.autocast("cpu", enabled=True):            # per-thread: workers miss it
            model(images, num_threads=2)
    assert spy == []
    with torch.no_grad():
        model(images, num_threads=2)
    assert spy == [2]


@needs_control
def test_workers_run_one_intra_op_thread_and_change_nothing_else(two_threads):
    seen = []

    def record(chunk):
        seen.append((chunk.shape[0], torch.get_num_threads(), torch.is_grad_enabled()))
        return chunk.shape[0]

    assert map_chunks(record, torch.zeros(5, 3, 4, 4), 2) == [3, 2]
    assert sorted(seen) == [(2, 1, False), (3, 1, False)]
    assert torch.get_num_threads() == 2                       # this thread's count
    fresh = []                                                # a new thread: torch's count
    import threading as _threading
    t = _threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert fresh == [2]
    # The pool's threads get their own count back after each chunk.
    assert map_chunks(lambda c: threads._openmp["lib"].omp_get_max_threads(),
                      torch.zeros(2, 1, 1, 1), 2) == [1, 1]


@needs_control
def test_map_chunks_raises_the_workers_error_and_refuses_bad_counts(two_threads):
    def fail(chunk):
        if chunk[0, 0, 0, 0] == 1:
            raise KeyError("chunk 1")
        return "ok"

    images = torch.stack([torch.zeros(1, 1, 1), torch.ones(1, 1, 1)])
    with pytest.raises(KeyError, match="chunk 1"):
        map_chunks(fail, images, 2)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"Expected 'workers' to be at most the batch size 2 "
                                         r"\(got 3\)"):
        map_chunks(fail, images, 3)
    with pytest.raises(ValueError, match=r"Expected 'workers' to be a positive int"):
        map_chunks(fail, images, 0)


def test_batch_workers_choices(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "per_thread_control", lambda: True)
    big = SMALL_INPUT_PIXELS
    assert batch_workers(16, 16 * big) == 2                  # torch's count
    assert batch_workers(16, 16 * big, 3) == 3               # as asked
    assert batch_workers(16, 16 * big, 8) == 4               # at most the CPUs
    assert batch_workers(3, 3 * big, 8) == 3                 # at most the images
    assert batch_workers(1, big, 2) == 1                     # one image: one call
    assert batch_workers(4, big - 1) == 1                    # tiny input: one call
    assert batch_workers(16, 16 * big, 1) == 1
    with limit(1):                                           # DataLoader workers, torchrun
        assert batch_workers(16, 16 * big) == 1
    with pytest.raises(ValueError, match=r"Expected 'num_threads' to be a positive int or None"):
        batch_workers(16, big, 0)
    monkeypatch.setattr(threads, "per_thread_control", lambda: False)
    assert batch_workers(16, 16 * big, 2) == 1               # no OpenMP runtime: one call


def test_pool_is_made_again_after_fork(monkeypatch):
    first = threads._pool()
    assert threads._pool() is first
    monkeypatch.setitem(threads._executor, "pid", -1)        # as in a forked child
    assert threads._pool() is not first


def test_concat_tokens_refuses_bad_parts():
    a = dhtgraph.tokenize(torch.rand(3, 8, 8))
    b = dhtgraph.tokenize(torch.rand(3, 8, 9))
    assert concat_tokens([a]) is a
    with pytest.raises(ValueError, match="Expected 'parts' to hold at least one Tokens"):
        concat_tokens([])
    with pytest.raises(ValueError, match=r"Expected 'parts' of one image size \(got \[\(8, 8\), "
                                         r"\(8, 9\)\]\)"):
        concat_tokens([a, b])
    with pytest.raises(TypeError, match=r"Expected 'parts' to hold Tokens \(got Tensor, Tokens\)"):
        concat_tokens([a, torch.zeros(1)])
