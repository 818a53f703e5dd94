"""``dhtgraph train`` and ``dhtgraph tokenize-shards`` with a real (tiny) DHTViT: both heads,
resume, fine-tuning the shared timm ViT, shards, usage errors (exit 2) and refused data
(exit 1), all without tracebacks."""

import json

import numpy as np
import pytest
from PIL import Image

from dhtgraph.cli import main

#: A tiny DHTViT: 16 px images, 4 px patches (16 tokens), one block; no graph bias and an
#: encoder-free tokenizer keep a step at a fraction of a second on a CPU.
TINY = json.dumps({"img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2,
                   "graph_bias": False, "tokenizer": {"encoder": "rgb"}})
QUIET = ["--no-progress", "--batch-size", "4", "--lr", "1e-2"]


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    cls = tmp_path / "cls"
    for k, name in enumerate(("cat", "dog", "eel")):
        (cls / name).mkdir(parents=True)
        for i in range(3):
            arr = np.clip(60 + 60 * k + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(cls / name / f"{i}.png")
    seg = tmp_path / "seg"
    (seg / "images").mkdir(parents=True)
    (seg / "masks").mkdir()
    for i in range(4):
        mask = np.zeros((16, 16), np.uint8)
        mask[:, 8:] = 1 + i % 2
        image = (rng.integers(0, 30, (16, 16, 3)) + mask[..., None] * 90).astype(np.uint8)
        Image.fromarray(image).save(seg / "images" / f"{i}.png")
        Image.fromarray(mask).save(seg / "masks" / f"{i}.png")
    return cls, seg


def test_classification_two_steps_then_resume(folders, tmp_path, capsys):
    cls, _ = folders
    out = tmp_path / "run"
    args = ["train", str(cls), "--task", "classification", "--out", str(out), *QUIET]
    assert main([*args, "--model-config", TINY, "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2/2 steps" in printed and "top1" in printed and "on 9 images" in printed
    config = json.loads((out / "checkpoints" / "step-00000002" / "config.json").read_text())
    assert config["model_class"] == "dhtgraph.nn.vit.DHTViT"
    assert config["model_config"]["num_classes"] == 3  # from the three class folders
    assert config["train_config"]["task"] == "classification"

    assert main([*args, "--resume", "--steps", "3"]) == 0  # newest checkpoint in --out
    assert "trained 3/3 steps" in capsys.readouterr().out
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 3]  # log_every 10: and at the last step of each run


def test_segmentation_two_steps(folders, tmp_path, capsys):
    _, seg = folders
    out = tmp_path / "run"
    status = main(["train", str(seg), "--task", "segmentation", "--out", str(out), *QUIET,
                   "--model-config", TINY, "--steps", "2", "--num-classes", "3"])
    assert status == 0, capsys.readouterr().err
    assert "miou" in capsys.readouterr().out
    config = json.loads((out / "checkpoints" / "step-00000002" / "config.json").read_text())
    assert config["model_config"]["dense"] is True  # the task turned the dense head on
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "miou" and len(metrics["per_class"]) == 3


def test_shards_then_training_on_them(folders, tmp_path, capsys):
    cls, _ = folders
    shards = tmp_path / "shards"
    args = ["tokenize-shards", str(cls), "--out", str(shards), "--shard-size", "4",
            "--max-tokens", "8", "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "9 images in 3 shard(s)" in captured.out and "wrote 3 shard(s)" in captured.err
    assert main(args) == 0
    assert "skipped 3 finished" in capsys.readouterr().err
    status = main(["train", str(shards), "--task", "classification", "--out", str(tmp_path / "r"),
                   *QUIET, "--model-config", TINY, "--steps", "2"])
    assert status == 0 and "trained 2/2 steps" in capsys.readouterr().out


@pytest.mark.shared
def test_fine_tune_the_shared_timm_vit(folders, tmp_path, shared_dir, capsys):
    cls, _ = folders
    fixture = shared_dir / "data" / "timm-vit-tiny"
    out = tmp_path / "ft"
    base = ["train", str(cls), "--task", "classification", "--out", str(out), *QUIET,
            "--from-timm", str(fixture / "weights.safetensors"),
            "--timm-config", str(fixture / "config.json"), "--steps", "1",
            "--model-config", '{"graph_bias": false, "tokenizer": {"encoder": "rgb"}}']
    assert main(base) == 2  # 16 px images, a 64 px model
    assert "the images are 16×16 but the model takes 64×64: pass --image-size 64" in capsys.readouterr().err
    assert main([*base, "--image-size", "64", "--num-classes", "3"]) == 0, capsys.readouterr().err
    assert "trained 1/1 steps" in capsys.readouterr().out
    config = json.loads((out / "checkpoints" / "step-00000001" / "config.json").read_text())
    assert config["model_config"]["embed_dim"] == 96 and config["model_config"]["num_classes"] == 3
    # the pretrained blocks moved only by one small step from the timm weights
    from safetensors.torch import load_file
    timm = load_file(str(fixture / "weights.safetensors"))
    tuned = load_file(str(out / "checkpoints" / "step-00000001" / "model.safetensors"))
    delta = (tuned["blocks.0.attn.qkv.weight"] - timm["blocks.0.attn.qkv.weight"]).abs().max()
    assert 0 < float(delta) < 0.05


def test_usage_errors_exit_2(folders, tmp_path, capsys):
    cls, _ = folders
    base = ["train", str(cls), "--task", "classification", "--out", str(tmp_path / "o")]
    cases = [
        (["--from-timm", "w.safetensors"], "--from-timm and --timm-config go together"),
        (["--config", '{"learning_rate": 1}'], "Unknown TrainConfig option(s) ['learning_rate']"),
        (["--model-config", '{"embed_dimm": 8}'], "Unknown DHTViTConfig option(s) ['embed_dimm']"),
        (["--model-config", "{not json"], "Expected '--model-config' to hold valid JSON"),
        (["--resume"], "Expected 'resume' to be a checkpoint directory"),
        (["--resume", str(tmp_path), "--model-config", TINY], "--resume restores the model"),
        (["--model-config", TINY, "--image-size", "8"], "the images are 8×8 but the model takes 16×16"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)
    for extra, message in ((["--steps", "0"], "expected a positive integer (got '0')"),
                           (["--normalize", "vgg"], "invalid choice: 'vgg'")):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *extra])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(cls), "--out", "x"])  # --task is required: no guess at the layout
    assert exit_info.value.code == 2


def test_refused_data_exits_1(folders, tmp_path, capsys):
    cls, seg = folders
    (tmp_path / "empty").mkdir()
    base = ["--out", str(tmp_path / "o"), "--model-config", TINY, "--steps", "1", "--no-progress"]
    assert main(["train", str(tmp_path / "empty"), "--task", "classification", *base]) == 1
    assert "one sub-folder per class (got an empty folder)" in capsys.readouterr().err
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(seg / "masks" / "0.png")
    assert main(["train", str(seg), "--task", "segmentation", "--num-classes", "3", *base]) == 1
    err = capsys.readouterr().err
    assert "Expected mask labels in 0..2" in err and "(got 9 in" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "checkpoints").exists()  # refused before the first step
    assert main(["tokenize-shards", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 1
    assert "to hold image files (got none)" in capsys.readouterr().err
