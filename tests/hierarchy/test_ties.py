"""The argmax tie rules: 'reference' (larger index) and 'hashed' (fixed pair hash)."""

import functools
import inspect

import pytest
import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy import build as build_module
from dhtgraph.hierarchy import PixelGrid, build_hierarchy
from dhtgraph.hierarchy.affinity import edge_affinity
from dhtgraph.hierarchy.contraction import (TIE_BREAKS, BlockState, argmax_choice, contract,
                                            equal_ends, local_index, tie_hash)
from dhtgraph.hierarchy.grid import grid_contraction, pixel_state
from dhtgraph.selection import ic_stopping, select_partition

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# A path 0 - 1 - 2 - 3 - 4 - 5 with every potential equal (both directions).
PATH = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5],
                     [1, 0, 2, 1, 3, 2, 4, 3, 5, 4]])


def test_tie_hash_is_fixed_and_symmetric():
    # Pinned values: the hash is part of the tokens' definition and must never change.
    a = torch.arange(0, 7)
    assert tie_hash(a, a + 1).tolist() == [13380, 25983, 4813, 3053, 4356, 6640, 15252]
    assert torch.equal(tie_hash(a + 1, a), tie_hash(a, a + 1))
    big = torch.tensor([2**31 - 1, 0, 123456789])
    h = tie_hash(big, big.flip(0))
    assert ((h >= 0) & (h < 2**15)).all()


@pytest.mark.parametrize("device", DEVICES)
def test_path_of_equal_potentials_by_hand(device):
    edges = PATH.to(device)
    potential = torch.full((edges.shape[1],), 0.5, device=device)
    # reference: everyone points to its larger neighbour, the path chains into one block.
    assert argmax_choice(potential, edges, 6).tolist() == [1, 2, 3, 4, 5, 4]
    # hashed, hashes of (0,1)..(4,5) = 13380, 25983, 4813, 3053, 4356:
    # 0→1; 1: 25983 (to 2) > 13380; 2: 25983 (to 1) > 4813; 3: 4813 (to 2) > 3053;
    # 4: 4356 (to 5) > 3053; 5→4. Blocks {0,1,2,3} and {4,5}.
    hashed = argmax_choice(potential, edges, 6, tie_break="hashed")
    assert hashed.tolist() == [1, 2, 1, 2, 5, 4]
    state = BlockState.from_pixels(torch.arange(6.0, device=device).unsqueeze(1),
                                   torch.zeros(6, 2, device=device), edges)
    out = contract(state, potential, weights="size", tie_break="hashed")
    assert out.partition.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert contract(state, potential, weights="size").partition.num_blocks == 1


@pytest.mark.parametrize("device", DEVICES)
def test_only_exact_ties_are_hashed(device):
    edges = PATH.to(device)
    # Node 1: edge to 0 has the higher potential although hash(1, 2) > hash(0, 1).
    potential = torch.tensor([0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], device=device)
    assert argmax_choice(potential, edges, 6, tie_break="hashed")[1].item() == 0
    # Below the 16-bit quantisation the potentials tie again and the hash decides.
    potential[:2] = 0.5 + 1e-7
    assert argmax_choice(potential, edges, 6, tie_break="hashed")[1].item() == 2


@pytest.mark.parametrize("device", DEVICES)
def test_edges_inside_plateaus_keep_the_reference_rule(device):
    edges = PATH.to(device)
    potential = torch.full((edges.shape[1],), 0.5, device=device)
    mean = torch.tensor([[0.0], [1.0], [1.0], [1.0], [2.0], [2.0]], device=device)
    # Equal ends: (1,2), (2,3) and (4,5), both directions; loops count as equal.
    assert equal_ends(mean, edges).tolist() == [False, False, True, True, True, True,
                                                False, False, True, True]
    assert equal_ends(mean, torch.tensor([[3], [3]], device=device)).tolist() == [True]
    # Keys without the hash on plateau edges (hashes as in the hand case above):
    # 0: only 1; 1: 13380 (to 0) beats 0 (to 2); 2: both 0, larger index → 3;
    # 3: 3053 (to 4) beats 0 (to 2); 4: 3053 (to 3) beats 0 (to 5); 5: only 4.
    choice = argmax_choice(potential, edges, 6, tie_break="hashed", mean=mean)
    assert choice.tolist() == [1, 0, 3, 4, 3, 4]
    state = BlockState.from_pixels(mean, torch.zeros(6, 2, device=device), edges)
    out = contract(state, potential, weights="size", tie_break="hashed")
    assert out.partition.labels.tolist() == [0, 0, 1, 1, 1, 1]
    # A constant path is one plateau: the reference chain, one block.
    same = torch.ones(6, 1, device=device)
    assert argmax_choice(potential, edges, 6, tie_break="hashed", mean=same).tolist() == \
        [1, 2, 3, 4, 5, 4]


