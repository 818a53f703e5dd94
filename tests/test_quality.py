"""Quality guard on the project's test photographs (issue 3 §3): explained variation of
``dhtgraph.tokenize`` at 400 tokens on the eight shared 224×224 reference inputs.

The goal is a mean EV ≥ 0.93 (the reference dHT gets 0.925, Felzenszwalb 0.925 and SLIC
0.874 at that count); the release measured 0.9565 (benchmarks/quality.py)."""

import numpy as np
import pytest

import dhtgraph


def test_explained_variation_at_400_tokens(shared_dir):
    files = sorted((shared_dir / "data" / "dht-reference").glob("*.npz"))
    assert len(files) == 8
    images = np.stack([np.load(f)["input"] for f in files])
    tokens = dhtgraph.tokenize(images, max_tokens=400)
    assert tokens.num_tokens.tolist() == [400] * 8
    ev = dhtgraph.explained_variation(images, tokens.partition)
    assert float(ev.mean()) >= 0.93
    assert float(ev.min()) >= 0.90
    assert float(ev.mean()) == pytest.approx(0.9565, abs=0.002)
