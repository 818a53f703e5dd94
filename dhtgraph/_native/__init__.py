"""Optional native kernels: the discrete steps of a level in one C pass each (issue 15).

A contraction level in tensor operations makes many passes over its edge list (gathers,
sorts, scatter reductions), each a separate kernel with its own temporaries. The
*discrete* steps — choices, components, edge coalescing, boxes — are integer work whose
result is exact, so a single C loop gives bit-for-bit the same tensors in one pass. The C
sources ship with the package (``dhtgraph/_native/*.c``); the first call compiles them
with the system C compiler into a private cache and loads the library with ``ctypes``
(calls release the GIL, so the batch workers of :mod:`dhtgraph.threads` run them in
parallel). Floating-point work moves to C only where the result is exact in torch's
order and dtype — elementwise + − × ÷ √, comparisons, quantisation, sums accumulated in
index order as torch's CPU ``index_add_`` does — and only without a recorded gradient;
exp, log, products and sums over channels stay in torch.

Where no compiler is found, or for tensors that are not on the CPU, every caller uses
its tensor implementation: the same values (the tests compare both paths), only slower.

Environment
-----------
``DHTGRAPH_NATIVE``
    ``auto`` (default): use the kernels when they compile; ``off``: never (the tensor
    implementation everywhere); ``on``: require them (an error when they cannot be built).
``DHTGRAPH_CACHE_DIR``
    Where the compiled library is kept (default ``$XDG_CACHE_HOME/dhtgraph`` or
    ``~/.cache/dhtgraph``); the file name holds a hash of the sources, compiler and flags.
``CC``
    The C compiler (default: ``cc``, then ``gcc``, then ``clang`` on the ``PATH``).

The library is compiled with ``-O3 -ffp-contract=off`` and no ``-ffast-math``, and is
only loaded from a directory owned by the user and not writable by others.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch import Tensor

from .._checks import is_integer_dtype

__all__ = ["ENV", "MODES", "mode", "library", "available", "enabled", "disabled", "status",
           "pointer", "address", "function", "kernel_sets", "as_index", "as_indices", "rows",
           "expect_shape", "I64", "PTR", "F32", "F64"]

#: ctypes argument types of the kernels (every index and count is int64).
I64, PTR, F32, F64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float, ctypes.c_double
#: The range of an int64 kernel argument.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

ENV = "DHTGRAPH_NATIVE"
MODES = ("auto", "on", "off")
_FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
_SOURCE_DIR = Path(__file__).resolve().parent

_lock = threading.Lock()
_state: dict = {}  # kernel set -> (CDLL or None once tried, why it is None)
_fallback: dict = {}  # a refused cache directory -> this process's private one
_disabled = [0]  # nesting depth of disabled() (process-wide: worker threads see it too)


# os.environ's own mapping, read without the encode/decode round trip of os.environ.get
# (mode() is asked on every native call); the public lookup when os.environ was replaced
# or has no such mapping.
_ENVIRON = os.environ
_ENV_DATA = getattr(_ENVIRON, "_data", None)
_ENV_KEY = _ENVIRON.encodekey(ENV) if hasattr(_ENVIRON, "encodekey") else None
_modes: dict = {}  # the raw DHTGRAPH_NATIVE value -> its validated mode


def _raw_setting():
    """The raw ``DHTGRAPH_NATIVE`` value (None when unset), as ``os.environ`` holds it."""
    if os.environ is _ENVIRON and _ENV_DATA is not None and _ENV_KEY is not None:
        return _ENV_DATA.get(_ENV_KEY)
    return os.environ.get(ENV)


def mode() -> str:
    """The ``DHTGRAPH_NATIVE`` setting, validated (``'auto'`` when unset).

    Read on every call (a change of the environment variable takes effect at once); the
    parsed value is cached per raw value.
    """
    raw = _raw_setting()
    value = _modes.get(raw)
    if value is None:
        text = None if raw is None else os.fsdecode(raw)
        value = (text or "auto").strip().lower() or "auto"
        if value not in MODES:
            raise ValueError(f"Expected the environment variable {ENV} to be one of "
                             f"{', '.join(map(repr, MODES))} (got {text!r})")
        _modes[raw] = value
    return value


def _compiler() -> Optional[list[str]]:
    """The compiler command (``$CC`` split like a shell word list, e.g. ``ccache gcc``)."""
    cc = shlex.split(os.environ.get("CC", ""))
    if cc:
        return [shutil.which(cc[0]) or cc[0], *cc[1:]]
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def _private_dir(path: Path) -> bool:
    """True when ``path`` is a directory of this user that others cannot write."""
    try:
        info = path.stat()
    except OSError:
        return False
    if not path.is_dir():
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    return not info.st_mode & 0o022


def _cache_dir() -> Path:
    configured = os.environ.get("DHTGRAPH_CACHE_DIR")
    if configured:
        base = Path(configured)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "dhtgraph" if xdg else Path.home() / ".cache" / "dhtgraph"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        pass
    if _private_dir(base):
        return base
    # Not ours or writable by others: one fresh private directory for this process (for
    # every kernel set), removed at exit.
    if str(base) not in _fallback:
        fallback = tempfile.mkdtemp(prefix="dhtgraph-native-")
        atexit.register(shutil.rmtree, fallback, True)
        _fallback[str(base)] = Path(fallback)
    return _fallback[str(base)]


def _build(kernels: str) -> ctypes.CDLL:
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install cc/gcc/clang)")
    source = _SOURCE_DIR / f"{kernels}.c"
    digest = hashlib.sha256()
    for part in (*cc, *_FLAGS, platform.machine(), sys.platform):
        digest.update(part.encode() + b"\0")
    # The set's source and every shared header beside it.
    for path in (source, *sorted(_SOURCE_DIR.glob("*.h"))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    suffix = ".dll" if sys.platform == "win32" else ".so"
    directory = _cache_dir()
    target = directory / f"{kernels}-{digest.hexdigest()[:20]}{suffix}"
    if not target.exists():
        fd, partial = tempfile.mkstemp(dir=directory, prefix=target.stem + ".", suffix=suffix)
        os.close(fd)
        try:
            run = subprocess.run([*cc, *_FLAGS, "-o", partial, str(source), "-lm"],
                                 capture_output=True, text=True, timeout=300)
            if run.returncode != 0:
                raise RuntimeError(f"{' '.join(cc)} failed ({run.returncode}): "
                                   f"{run.stderr.strip()[:2000]}")
            os.replace(partial, target)  # atomic: concurrent builders give the same file
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return ctypes.CDLL(str(target))


_KERNEL_SETS = tuple(sorted(path.stem for path in _SOURCE_DIR.glob("*.c")))


def kernel_sets() -> tuple[str, ...]:
    """The names of the shipped kernel sets (``<name>.c`` beside this module)."""
    return _KERNEL_SETS


def library(kernels: str) -> Optional[ctypes.CDLL]:
    """The kernel set ``kernels`` (``<kernels>.c``), compiled on first use; None when
    unavailable or turned off.

    Raises
    ------
    ValueError
        For an unknown kernel set, or an invalid ``DHTGRAPH_NATIVE``.
    RuntimeError
        With ``DHTGRAPH_NATIVE=on`` when the kernels cannot be built.
    """
    setting = mode()
    if setting != "off" and kernels in _state and _state[kernels][0] is not None:
        return _state[kernels][0]  # the common case: built (no lock)
    if kernels not in _KERNEL_SETS:
        raise ValueError(f"Expected 'kernels' to be one of {kernel_sets()} (got {kernels!r})")
    if setting == "off":
        return None
    if kernels not in _state:
        with _lock:
            if kernels not in _state:
                try:
                    _state[kernels] = (_build(kernels), "")
                except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                    _state[kernels] = (None, str(error))
                    if (_compiler() is not None and setting == "auto"
                            and not any(v[0] is None for k, v in _state.items() if k != kernels)):
                        # Once per process (the first set that fails), not once per set.
                        warnings.warn(f"dhtgraph: native kernels {kernels!r} unavailable "
                                      f"({error}); using the tensor implementation "
                                      f"(dhtgraph.native_status() tells more)",
                                      RuntimeWarning, stacklevel=2)
    lib, why = _state[kernels]
    if lib is None and setting == "on":
        raise RuntimeError(f"{ENV}=on but the native kernels {kernels!r} cannot be built: {why}")
    return lib


def available(kernels: Optional[str] = None) -> bool:
    """Whether the kernel set (every set, for None) is in use: built and not turned off."""
    names = kernel_sets() if kernels is None else (kernels,)
    return all(library(name) is not None for name in names)


def enabled(kernels: str, *tensors: Tensor) -> bool:
    """Whether a caller should take the native path of ``kernels`` for these tensors.

    True when the set is available, not suspended by :func:`disabled`, and every tensor
    is a CPU tensor (a kernel reads and writes host memory).
    """
    if _disabled[0]:
        return False
    setting = mode()  # an invalid setting is refused for every tensor
    for t in tensors:
        if not t.is_cpu:
            return False
    if setting != "off":
        built = _state.get(kernels)
        if built is not None and built[0] is not None:
            return True  # the common case: built (no lock)
    return library(kernels) is not None  # None also when turned off


@contextmanager
def disabled() -> Iterator[None]:
    """Use the tensor implementation inside the block (in every thread), e.g. to
    compare both paths."""
    with _lock:
        _disabled[0] += 1
    try:
        yield
    finally:
        with _lock:
            _disabled[0] -= 1


def status() -> str:
    """One line for diagnostics: whether the kernels are in use, and if not, why."""
    try:
        setting = mode()
    except ValueError as error:
        return str(error)
    if setting == "off":
        return f"native kernels off ({ENV}=off)"
    lines = []
    for name in kernel_sets():
        try:
            lib = library(name)
        except RuntimeError as error:
            return str(error)
        lines.append(f"{name}: in use" if lib is not None else
                     f"{name}: unavailable ({_state[name][1]})")
    line = "native kernels " + "; ".join(lines)
    for refused, used in _fallback.items():
        line += (f" (cache {refused} is not private to this user: built in {used}, "
                 "removed at exit)")
    return line


def pointer(tensor: Tensor, dtype: Optional[torch.dtype] = None) -> int:
    """The address of a contiguous CPU tensor's data (a plain int), for a kernel argument
    (ctypes passes an int for a ``c_void_p`` argument type).

    The caller must keep ``tensor`` alive until the kernel returns (pass a named tensor,
    never a temporary such as ``pointer(x.long())``). ``dtype``, when given, is checked.
    An empty tensor's address may be 0 (NULL): a kernel must not take NULL to mean "this
    optional argument is absent" for a tensor that can be empty (pass a flag instead).
    """
    if not tensor.is_cpu:
        raise ValueError(f"Expected a CPU tensor for a native kernel (got {tensor.device})")
    if not tensor.is_contiguous():
        raise ValueError("Expected a contiguous tensor for a native kernel (got strides "
                         f"{tuple(tensor.stride())} for shape {tuple(tensor.shape)})")
    if dtype is not None and tensor.dtype != dtype:
        raise ValueError(f"Expected a {dtype} tensor for a native kernel (got {tensor.dtype})")
    return tensor.data_ptr()


def is_int64(value) -> bool:
    """Whether ``value`` is a Python int (not a bool) that a kernel's int64 argument holds."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def address(tensor: Tensor) -> int:
    """The data address of a CPU tensor that a kernel reads through its strides (views
    and expanded tensors: no contiguity required, unlike :func:`pointer`). The caller
    keeps ``tensor`` alive until the kernel returns."""
    if not tensor.is_cpu:
        raise ValueError(f"Expected a CPU tensor for a native kernel (got {tensor.device})")
    return tensor.data_ptr()


