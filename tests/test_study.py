"""Smoke test of the training study's functions (benchmarks/study.py) at a tiny size."""

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))  # appended: benchmarks/tokenize.py must not shadow stdlib

study = pytest.importorskip("study")

TINY = study.StudyConfig(image_size=16, patch_size=4, embed_dim=16, depth=1, num_heads=2,
                         train_images=8, test_images=4, steps=2, batch=4, eval_every=1,
                         seeds=(0,), datasets=("shapes",), tasks=("classification",),
                         sources=("grid",), graph_bias=(False,))


@pytest.mark.parametrize("name", study.DATASETS)
def test_datasets_are_seeded_and_labelled(name):
    a = study.make_dataset(name, 3, 16, start=1)
    b = study.make_dataset(name, 3, 16, start=1)
    assert torch.equal(a["images"], b["images"])
    assert a["images"].shape == (3, 3, 16, 16)
    assert 0 <= float(a["images"].min()) and float(a["images"].max()) <= 1
    assert torch.equal(a["masks"].amax((1, 2)), a["labels"] + 1)  # class + 1 on the shape
    # image i does not depend on where the set starts
    c = study.make_dataset(name, 4, 16, start=0)
    assert torch.equal(c["images"][1:], a["images"])


def test_textured_differs_from_shapes_but_keeps_the_labels():
    s, t = study.make_dataset("shapes", 2, 16), study.make_dataset("textured", 2, 16)
    assert torch.equal(s["masks"], t["masks"]) and not torch.equal(s["images"], t["images"])


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="Expected dataset one of"):
        study.make_dataset("cifar", 1, 16)


@pytest.mark.parametrize("labels_of", [study.slic_labels, study.dht_labels], ids=["slic", "dht"])
def test_token_sources_respect_the_budget(labels_of):
    images = study.make_dataset("shapes", 2, 16)["images"]
    labels = labels_of(images, 16)
    assert labels.shape == (2, 16, 16)
    for image in labels:
        values = image.unique()
        assert torch.equal(values, torch.arange(values.numel(), dtype=values.dtype))  # 0..K-1
        assert 1 <= values.numel() <= 16


def test_token_cache_round_trip(tmp_path):
    images = study.make_dataset("shapes", 2, 16)["images"]
    first = study.TokenCache(tmp_path).get("k", images, "dht", 16)
    assert (tmp_path / "k.safetensors").exists()
    again = study.TokenCache(tmp_path).get("k", images, "dht", 16)  # read from disk
    assert torch.equal(first, again)


@pytest.mark.parametrize("source,task,bias", [("grid", "classification", False),
                                              ("dht_e2e", "segmentation", True),
                                              ("slic", "classification", True)])
def test_study_runs_and_reports(tmp_path, source, task, bias):
    config = replace(TINY, sources=(source,), tasks=(task,), graph_bias=(bias,))
    results = study.run_study(config, tmp_path, cache=tmp_path / "cache", log=lambda *a: None)
    (key, run), = results["runs"].items()
    assert key == f"shapes/{task}/{source}/{'bias' if bias else 'nobias'}/0"
    assert len(run["loss"]) == 2 and all(math.isfinite(v) for v in run["loss"])
    assert [s for s, _ in run["curve"]] == [1, 2] and 0 <= run["final"] <= 1
    assert run["tokens_per_image"] <= config.budget
    again = study.run_study(config, tmp_path, resume=True, log=lambda *a: None)  # nothing to run
    assert again["runs"][key]["loss"] == run["loss"]
    text = study.report(results, tmp_path)
    assert source in text and (tmp_path / "study_curves.png").exists()


def test_same_seed_same_run(tmp_path):
    a = study.run_study(TINY, None, log=lambda *a: None)["runs"]
    b = study.run_study(TINY, None, log=lambda *a: None)["runs"]
    assert [r["loss"] for r in a.values()] == [r["loss"] for r in b.values()]
