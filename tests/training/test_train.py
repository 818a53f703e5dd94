"""``dhtgraph.training.train``: short runs for both heads, resume, checkpoints, schedule,
evaluation, sampler coverage and bad data (errors before the first step)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dhtgraph.training import (ClassificationFolder, SegmentationFolder, TrainConfig,
                               confusion_matrix, cosine_factor, cosine_schedule, epoch_indices,
                               eval_indices, latest_checkpoint, load_checkpoint, mean_iou,
                               save_checkpoint, tokens_to_partition, train)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FAST = dict(batch_size=4, lr=1e-2, progress=False, log_every=1)


def _params(model):
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("device", DEVICES)
def test_two_steps_classification(class_folder, tiny_net, tmp_path, device):
    data = ClassificationFolder(class_folder)
    assert data.classes == ["a", "b", "c"] and len(data) == 12 and data.size == (16, 16)
    model = tiny_net()
    before = _params(model)
    result = train(model, data, TrainConfig(steps=2, device=device, **FAST), out=tmp_path / "run")
    assert result.step == result.total_steps == 2
    assert any(not torch.equal(before[k], v) for k, v in _params(model).items())
    assert result.evaluation.metric == "top1" and result.evaluation.count == 12
    assert 0 <= result.evaluation.value <= 1 and np.isfinite(result.loss)
    ckpt = result.checkpoint
    assert ckpt == latest_checkpoint(tmp_path / "run") and ckpt.name == "step-00000002"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "config.json", "state.json",
                                                "state.safetensors"}
    config = json.loads((ckpt / "config.json").read_text())
    assert config["model_config"] == {"num_classes": 3, "width": 8}
    assert config["train_config"]["steps"] == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["images_per_second"] > 0 for r in log)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metric"] == "top1" and metrics["data"] == "training data"


@pytest.mark.parametrize("device", DEVICES)
def test_two_steps_segmentation(seg_folder, tiny_net, tmp_path, device):
    data = SegmentationFolder(seg_folder)
    assert data.max_label == 2 and data[0]["target"].shape == (16, 16)
    assert int(data[0]["target"][0, 0]) == 255
    result = train(tiny_net(), data, TrainConfig(task="segmentation", steps=2, device=device,
                                                 **FAST), out=tmp_path / "run", eval_data=data)
    assert result.step == 2 and result.evaluation.metric == "miou"
    assert len(result.evaluation.per_class) == 3 and 0 <= result.evaluation.value <= 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["data"] == "eval_data"


def test_resume_reproduces_the_uninterrupted_run(class_folder, tiny_net, tmp_path):
    data = ClassificationFolder(class_folder)
    # 5 steps over 12 images at batch 4: the checkpoint at step 2 is mid-epoch, the run
    # crosses an epoch boundary (new shuffle) after it; dropout draws from the RNG.
    config = TrainConfig(steps=5, checkpoint_every=2, keep_checkpoints=3, **FAST)
    whole = tiny_net()
    train(whole, data, config, out=tmp_path / "whole", evaluate_at_end=False)
    steps = sorted(p.name for p in (tmp_path / "whole" / "checkpoints").iterdir())
    assert steps == ["step-00000002", "step-00000004", "step-00000005"]

    resumed = tiny_net(seed=123)  # different initial weights: the checkpoint must replace them
    result = train(resumed, data, config, out=tmp_path / "resumed",
                   resume=tmp_path / "whole" / "checkpoints" / "step-00000002",
                   evaluate_at_end=False)
    assert result.step == 5
    for key, value in _params(whole).items():
        assert torch.equal(value, _params(resumed)[key]), key
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 4, 5]  # the step count continues
    whole_log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in whole_log[2:]] == [r["lr"] for r in log]


def test_resume_from_the_output_directory_takes_the_newest(class_folder, tiny_net, tmp_path):
    data = ClassificationFolder(class_folder)
    train(tiny_net(), data, TrainConfig(steps=2, **FAST), out=tmp_path / "run",
          evaluate_at_end=False)
    longer = TrainConfig(steps=3, **FAST)
    result = train(tiny_net(), data, longer, out=tmp_path / "run", resume=tmp_path / "run",
                   evaluate_at_end=False)
    assert result.step == 3
    with pytest.raises(ValueError, match="Expected 'resume' to be a checkpoint directory"):
        train(tiny_net(), data, longer, resume=tmp_path / "nothing-here")


def test_checkpoint_round_trip(tiny_net, tmp_path):
    model = tiny_net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    scheduler = cosine_schedule(optimizer, total_steps=10, warmup_fraction=0.2)
    for _ in range(3):
        model(torch.rand(2, 3, 8, 8)).logits.sum().backward()
        optimizer.step()
        scheduler.step()
    rng = {"cpu.0": torch.get_rng_state()}
    path = save_checkpoint(tmp_path, model, optimizer, scheduler, step=3, epoch=1,
                           train_config={"note": "x"}, rng=rng)

    other = tiny_net(seed=5)
    opt2 = torch.optim.AdamW(other.parameters(), lr=0.5)
    sched2 = cosine_schedule(opt2, total_steps=10, warmup_fraction=0.2)
    state = load_checkpoint(path, other, opt2, sched2)
    assert (state.step, state.epoch, state.world_size) == (3, 1, 1)
    assert torch.equal(state.rng["cpu.0"], rng["cpu.0"])
    assert state.config["train_config"] == {"note": "x"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key])
    a, b = optimizer.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"] and b["param_groups"][0]["betas"] == (0.8, 0.9)
    for pid, entry in a["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, b["state"][pid][key])
    assert sched2.state_dict() == scheduler.state_dict() and sched2.get_last_lr() == scheduler.get_last_lr()


def test_checkpoint_of_another_model_is_refused(tiny_net, tmp_path):
    model = tiny_net()
    optimizer = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path, model, optimizer, None, step=1, epoch=0, train_config={},
                           rng={})
    with pytest.raises(ValueError, match="to match the model"):
        load_checkpoint(path, tiny_net(num_classes=5))


def test_schedule_by_hand():
    # warm-up 2 of 6 steps: 1/2, 1; then ½(1 + cos(π t)) for t = 0, 1/4, 1/2, 3/4
    expected = [0.5, 1.0, 1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.5 * (1 + np.cos(3 * np.pi / 4))]
    assert [cosine_factor(s, 6, 2) for s in range(6)] == pytest.approx(expected)
    assert cosine_factor(4, 6, 2, min_ratio=0.2) == pytest.approx(0.2 + 0.8 * 0.5)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = cosine_schedule(optimizer, 6, warmup_fraction=1 / 3)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([2 * e for e in expected])


def test_confusion_and_miou_by_hand():
    target = torch.tensor([[0, 0, 1, 255]])
    prediction = torch.tensor([[0, 1, 1, 0]])
    c = confusion_matrix(prediction, target, 3, 255)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    value, per_class = mean_iou(c)
    # class 0: 1 / (2 + 1 − 1) = 1/2; class 1: 1 / (1 + 2 − 1) = 1/2; class 2 absent
    assert value == pytest.approx(0.5) and per_class[:2] == [0.5, 0.5] and np.isnan(per_class[2])


def test_sampler_covers_the_data_exactly_once():
    for n in (10, 12):
        ranks = [epoch_indices(n, epoch=3, rank=r, world_size=2, seed=0) for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == n // 2
        assert sorted(ranks[0] + ranks[1]) == list(range(n))
    assert epoch_indices(10, 0, 0, 2, seed=0) != epoch_indices(10, 1, 0, 2, seed=0)  # set_epoch
    assert epoch_indices(10, 1, 0, 2, seed=0) == epoch_indices(10, 1, 0, 2, seed=0)
    # 11 samples: DistributedSampler pads by repetition, so both ranks take 6 (one repeat)
    padded = epoch_indices(11, 0, 0, 2, seed=0) + epoch_indices(11, 0, 1, 2, seed=0)
    assert len(padded) == 12 and set(padded) == set(range(11))
    shares = [eval_indices(11, r, 3) for r in range(3)]
    assert sorted(sum(shares, [])) == list(range(11))


def test_tokens_to_partition_by_hand():
    tokens = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [1, 1]]])
    partition = tokens_to_partition(tokens)
    assert partition.labels.tolist() == [0, 1, 1, 2, 3, 3, 4, 4] and partition.num_blocks == 5


# ----------------------------------------------------------------------------- bad data
def _png(path, size=(16, 16), mode="RGB", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(np.full(shape, value, np.uint8), mode if mode != "RGB" else None).save(path)


def test_bad_classification_folders(tmp_path):
    with pytest.raises(ValueError, match="to be a directory .* does not exist"):
        ClassificationFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="one sub-folder per class \\(got an empty folder\\)"):
        ClassificationFolder(tmp_path / "empty")
    _png(tmp_path / "loose" / "x.png")
    with pytest.raises(ValueError, match="got 1 image file\\(s\\) directly in it, e.g. 'x.png'"):
        ClassificationFolder(tmp_path / "loose")
    _png(tmp_path / "noimg" / "a" / "x.png")
    (tmp_path / "noimg" / "b").mkdir()
    (tmp_path / "noimg" / "b" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="Expected class folder '.*b' to hold image files .* \\(got none\\)"):
        ClassificationFolder(tmp_path / "noimg")
    _png(tmp_path / "sizes" / "a" / "x.png")
    _png(tmp_path / "sizes" / "b" / "y.png", size=(20, 16))
    with pytest.raises(ValueError, match="same size \\(H, W\\) = \\(16, 16\\) .*got \\(16, 20\\)"):
        ClassificationFolder(tmp_path / "sizes")
    assert ClassificationFolder(tmp_path / "sizes", image_size=8)[1]["image"].shape == (3, 8, 8)
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="to be a readable image file"):
        ClassificationFolder(tmp_path / "broken")


def test_bad_segmentation_folders(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "images").mkdir()
    with pytest.raises(ValueError, match="hold the folders 'images' and 'masks' \\(no 'masks' folder\\)"):
        SegmentationFolder(tmp_path / "only")
    _png(tmp_path / "nomask" / "images" / "a.png")
    (tmp_path / "nomask" / "masks").mkdir()
    with pytest.raises(ValueError, match="Expected a mask .*a.png for image"):
        SegmentationFolder(tmp_path / "nomask")
    _png(tmp_path / "size" / "images" / "a.png")
    _png(tmp_path / "size" / "masks" / "a.png", size=(16, 12), mode="L")
    with pytest.raises(ValueError, match="to have the size of its image .* \\(16, 16\\) \\(got \\(12, 16\\)\\)"):
        SegmentationFolder(tmp_path / "size")
    _png(tmp_path / "rgb" / "images" / "a.png")
    _png(tmp_path / "rgb" / "masks" / "a.png")
    with pytest.raises(ValueError, match="one channel of class indices .* got mode 'RGB'"):
        SegmentationFolder(tmp_path / "rgb")
    _png(tmp_path / "extra" / "images" / "a.png")
    _png(tmp_path / "extra" / "masks" / "a.png", mode="L")
    _png(tmp_path / "extra" / "masks" / "b.png", mode="L")
    with pytest.raises(ValueError, match="an image for every mask \\(got 1 mask\\(s\\) without one"):
        SegmentationFolder(tmp_path / "extra")


def test_label_out_of_range_is_refused_before_training(tmp_path, tiny_net, class_folder):
    _png(tmp_path / "seg" / "images" / "a.png")
    _png(tmp_path / "seg" / "masks" / "a.png", mode="L", value=7)
    data = SegmentationFolder(tmp_path / "seg")
    model = tiny_net(num_classes=3)
    before = _params(model)
    with pytest.raises(ValueError, match="mask labels in 0..2 .* or 255 \\(ignore_index\\) \\(got 7 in"):
        train(model, data, TrainConfig(task="segmentation", steps=1, **FAST))
    with pytest.raises(ValueError, match="at most 2 class folders .* got 3: labels up to 2 are out of range"):
        train(tiny_net(num_classes=2), ClassificationFolder(class_folder), TrainConfig(steps=1, **FAST))
    with pytest.raises(ValueError, match="to be a classification data set \\(got a segmentation one\\)"):
        train(model, data, TrainConfig(steps=1, **FAST))
    assert all(torch.equal(before[k], v) for k, v in _params(model).items())


def test_config_errors():
    with pytest.raises(TypeError, match="Unknown TrainConfig option\\(s\\) \\['learning_rate'\\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    for bad, message in (({"task": "detection"}, "Expected 'task' to be one of"),
                         ({"lr": 0}, "Expected 'lr' to be a finite number in \\(0, inf\\) \\(got 0.0\\)"),
                         ({"batch_size": 0}, "Expected 'batch_size' to be a positive int \\(got 0\\)"),
                         ({"warmup_fraction": 1.5}, "'warmup_fraction' to be a finite number in \\[0, 1\\]"),
                         ({"betas": (0.9,)}, "Expected 'betas' to be two numbers"),
                         ({"normalize": "vgg"}, "Expected 'normalize' to be one of")):
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_dict(bad)
    with pytest.raises(TypeError, match="'progress' to be a bool"):
        TrainConfig(progress="yes")
    assert TrainConfig.from_dict(TrainConfig(lr=3e-4).to_dict()) == TrainConfig(lr=3e-4)


def test_class_255_is_a_class_not_ignored():
    from dhtgraph.training import compute_loss

    logits = torch.randn(2, 300, requires_grad=True)
    target = torch.tensor([255, 3])
    loss = compute_loss(logits, target, TrainConfig())
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, target))
    loss.backward()
    assert logits.grad[0].abs().sum() > 0  # the image labelled 255 contributes
    masks = torch.tensor([[[255, 1]]])
    dense = torch.randn(1, 3, 1, 2)
    seg = compute_loss(dense, masks, TrainConfig(task="segmentation"))
    assert torch.allclose(seg, torch.nn.functional.cross_entropy(dense[..., 1:], masks[..., 1:]))