def expect_shape(name: str, tensor: Tensor, shape: tuple) -> None:
    """Refuse a ``tensor`` not of ``shape`` (the kernels index by the shapes they are
    given: a mismatch would read out of bounds).

    Raises
    ------
    ValueError
        "Expected '{name}' of shape (3,) (got (4,))".
    """
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"Expected '{name}' of shape {tuple(shape)} (got {tuple(tensor.shape)})")


def as_index(tensor: Tensor, name: str) -> Tensor:
    """``tensor`` as a contiguous int64 CPU tensor for a kernel (no copy when it is one).

    Integer dtypes only: a float or bool tensor is refused (converting it would silently
    truncate where the tensor path compares values). Keep the result in a variable until
    the kernel has returned (see :func:`pointer`).
    """
    if tensor.dtype is torch.long and tensor.is_contiguous():
        return tensor
    if not is_integer_dtype(tensor.dtype):
        raise TypeError(f"Expected '{name}' to be an integer tensor (got {tensor.dtype})")
    return tensor.to(torch.long).contiguous()


def as_indices(**tensors: Tensor) -> Optional[tuple[Tensor, ...]]:
    """:func:`as_index` of every keyword tensor, or None when one is not an integer tensor
    (the caller then takes its tensor path, whose errors are the documented ones)."""
    try:
        return tuple(as_index(t, name) for name, t in tensors.items())
    except TypeError:
        return None


def rows(tensor: Tensor) -> tuple[int, ...]:
    """The addresses (ints) of the rows of a contiguous 2-d CPU tensor (no row views)."""
    first, shape = pointer(tensor), tensor.shape
    step = shape[1] * tensor.element_size()
    if step == 0:  # rows of no entries: one address
        return (first,) * shape[0]
    return tuple(range(first, first + shape[0] * step, step))


_functions: dict = {}


def function(kernels: str, name: str, restype, *argtypes):
    """The function ``name`` of the kernel set ``kernels`` with its ctypes signature
    (looked up once; call only when :func:`enabled` said so)."""
    fn = _functions.get((kernels, name))
    if fn is None:
        fn = getattr(library(kernels), name)
        fn.argtypes, fn.restype = list(argtypes), restype
        _functions[(kernels, name)] = fn
    return fn