def test_local_index_restarts_in_every_graph():
    batch = torch.tensor([0, 0, 0, 1, 3, 3])
    assert local_index(batch).tolist() == [0, 1, 2, 0, 0, 1]
    assert local_index(torch.zeros(0, dtype=torch.long)).tolist() == []


def test_unknown_tie_break_is_refused():
    edges = PATH
    potential = torch.full((edges.shape[1],), 0.5)
    for call in (lambda: argmax_choice(potential, edges, 6, tie_break="random"),
                 lambda: contract(BlockState.from_pixels(torch.zeros(6, 1), torch.zeros(6, 2),
                                                         edges), potential, tie_break="Hashed"),
                 lambda: grid_contraction(pixel_state(torch.zeros(4, 1), 1), 1, 2, 2,
                                          tie_break=None)):
        with pytest.raises(ValueError, match="Expected 'tie_break' to be one of"):
            call()
    assert TIE_BREAKS == ("reference", "hashed")


def _palette_image(h, w, seed, levels=2):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(h * w, 3, generator=g) * levels).floor() / levels)


def _levels(x, b, h, w, tie_break, count=4):
    """Choices of every level: grid level 0, then general contractions."""
    batch = torch.arange(b).repeat_interleave(h * w)
    step = grid_contraction(pixel_state(x, b, batch if b > 1 else None), b, h, w,
                            compactness=0.1, weights="size", tie_break=tie_break)
    out = [step.choice]
    state = step.state
    for _ in range(count):
        potential = edge_affinity(state.mean, state.var, state.size, state.bbox,
                                  state.edge_index, compactness=0.1)
        step = contract(state, potential, weights="size", tie_break=tie_break)
        out.append((step.choice, state.batch))
        state = step.state
    return out


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
def test_choices_do_not_depend_on_the_rest_of_the_batch(tie_break):
    h, w = 12, 10
    # A smooth ramp (exact ties everywhere) next to a two-colour palette image.
    ramp = torch.linspace(0, 1, w).repeat(h).unsqueeze(1).expand(-1, 3).contiguous()
    other = _palette_image(h, w, seed=4)
    alone = _levels(ramp, 1, h, w, tie_break)
    together = _levels(torch.cat([other, ramp]), 2, h, w, tie_break)
    n = h * w
    assert torch.equal(together[0][n:] - n, alone[0])
    for (choice_a, batch_a), (choice_t, batch_t) in zip(alone[1:], together[1:]):
        mine = batch_t == 1
        offset = int((~mine).sum())
        assert torch.equal(choice_t[mine] - offset, choice_a)


def _hierarchy(image, tie_break, iota=10.0):
    """build_hierarchy + select_partition with the recommended settings and a tie rule."""
    h, w, _ = image.shape
    x = image.reshape(h * w, 3) * 10.0
    kwargs = dict(compactness=0.01, weights="size", stop=ic_stopping("aicc", iota))
    if "tie_break" in inspect.signature(build_hierarchy).parameters:
        built = build_hierarchy(x, PixelGrid(1, h, w), tie_break=tie_break, **kwargs)
    else:
        # build_hierarchy has no tie_break yet: run it with the contraction calls bound.
        saved = build_module.contract, build_module.grid_contraction
        try:
            build_module.contract = functools.partial(saved[0], tie_break=tie_break)
            build_module.grid_contraction = functools.partial(saved[1], tie_break=tie_break)
            built = build_hierarchy(x, PixelGrid(1, h, w), **kwargs)
        finally:
            build_module.contract, build_module.grid_contraction = saved
    return select_partition(built, "aicc", iota).partition


