"""Offline tokenization into shards: exact assignment by rank, read-back without
re-tokenizing, restart after a crash, damaged shards refused, training from shards."""

import json

import pytest
import torch

import dhtgraph
from dhtgraph.training import (ShardDataset, TrainConfig, plan_shards, train, write_index,
                               write_shards)
from dhtgraph.training.data import load_image


@pytest.fixture()
def plan(class_folder):
    return plan_shards(class_folder, shard_size=5, max_tokens=6)


def _written(plan, out, world_size=2):
    reports = [write_shards(plan, out, rank=r, world_size=world_size) for r in range(world_size)]
    write_index(plan, out)
    return reports


def test_ranks_cover_the_folder_exactly_once(plan, tmp_path):
    assert plan.layout == "classification" and plan.num_shards == 3  # 12 images: 5 + 5 + 2
    assert [plan.shards_of(r, 2) for r in range(2)] == [[0, 2], [1]]
    reports = _written(plan, tmp_path / "sh", world_size=2)
    assert [r.written for r in reports] == [[0, 2], [1]] and sum(r.images for r in reports) == 12
    index = json.loads((tmp_path / "sh" / "index.json").read_text())
    items = [i for shard in index["shards"] for i in shard["items"]]
    assert items == [path for path, _ in plan.items] and len(set(items)) == 12
    # the assignment depends on the file list only: three ranks split the same shards
    assert sorted(sum((plan.shards_of(r, 3) for r in range(3)), [])) == [0, 1, 2]


def test_samples_read_back_are_the_tokenized_images(plan, tmp_path):
    _written(plan, tmp_path / "sh")
    data = ShardDataset(tmp_path / "sh")
    assert len(data) == 12 and data.classes == ["a", "b", "c"] and data.task == "classification"
    for index in (0, 7, 11):
        sample = data[index]
        relative, label = plan.items[index]
        image = load_image(plan.root / relative)
        assert torch.equal(sample["image"], (image * 255).round() / 255)
        tokens = dhtgraph.tokenize(sample["image"][None], max_tokens=6).labels()[0]
        assert torch.equal(sample["tokens"], tokens) and int(sample["tokens"].max()) < 6
        assert int(sample["target"]) == label and sample["index"] == index
    with pytest.raises(IndexError, match="Expected 'index' in 0..11 \\(got 12\\)"):
        data[12]


def test_restart_skips_finished_shards_and_redoes_damaged_ones(plan, tmp_path):
    out = tmp_path / "sh"
    write_shards(plan, out, rank=0, world_size=2)  # rank 1 "crashed": shard 1 missing
    with pytest.raises(ValueError, match="Expected shard 1 of 3 .* to be finished for this job \\(got none\\)"):
        write_index(plan, out)
    again = write_shards(plan, out)  # one process now
    assert again.written == [1] and again.skipped == [0, 2]
    write_index(plan, out)
    # a shard cut short (a crash while copying, a full disk) is rewritten, the rest kept
    path = out / "shard-00002.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    assert write_shards(plan, out).written == [2]
    # other options: another job, every shard is redone
    other = plan_shards(plan.root, shard_size=5, max_tokens=4)
    assert other.fingerprint != plan.fingerprint
    assert write_shards(other, out).written == [0, 1, 2]


def test_damaged_shards_are_detected_not_read(plan, tmp_path):
    out = tmp_path / "sh"
    _written(plan, out)
    path = out / "shard-00001.safetensors"
    original = path.read_bytes()
    path.write_bytes(original[:-100])
    with pytest.raises(ValueError, match="shard-00001.safetensors' to have \\d+ bytes as its index "
                                         "records \\(got \\d+\\): it is truncated"):
        ShardDataset(out)
    flipped = bytearray(original)
    flipped[-5] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(flipped))
    data = ShardDataset(out)  # sizes agree ...
    assert data[0]["image"].shape == (3, 16, 16)  # ... shard 0 is intact
    with pytest.raises(ValueError, match="shard-00001.safetensors' to have SHA-256 .* it is corrupt"):
        data[5]
    path.unlink()
    with pytest.raises(ValueError, match="\\(got no file\\)"):
        ShardDataset(out)


def test_training_from_shards_uses_their_tokens(plan, tmp_path, tiny_net):
    _written(plan, tmp_path / "sh")
    data = ShardDataset(tmp_path / "sh")
    model = tiny_net()
    result = train(model, data, TrainConfig(steps=2, batch_size=4, progress=False))
    assert result.step == 2
    first = model.partitions[0]  # 4 images, at most 6 tokens each, from the shards
    assert first.num_items == 4 * 16 * 16 and first.num_blocks <= 24
    with pytest.raises(ValueError, match="labels in 0..1 .* got labels up to 2 in the shards"):
        train(tiny_net(num_classes=2), data, TrainConfig(steps=1, progress=False))


def test_segmentation_and_plain_folders(seg_folder, tmp_path, class_folder):
    seg = plan_shards(seg_folder, shard_size=3, max_tokens=5)
    assert seg.layout == "segmentation" and seg.max_label == 2
    write_shards(seg, tmp_path / "seg")
    write_index(seg, tmp_path / "seg")
    data = ShardDataset(tmp_path / "seg")
    assert data.task == "segmentation" and data.num_classes == 3
    assert data[1]["target"].shape == (16, 16) and int(data[1]["target"][0, 0]) == 255

    plain = plan_shards(class_folder / "a", image_size=8)
    assert plain.layout == "images" and len(plain.items) == 4
    write_shards(plain, tmp_path / "plain")
    write_index(plain, tmp_path / "plain")
    sample = ShardDataset(tmp_path / "plain")[0]
    assert "target" not in sample and sample["image"].shape == (3, 8, 8)
    assert sample["tokens"].shape == (8, 8)


def test_bad_inputs(tmp_path, class_folder):
    (class_folder / "stray.png").write_bytes((class_folder / "a" / "0.png").read_bytes())
    with pytest.raises(ValueError, match="either class sub-folders or image files, not both"):
        plan_shards(class_folder)
    with pytest.raises(ValueError, match="Expected 'layout' to be one of"):
        plan_shards(class_folder, layout="coco")
    with pytest.raises(TypeError, match="Unknown tokenize option\\(s\\) \\['iotaa'\\]"):
        plan_shards(class_folder / "a", options={"iotaa": 3})
    with pytest.raises(ValueError, match="Expected 'rank' in 0..1 \\(got 2\\)"):
        write_shards(plan_shards(class_folder / "a"), tmp_path / "x", rank=2, world_size=2)
    with pytest.raises(ValueError, match="shard directory holding index.json"):
        ShardDataset(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "webdataset"}))
    with pytest.raises(ValueError, match="to be a 'dhtgraph-shards/1' index \\(got format 'webdataset'\\)"):
        ShardDataset(tmp_path)
