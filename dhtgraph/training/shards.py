"""Offline tokenization into safetensors shards, and a Dataset that reads them back.

``write_shards`` splits the sorted image list of a folder into shards of
``shard_size`` images; shard ``i`` belongs to rank ``i mod world_size``, so under
``torchrun`` every image is tokenized by exactly one process and the assignment depends
only on the file list (not on timing). Each shard ``shard-00007.safetensors`` holds per
image ``image.j`` (uint8 (C, H, W): exactly the pixels the tokens were computed on),
``tokens.j`` (int32 (H, W): ``tokens.labels()``, the token of every pixel) and, when the
folder has labels, ``target.j`` (int64 (): the class, or int32 (H, W): the mask). Beside
it ``shard-00007.json`` records its size, SHA-256 and a fingerprint of the job (file
list, options), written after the shard is complete. ``write_index`` merges these into
``index.json`` once every shard is done.

A restart skips every shard whose record matches the job and whose file still has the
recorded size and hash; a missing, truncated or otherwise changed shard is written
again. :class:`ShardDataset` checks every file's size when it opens an index and its
hash the first time it reads a shard, so a damaged shard is an error, never data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
from torch.utils.data import Dataset

from .._checks import check_count
from .data import ClassificationFolder, SegmentationFolder, find_images, load_image, load_mask

__all__ = ["Layout", "ShardPlan", "ShardReport", "plan_shards", "write_shards", "write_index",
           "ShardDataset", "INDEX_NAME", "file_sha256"]

Layout = Literal["auto", "classification", "segmentation", "images"]
_LAYOUTS = ("auto", "classification", "segmentation", "images")
#: The index file written by :func:`write_index`.
INDEX_NAME = "index.json"
_FORMAT = "dhtgraph-shards/1"
#: Images per shard by default: a few MB per shard at 224² (one file per ~256 images
#: keeps the file count low and a lost shard cheap to redo).
DEFAULT_SHARD_SIZE = 256
_HASH_CHUNK = 1 << 20


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardPlan:
    """The job: which images, in which shard, with which options.

    Attributes
    ----------
    root : Path
    layout : {'classification', 'segmentation', 'images'}
    items : list of (str, int or str or None)
        Image path relative to ``root`` and its label: class index, mask path relative
        to ``root``, or None.
    classes : list of str or None
    shard_size : int
    options : dict
        ``max_tokens``, ``image_size``, ``ignore_index`` and the tokenize options.
    max_label : int or None
        Largest mask label (segmentation).
    """

    root: Path
    layout: str
    items: list
    classes: Optional[list]
    shard_size: int
    options: dict
    max_label: Optional[int] = None
    fingerprint: str = field(init=False)

    def __post_init__(self):
        blob = json.dumps({"layout": self.layout, "items": self.items, "classes": self.classes,
                           "shard_size": self.shard_size, "options": self.options},
                          sort_keys=True)
        object.__setattr__(self, "fingerprint", hashlib.sha256(blob.encode()).hexdigest())

    @property
    def num_shards(self) -> int:
        return -(-len(self.items) // self.shard_size)

    def shard_items(self, shard: int) -> list:
        return self.items[shard * self.shard_size:(shard + 1) * self.shard_size]

    def shards_of(self, rank: int, world_size: int) -> list[int]:
        """The shards rank ``rank`` of ``world_size`` writes: ``rank, rank + world_size, …``."""
        return list(range(rank, self.num_shards, world_size))


@dataclass(frozen=True)
class ShardReport:
    """What :func:`write_shards` did on this rank: shard numbers written and skipped,
    images tokenized, seconds spent (reading, tokenizing and writing; hashing included)."""

    written: list
    skipped: list
    images: int
    seconds: float = 0.0


def _detect_layout(root: Path) -> str:
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "segmentation"
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in
             (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")]
    if folders and loose:
        raise ValueError(f"Expected 'image_dir' {str(root)!r} to hold either class sub-folders or "
                         f"image files, not both (got {len(folders)} folder(s) and {len(loose)} "
                         "image file(s)); pass layout='classification' or 'images'")
    return "classification" if folders else "images"


def plan_shards(image_dir, *, shard_size: int = DEFAULT_SHARD_SIZE, layout: Layout = "auto",
                max_tokens: Optional[int] = None, image_size: Optional[int] = None,
                ignore_index: int = 255, options: Optional[dict] = None) -> ShardPlan:
    """Check the folder (as the training data sets do) and lay out the shards.

    Raises
    ------
    ValueError
        For the data errors of :class:`ClassificationFolder` / :class:`SegmentationFolder`,
        an empty folder, or an ambiguous layout.
    """
    from ..nn.tokenizer import check_config_options

    root = Path(image_dir)
    if not root.is_dir():
        raise ValueError(f"Expected 'image_dir' to be a directory (got {str(root)!r})")
    if layout not in _LAYOUTS:
        raise ValueError(f"Expected 'layout' to be one of {_LAYOUTS} (got {layout!r})")
    shard_size = check_count(shard_size, "shard_size", minimum=1)
    max_tokens = check_count(max_tokens, "max_tokens", minimum=1, or_none=True)
    options = dict(options or {})
    check_config_options(options, "tokenize")
    if layout == "auto":
        layout = _detect_layout(root)
    classes, max_label = None, None
    if layout == "classification":
        data = ClassificationFolder(root, image_size)
        classes = data.classes
        items = [(str(p.relative_to(root)), label) for p, label in data.samples]
    elif layout == "segmentation":
        data = SegmentationFolder(root, image_size, ignore_index)
        items = [(str(p.relative_to(root)), str(m.relative_to(root))) for p, m in data.samples]
        max_label = data.max_label
    else:
        found = find_images(root)
        if not found:
            raise ValueError(f"Expected 'image_dir' {str(root)!r} to hold image files (got none)")
        items = [(str(p.relative_to(root)), None) for p in found]
    settings = {"max_tokens": max_tokens, "image_size": image_size, "ignore_index": ignore_index,
                "tokenize": options}
    return ShardPlan(root=root, layout=layout, items=items, classes=classes, shard_size=shard_size,
                     options=settings, max_label=max_label)


def _record_path(out: Path, shard: int) -> Path:
    return out / f"shard-{shard:05d}.json"


def _shard_path(out: Path, shard: int) -> Path:
    return out / f"shard-{shard:05d}.safetensors"


def _is_done(out: Path, shard: int, plan: ShardPlan) -> bool:
    record = _record_path(out, shard)
    path = _shard_path(out, shard)
    if not record.is_file() or not path.is_file():
        return False
    try:
        entry = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return (entry.get("fingerprint") == plan.fingerprint
            and entry.get("bytes") == path.stat().st_size
            and entry.get("sha256") == file_sha256(path))


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _tokenize_item(plan: ShardPlan, item, device) -> dict:
    from ..tokenize import tokenize

    relative, label = item
    size = plan.options["image_size"]
    image = load_image(plan.root / relative, size)
    pixels = (image * 255).round().to(torch.uint8)
    tokens = tokenize((pixels.float() / 255)[None].to(device), plan.options["max_tokens"],
                      **plan.options["tokenize"])
    out = {"image": pixels, "tokens": tokens.labels()[0].to("cpu", torch.int32)}
    if plan.layout == "classification":
        out["target"] = torch.tensor(label, dtype=torch.int64)
    elif plan.layout == "segmentation":
        out["target"] = load_mask(plan.root / label, size).to(torch.int32)
    return out


def write_shards(plan: ShardPlan, out, *, rank: int = 0, world_size: int = 1, device="cpu",
                 progress: bool = False) -> ShardReport:
    """Tokenize and write this rank's shards of ``plan`` into ``out``, skipping finished ones.

    Parameters
    ----------
    plan : ShardPlan
        From :func:`plan_shards` (every rank computes the same plan).
    out : path
        Output directory (created).
    rank, world_size : int
        This process among ``world_size``; shard ``i`` is written by rank ``i mod world_size``.
    device : str or torch.device
        Where to tokenize.

    Returns
    -------
    ShardReport
    """
    from safetensors.torch import save_file

    world_size = check_count(world_size, "world_size", minimum=1)
    rank = check_count(rank, "rank")
    if rank >= world_size:
        raise ValueError(f"Expected 'rank' in 0..{world_size - 1} (got {rank})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mine = plan.shards_of(rank, world_size)
    written, skipped, images = [], [], 0
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(plan.shard_items(s)) for s in mine), desc=f"shards[{rank}]",
                   unit="image")
    try:
        for shard in mine:
            items = plan.shard_items(shard)
            if _is_done(out, shard, plan):
                skipped.append(shard)
                if bar is not None:
                    bar.update(len(items))
                continue
            tensors, num_tokens = {}, []
            for j, item in enumerate(items):
                sample = _tokenize_item(plan, item, device)
                for key, value in sample.items():
                    tensors[f"{key}.{j}"] = value.contiguous()
                num_tokens.append(int(sample["tokens"].max()) + 1)
                images += 1
                if bar is not None:
                    bar.update(1)
            path = _shard_path(out, shard)
            metadata = {"format": _FORMAT, "items": json.dumps([i[0] for i in items])}
            _write_atomic(path, lambda p: save_file(tensors, str(p), metadata=metadata))
            record = {"shard": shard, "file": path.name, "bytes": path.stat().st_size,
                      "sha256": file_sha256(path), "fingerprint": plan.fingerprint,
                      "items": [i[0] for i in items], "num_tokens": num_tokens}
            _write_atomic(_record_path(out, shard), lambda p: p.write_text(json.dumps(record)))
            written.append(shard)
    finally:
        if bar is not None:
            bar.close()
    return ShardReport(written=written, skipped=skipped, images=images,
                       seconds=time.perf_counter() - started)


def write_index(plan: ShardPlan, out) -> Path:
    """Merge the shard records into ``out/index.json`` (after every rank has finished).

    Raises
    ------
    ValueError
        If a shard is missing or was written for another job.
    """
    out = Path(out)
    shards = []
    for shard in range(plan.num_shards):
        record = _record_path(out, shard)
        entry = json.loads(record.read_text()) if record.is_file() else None
        if entry is None or entry.get("fingerprint") != plan.fingerprint:
            raise ValueError(f"Expected shard {shard} of {plan.num_shards} in {str(out)!r} to be "
                             f"finished for this job (got {'none' if entry is None else 'one of another job'}"
                             "); run the same command again to complete it")
        shards.append({k: entry[k] for k in ("file", "bytes", "sha256", "items", "num_tokens")})
    index = {"format": _FORMAT, "source": str(plan.root), "layout": plan.layout,
             "classes": plan.classes, "max_label": plan.max_label,
             "num_samples": len(plan.items), "shard_size": plan.shard_size,
             "options": plan.options, "fingerprint": plan.fingerprint, "shards": shards}
    path = out / INDEX_NAME
    _write_atomic(path, lambda p: p.write_text(json.dumps(index, indent=1)))
    return path


class ShardDataset(Dataset):
    """Samples read back from shards, tokens included (no tokenization at training time).

    Parameters
    ----------
    path : path
        The shard directory or its ``index.json``.
    verify : {'hash', 'size'}, default 'hash'
        Every shard's size is checked on construction; with 'hash' its SHA-256 is also
        checked the first time the shard is read (once per process).

    Samples are ``{'image': float (C, H, W) in [0, 1], 'tokens': LongTensor (H, W),
    'target': LongTensor () or (H, W), 'index': int}`` (no 'target' for an unlabelled
    folder).

    Raises
    ------
    ValueError
        For a missing or foreign index, or a shard file that is missing, truncated or
        changed (naming the file).
    """

    def __init__(self, path, verify: Literal["hash", "size"] = "hash"):
        path = Path(path)
        index_path = path / INDEX_NAME if path.is_dir() else path
        if not index_path.is_file():
            raise ValueError(f"Expected 'path' to be a shard directory holding {INDEX_NAME} or the "
                             f"index file itself (got {str(path)!r}); write it with "
                             "dhtgraph tokenize-shards")
        try:
            index = json.loads(index_path.read_text())
        except ValueError as exc:
            raise ValueError(f"Expected {str(index_path)!r} to be a JSON shard index ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != _FORMAT:
            raise ValueError(f"Expected {str(index_path)!r} to be a {_FORMAT!r} index (got format "
                             f"{index.get('format') if isinstance(index, dict) else None!r})")
        if verify not in ("hash", "size"):
            raise ValueError(f"Expected 'verify' to be 'hash' or 'size' (got {verify!r})")
        self.directory = index_path.parent
        self.index = index
        self.verify = verify
        self.classes = index["classes"]
        self.layout = index["layout"]
        self.task = {"images": "unlabelled"}.get(self.layout, self.layout)
        self.ignore_index = index["options"]["ignore_index"]
        side = index["options"]["image_size"]
        #: (H, W) of every sample when the shards were written with an image size, else None.
        self.size = (side, side) if side is not None else None
        self._starts, total = [], 0
        for entry in index["shards"]:
            self._check_size(entry)
            self._starts.append(total)
            total += len(entry["items"])
        if total != index["num_samples"]:
            raise ValueError(f"Expected the shards of {str(index_path)!r} to hold "
                             f"{index['num_samples']} samples (got {total})")
        self._len = total
        self._handles: dict[int, object] = {}

    def _check_size(self, entry: dict) -> None:
        path = self.directory / entry["file"]
        size = path.stat().st_size if path.is_file() else None
        if size != entry["bytes"]:
            raise ValueError(f"Expected shard {str(path)!r} to have {entry['bytes']} bytes as its "
                             f"index records (got {'no file' if size is None else size}): it is "
                             "truncated or was replaced; run tokenize-shards again to rewrite it")

    def _handle(self, shard: int):
        handle = self._handles.get(shard)
        if handle is None:
            from safetensors import safe_open

            entry = self.index["shards"][shard]
            path = self.directory / entry["file"]
            self._check_size(entry)
            if self.verify == "hash" and file_sha256(path) != entry["sha256"]:
                raise ValueError(f"Expected shard {str(path)!r} to have SHA-256 {entry['sha256']} as "
                                 "its index records (got another): it is corrupt; run "
                                 "tokenize-shards again to rewrite it")
            handle = self._handles[shard] = safe_open(str(path), framework="pt")
        return handle

    def __getstate__(self):  # DataLoader workers open their own handles
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    @property
    def num_classes(self) -> int:
        if self.layout == "classification":
            return len(self.classes)
        return (self.index["max_label"] or -1) + 1

    def check_num_classes(self, num_classes: int) -> None:
        """Raise ValueError if a label is out of range for a head of ``num_classes``."""
        if self.layout != "images" and self.num_classes > num_classes:
            raise ValueError(f"Expected labels in 0..{num_classes - 1} (the model's num_classes; "
                             f"got labels up to {self.num_classes - 1} in the shards of "
                             f"{str(self.directory)!r})")

    def __len__(self) -> int:
        return self._len

    def locate(self, index: int) -> tuple[int, int]:
        """(shard, position in shard) of sample ``index``."""
        import bisect

        if not 0 <= index < self._len:
            raise IndexError(f"Expected 'index' in 0..{self._len - 1} (got {index})")
        shard = bisect.bisect_right(self._starts, index) - 1
        return shard, index - self._starts[shard]

    def __getitem__(self, index: int) -> dict:
        shard, j = self.locate(index)
        handle = self._handle(shard)
        sample = {"image": handle.get_tensor(f"image.{j}").float() / 255,
                  "tokens": handle.get_tensor(f"tokens.{j}").long(), "index": index}
        if self.layout != "images":
            sample["target"] = handle.get_tensor(f"target.{j}").long()
        return sample
