"""The threading policy (dhtgraph.threads): thread counts restored, choices, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dhtgraph
from dhtgraph import threads
from dhtgraph.threads import (SMALL_INPUT_PIXELS, busy_cpus, choose_num_threads, limit,
                              run_with_policy)

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
    """How the tokenizer calls the policy (see the issue-13 note)."""
    return run_with_policy(lambda x: dhtgraph.tokenize(x, **kw), images, num_threads)


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
    assert choose_num_threads(224 * 224, busy=0) == 2    # idle: today's default, 2 threads


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