def _ramp(h, w):
    return torch.linspace(0, 1, w).view(1, w, 1).expand(h, w, 3)


def test_ramp_and_gradient_no_longer_collapse():
    h = w = 64
    ramp = _ramp(h, w)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    gradient = torch.stack([xx, yy, torch.zeros_like(xx)], -1)
    # reference: the ramp is one token per column, the gradient one token.
    columns = _hierarchy(ramp, "reference")
    assert columns.num_blocks == w
    assert torch.equal(columns.labels.view(h, w), columns.labels.view(h, w)[:1].expand(h, w))
    assert _hierarchy(gradient, "reference").num_blocks == 1
    # hashed: the gradient gives compact blocks of about the criterion's preferred size.
    labels = _hierarchy(gradient, "hashed").labels.view(h, w)
    k = int(labels.max()) + 1
    assert 30 <= k <= 300, k
    rows = torch.stack([(labels == b).any(1).sum() for b in range(k)])
    cols = torch.stack([(labels == b).any(0).sum() for b in range(k)])
    assert rows.max() < h // 2 and cols.max() < w // 2
    # The ramp's columns are its plateaus (vertical neighbours are exactly equal): inside
    # them the index decides as in the reference, so each column merges whole and, being
    # exact (zero variance), is kept: the same 64 columns.
    assert torch.equal(_hierarchy(ramp, "hashed").labels, columns.labels)


def test_a_constant_image_stays_one_token_with_hashed_ties():
    image = torch.full((32, 32, 3), 0.4)
    assert _hierarchy(image, "hashed").num_blocks == 1


def _plateaus(h, w):
    # 2×2 plateaus of a two-channel gradient (a uint8 gradient in miniature).
    yy, xx = torch.meshgrid(torch.arange(h) // 2, torch.arange(w) // 2, indexing="ij")
    return torch.stack([xx, yy], -1).reshape(h * w, 2).float() / 8


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
@pytest.mark.parametrize("image", ["ramp", "plateaus", "palette"])
def test_grid_fast_path_equals_contract_on_tied_images(tie_break, image):
    b, h, w = 2, 9, 8
    if image == "ramp":
        x = _ramp(h, w).reshape(h * w, 3).repeat(b, 1)
    elif image == "plateaus":
        x = _plateaus(h, w).repeat(b, 1)
    else:
        x = _palette_image(b * h, w, seed=7, levels=1)[:, :1].contiguous() + \
            _palette_image(b * h, w, seed=8)[:, :1]
    node = torch.arange(h * w)
    pos = torch.stack([node // w, node % w], 1).repeat(b, 1)
    batch = torch.arange(b).repeat_interleave(h * w)
    full = BlockState.from_pixels(x, pos, grid_edge_index(h, w, b), batch)
    potential = edge_affinity(full.mean, full.var, full.size, full.bbox, full.edge_index,
                              compactness=0.1)
    expected = contract(full, potential, weights="size", tie_break=tie_break)
    got = grid_contraction(pixel_state(x, b, batch), b, h, w, compactness=0.1, weights="size",
                           tie_break=tie_break)
    assert torch.equal(got.choice, expected.choice)
    assert got.partition == expected.partition


def test_hashed_keys_built_in_chunks_equal_one_chunk(monkeypatch):
    # The hashed rule builds its keys (general path) and pixel-pair hashes (grid path) in
    # chunks to bound memory; tiny chunks must give the same choices as one chunk.
    from dhtgraph.hierarchy import contraction, grid

    h, w = 11, 9
    one = torch.cat([_plateaus(h, w), _palette_image(h, w, seed=3)[:, :1]], 1)
    image = torch.cat([one, one.flip(0)])  # a batch of two, plateaus and ties everywhere
    whole = _levels(image, 2, h, w, "hashed")
    monkeypatch.setattr(contraction, "_EQUAL_CHUNK", 7)
    monkeypatch.setattr(grid, "_ROW_CHUNK_PIXELS", 2 * w)
    chunked = _levels(image, 2, h, w, "hashed")
    assert torch.equal(whole[0], chunked[0])
    for (a, _), (b, _) in zip(whole[1:], chunked[1:]):
        assert torch.equal(a, b)
