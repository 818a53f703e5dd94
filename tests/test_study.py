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
                         sources=("grid",), graph_bias=(False,), design="full")


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
    if source == "grid":  # the report once (matplotlib is the slow part)
        text = study.report(results, tmp_path)
        assert source in text and (tmp_path / "study_curves.png").exists()


def test_merge_of_per_seed_studies(tmp_path):
    parts = [study.run_study(replace(TINY, seeds=(s,)), None, log=lambda *a: None) for s in (0, 1)]
    merged = study.merge_results(parts, tmp_path)
    assert sorted(merged["runs"]) == ["shapes/classification/grid/nobias/0",
                                      "shapes/classification/grid/nobias/1"]
    assert merged["config"]["seeds"] == [0, 1] and (tmp_path / "study.json").exists()
    (row,) = study.summarise(merged)
    assert row["seeds"] == 2 and math.isfinite(row["std"])
    other = study.run_study(replace(TINY, seeds=(2,), steps=1), None, log=lambda *a: None)
    with pytest.raises(ValueError, match="differ only in 'seeds'"):
        study.merge_results([parts[0], other])


def test_same_seed_same_run(tmp_path):
    a = study.run_study(TINY, None, log=lambda *a: None)["runs"]
    b = study.run_study(TINY, None, log=lambda *a: None)["runs"]
    assert [r["loss"] for r in a.values()] == [r["loss"] for r in b.values()]


def test_reduced_design_cells():
    config = study.StudyConfig()
    cells = [(d, t, s, b) for d in study.DATASETS for t in study.TASKS for s in study.SOURCES
             for b in (False, True) if study.in_design(config, d, t, s, b)]
    assert len(cells) == 15  # 2 sets x 2 tasks x {grid, dht, slic}; + bias, e2e on shapes seg
    assert ("textured", "classification", "grid", True) not in cells
    assert ("shapes", "segmentation", "dht_e2e", False) in cells
    assert ("shapes", "classification", "dht", True) not in cells
    assert all(study.in_design(replace(config, design="full"), *c) for c in
               [("textured", "segmentation", "slic", True)])
    with pytest.raises(ValueError, match="Expected design one of"):
        study.in_design(replace(config, design="half"), "shapes", "classification", "grid", False)


def test_reduced_design_skips_cells(tmp_path):
    config = replace(TINY, design="reduced", sources=("slic",), graph_bias=(True,))
    assert study.run_study(config, None, log=lambda *a: None)["runs"] == {}


def test_model_input_is_per_image_normalised():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    images[1] = 0.25 * images[1] + 0.5  # other brightness and contrast
    x = study.model_input(images, "image")
    assert torch.allclose(x.mean((2, 3)), torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(x.std((1, 2, 3)), torch.ones(2), atol=0.05)
    flat = study.model_input(torch.full((1, 3, 4, 4), 0.7), "image")
    assert flat.abs().max() < 1e-5  # a flat image: centred, not blown up
    with pytest.raises(ValueError, match="Expected input_norm one of"):
        study.model_input(images, "none")
