"""How many CPU threads the tokenizer uses, and a policy that stays fast under load.

The tokenizer runs a few thousand small tensor operations per call. With more than one
intra-op thread (torch's default: one per core), every operation above torch's grain size
(~32k elements for element-wise kernels) opens an OpenMP parallel region and waits at its
end for all of its threads. When another process takes a core, one of those threads is
descheduled and each region waits for it: the waits add up to a 6- to 150-fold
slowdown (issue 13; measurements in ``benchmarks/contention.py``). With one intra-op
thread there are no regions and no waits, and the slowdown is what the lost CPU share
explains.

This module

* :func:`limit` (also :func:`dhtgraph.num_threads`): a context manager that sets torch's
  intra-op thread count for a block and restores it afterwards, also on error;
* :func:`choose_num_threads`: the policy. ``num_threads=None`` → torch's own setting on an
  idle machine (today's speed), lowered to the CPUs that other processes leave free at the
  time of the call (at least one), and one thread for tiny inputs; an int → exactly that;
* :func:`run_with_policy`: ``fn(images)`` under the chosen count (what the tokenizer calls);
* :func:`batch_workers` and :func:`map_chunks`: the threads spent across the images of a
  batch instead — contiguous chunks of the batch run in Python worker threads, each with
  ONE intra-op thread (no parallel regions, so no OpenMP barrier waits), while torch
  releases the GIL inside its operations.

Per-thread intra-op counts
--------------------------
``torch.set_num_threads`` is process-wide: besides the calling thread's OpenMP count it
stores the global count that every new thread copies, resizes torch's pthreadpool and
clears oneDNN's primitive cache. What torch actually consults before opening a parallel
region is ``at::get_num_threads()``, which with the OpenMP backend is
``omp_get_max_threads()`` *of the calling thread* (an OpenMP per-thread setting). A
Python thread started after import runs its operations with the global count (2 on a
2-core machine: measured, not single-threaded). The workers of :func:`map_chunks` set
only their own OpenMP count, through the OpenMP runtime torch loaded
(``omp_set_num_threads`` via ``ctypes``), and restore it after each chunk: nothing
process-wide changes. Where that runtime cannot be found or torch does not follow it
(another parallel backend), :func:`batch_workers` returns 1 and the batch runs as one call.

Nothing here changes a process-wide setting that outlives the call: the count torch
reports after a call is the count it reported before. Environment variables
(``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY``) are read by the OpenMP runtime when torch is
imported and are never set here.

Tokens do not depend on the thread count (tested): the policy only changes speed.
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, TypeVar

import torch

from ._checks import check_count

__all__ = ["limit", "num_threads", "choose_num_threads", "run_with_policy", "busy_cpus",
           "available_cpus", "batch_workers", "map_chunks", "per_thread_control",
           "SMALL_INPUT_PIXELS"]

T = TypeVar("T")

#: Inputs with fewer pixels than this per call (B·H·W) run on one intra-op thread under
#: the default policy. torch's element-wise kernels split work only above 32768 elements
#: (its grain size), and most of a call's ops work on blocks, not pixels (a 224² image has
#: ~14k blocks after the first level), so a second thread has little to split and its
#: barrier waits can cost more than it gains. Measured on an idle 2-core machine: the
#: eight 224² photographs took a median 66 ms with 1 thread and 64 ms with 2 (48 calls
#: each, interleaved), ``benchmarks/contention.py``'s 224² image 73 and 117 ms; one 1024²
#: image 821 and 716 ms. Under load one thread is far better (see the contention table).
SMALL_INPUT_PIXELS = 1 << 17

#: Where Linux publishes the number of runnable tasks (4th field "running/total").
_LOADAVG = "/proc/loadavg"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable) right now."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        # "pid (comm) S ...": the state follows the last ')' (comm may contain spaces).
        if stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] == b"R":
            count += 1
    return max(count, 1)


def busy_cpus() -> Optional[int]:
    """How many CPUs other processes keep busy right now, or None where unknown.

    Linux's count of runnable tasks (``/proc/loadavg``) minus this process's own running
    threads. It is a snapshot: a task that runs in short bursts may be missed, one that is
    about to sleep may be counted. Inside a container the count may be the host's.
    """
    running = _runnable_tasks()
    return None if running is None else max(running - _own_running_threads(), 0)


def _runnable_tasks() -> Optional[int]:
    """Runnable tasks on the machine (this process's included), or None where unknown."""
    try:
        with open(_LOADAVG) as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _check_num_threads(value: Any) -> Optional[int]:
    return check_count(value, "num_threads", minimum=1, or_none=True)


@contextmanager
def limit(num_threads: int) -> Iterator[int]:
    """Run a block with ``num_threads`` torch intra-op threads; restore the count after.

    Parameters
    ----------
    num_threads : int
        Intra-op threads for the block (≥ 1); may be more than the current setting.

    Yields
    ------
    int
        The count in force inside the block.

    Notes
    -----
    torch's thread count is per process (``torch.set_num_threads``): other Python threads
    that start torch work while the block runs can see it. The count is restored on exit,
    also when the block raises; nothing is changed when it already equals ``num_threads``.
    Inter-op threads, MKL's own environment and OpenMP environment variables are left
    alone.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with limit(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    num_threads = check_count(num_threads, "num_threads", minimum=1)
    before = torch.get_num_threads()
    if num_threads == before:
        yield num_threads
        return
    torch.set_num_threads(num_threads)
    try:
        yield num_threads
    finally:
        torch.set_num_threads(before)


#: The public alias: ``with dhtgraph.num_threads(1): ...``.
num_threads = limit


def choose_num_threads(pixels: int, num_threads: Optional[int] = None, *,
                       busy: Optional[int] = -1) -> int:
    """The intra-op thread count the tokenizer uses for one call.

    Parameters
    ----------
    pixels : int
        B·H·W of the call.
    num_threads : int or None
        An int is used as given. None (the default policy): torch's current count
        (``torch.get_num_threads()``, which ``OMP_NUM_THREADS``, ``torch.set_num_threads``,
        DataLoader workers and torchrun set), lowered to one thread when the input has
        fewer than :data:`SMALL_INPUT_PIXELS` pixels, and to the CPUs that other
        processes leave free (:func:`busy_cpus`, at least one).
    busy : int or None, optional
        CPUs busy with other work (default: measured now with :func:`busy_cpus`; None
        means unknown, i.e. no lowering for load).

    Returns
    -------
    int
        ≥ 1.

    Raises
    ------
    TypeError, ValueError
        If ``num_threads`` is not None or a positive int, or ``pixels`` is negative.
    """
    pixels = check_count(pixels, "pixels")
    requested = _check_num_threads(num_threads)
    if requested is not None:
        return requested
    current = torch.get_num_threads()
    if current == 1 or pixels < SMALL_INPUT_PIXELS:
        return 1
    cpus = available_cpus()
    if busy == -1:
        running = _runnable_tasks()
        if running is None or running - 1 <= cpus - current:
            return current  # at most running − 1 others: enough free CPUs (no thread scan)
        busy = max(running - _own_running_threads(), 0)
    if busy is None:
        return current
    return max(1, min(current, cpus - busy))


def run_with_policy(fn: Callable[[Any], T], images: Any, num_threads: Optional[int] = None
                    ) -> T:
    """``fn(images)`` with the intra-op thread count of :func:`choose_num_threads`.

    Parameters
    ----------
    fn : callable
        Called once, with ``images``.
    images : Tensor of shape (B, C, H, W) or (C, H, W)
        Only its shape is read here (B·H·W pixels).
    num_threads : int or None
        See :func:`choose_num_threads`.

    Returns
    -------
    What ``fn`` returns. torch's thread count is what it was before, also if ``fn`` raises.
    With ``num_threads=None`` and images on another device than the CPU (CUDA), ``fn`` runs
    with the thread count left as it is.
    """
    shape = tuple(images.shape)
    device = getattr(images, "device", None)
    if num_threads is None and device is not None and device.type != "cpu":
        return fn(images)  # the work runs on the device: no reason to touch CPU threads
    if len(shape) not in (3, 4):
        raise ValueError(f"Expected 'images' to have 3 or 4 dimensions (got {len(shape)})")
    pixels = shape[-1] * shape[-2] * (shape[0] if len(shape) == 4 else 1)
    with limit(choose_num_threads(pixels, num_threads)):
        return fn(images)


# ---------------------------------------------------------------- threads across a batch
#: File-name prefixes of the OpenMP runtimes torch may be linked with (GNU, Intel, LLVM).
_OPENMP_LIBRARIES = ("libgomp", "libiomp5", "libomp")

_lock = threading.Lock()
_openmp: dict = {}  # "lib": the ctypes handle or None, "ok": per-thread control works
_executor: dict = {}  # "pool": ThreadPoolExecutor, "pid": the process that made it


def _find_openmp() -> Optional[ctypes.CDLL]:
    """The OpenMP runtime torch loaded (preferring the one in torch's own folder)."""
    candidates = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if os.path.basename(path).startswith(_OPENMP_LIBRARIES) and path not in candidates:
                    candidates.append(path)
    except OSError:
        pass
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    candidates.sort(key=lambda path: not path.startswith(torch_lib))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.omp_set_num_threads, lib.omp_get_max_threads  # noqa: B018 (the symbols exist)
            return lib
        except (OSError, AttributeError):
            continue
    try:  # the global namespace (torch loads its runtime globally)
        lib = ctypes.CDLL(None)
        lib.omp_set_num_threads, lib.omp_get_max_threads  # noqa: B018
        return lib
    except (OSError, AttributeError, TypeError):
        return None


def _probe() -> bool:
    """In a throwaway thread: does one OpenMP call make ``torch.get_num_threads()`` 1?"""
    lib = _find_openmp()
    _openmp["lib"] = lib
    if lib is None:
        return False
    seen: list = []

    def check() -> None:
        torch.get_num_threads()  # torch's lazy per-thread initialisation first
        before = lib.omp_get_max_threads()
        lib.omp_set_num_threads(1)
        seen.append(torch.get_num_threads())
        lib.omp_set_num_threads(before)
        seen.append(torch.get_num_threads() == before)

    thread = threading.Thread(target=check, name="dhtgraph-probe")
    thread.start()
    thread.join()
    return seen == [1, True]


def per_thread_control() -> bool:
    """Whether a thread can run torch with one intra-op thread without touching the others.

    True with torch's OpenMP backend when its runtime is found (probed once, in a
    throwaway thread; cached).
    """
    with _lock:
        if "ok" not in _openmp:
            _openmp["ok"] = _probe()
        return _openmp["ok"]


@contextmanager
def _single_intra_op_thread() -> Iterator[None]:
    """This thread (only) runs torch operations with one intra-op thread; restored after."""
    lib = _openmp["lib"]
    torch.get_num_threads()  # lazy init first: it would overwrite the count set below
    before = lib.omp_get_max_threads()
    lib.omp_set_num_threads(1)
    try:
        yield
    finally:
        lib.omp_set_num_threads(before)


def _pool() -> ThreadPoolExecutor:
    """The process's worker threads (one per available CPU; made again after a fork)."""
    with _lock:
        if _executor.get("pid") != os.getpid():
            # After fork the parent's threads do not exist in the child: start afresh.
            _executor["pool"] = ThreadPoolExecutor(max_workers=available_cpus(),
                                                   thread_name_prefix="dhtgraph-batch")
            _executor["pid"] = os.getpid()
        return _executor["pool"]


def batch_workers(num_images: int, pixels: int, num_threads: Optional[int] = None) -> int:
    """How many worker threads :func:`map_chunks` should spread a CPU batch over.

    Parameters
    ----------
    num_images : int
        B.
    pixels : int
        B·H·W.
    num_threads : int or None
        An int: that many workers. None: torch's current count, or 1 for inputs under
        :data:`SMALL_INPUT_PIXELS` pixels. Not lowered for load, unlike
        :func:`choose_num_threads`: a worker thread with one intra-op thread has no
        parallel region to wait in, so a descheduled worker delays only its own chunk
        (measured in ``benchmarks/contention.py``: the pool beat one thread under load).

    Returns
    -------
    int
        ``min(count, B, available CPUs)``, or 1 when per-thread control is unavailable
        (:func:`per_thread_control`). 1 means: one call, no pool.
    """
    num_images = check_count(num_images, "num_images")
    pixels = check_count(pixels, "pixels")
    requested = _check_num_threads(num_threads)
    if requested is None:
        requested = 1 if pixels < SMALL_INPUT_PIXELS else torch.get_num_threads()
    workers = min(requested, num_images, available_cpus())
    if workers < 2 or not per_thread_control():
        return 1
    return workers


def map_chunks(fn: Callable[[Any], T], images: torch.Tensor, workers: int) -> List[T]:
    """``fn`` on ``workers`` contiguous chunks of the batch, each in a worker thread.

    Parameters
    ----------
    fn : callable
        Called once per chunk, with a (b, C, H, W) slice of ``images``; must not need
        gradients (it runs under ``torch.no_grad()``, or ``torch.inference_mode()`` when the
        caller is in inference mode).
    images : Tensor of shape (B, C, H, W)
        Split with ``torch.tensor_split`` into ``workers`` chunks (sizes differ by at most 1).
    workers : int
        ≥ 1, at most B.

    Returns
    -------
    list
        ``fn``'s results in batch order. An exception raised by ``fn`` is raised here (after
        every chunk has finished).

    Notes
    -----
    Each worker runs with one intra-op thread of its own (the OpenMP count of that thread
    only, restored after the chunk); the calling thread's count and torch's process-wide
    settings are not changed. The worker threads are kept for the next call (one per
    available CPU at most, idle between calls).
    """
    workers = check_count(workers, "workers", minimum=1)
    if workers > images.shape[0]:
        raise ValueError(f"Expected 'workers' to be at most the batch size {images.shape[0]} "
                         f"(got {workers})")
    if not per_thread_control():
        raise RuntimeError("map_chunks needs per-thread intra-op control (torch's OpenMP "
                           "runtime was not found); check dhtgraph.threads.per_thread_control()")
    inference = torch.is_inference_mode_enabled()

    def run(chunk: torch.Tensor) -> T:
        with _single_intra_op_thread(), (torch.inference_mode() if inference
                                         else torch.no_grad()):
            return fn(chunk)

    futures = [_pool().submit(run, chunk) for chunk in torch.tensor_split(images, workers)]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
