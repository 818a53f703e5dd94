"""Token budget: exact, connected, deterministic or seeded (spec §6)."""

import pytest
import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.partition import Partition
from dhtgraph.selection.budget import check_max_tokens, keep_mask, merge_to_budget


def test_hand_case_on_a_strip():
    # Four one-pixel tokens with features 0, 0.1, 5, 5.2. Ward costs to the best
    # neighbour: 0.005, 0.005, 0.02, 0.02 → keep tokens 2 and 3; 0 and 1 pick each
    # other, then the pair joins its only neighbour, token 2.
    part = Partition.discrete(4)
    feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    out = merge_to_budget(part, feats, torch.zeros(4, dtype=torch.long), grid_edge_index(1, 4), 2)
    assert out.kept.tolist() == [False, False, True, True]
    assert out.merge.labels.tolist() == [0, 0, 0, 1]


def test_budget_is_exact_per_image_and_connected():
    torch.manual_seed(0)
    h, w, b = 9, 11, 3
    edges = grid_edge_index(h, w, b)
    part = Partition.discrete(b * h * w)
    feats = torch.rand(b * h * w, 3)
    batch = torch.arange(b).repeat_interleave(h * w)
    for budget in (1, 7, 50, 99, 500):
        out = merge_to_budget(part, feats, batch, edges, budget)
        merged = part.compose(out.merge)
        assert merged.is_connected(edges)
        token_batch = torch.empty(merged.num_blocks, dtype=torch.long).scatter_(0, merged.labels, batch)
        assert torch.bincount(token_batch, minlength=b).tolist() == [min(budget, h * w)] * b


def test_deterministic_and_seeded():
    torch.manual_seed(1)
    edges = grid_edge_index(8, 8)
    part = Partition.discrete(64)
    feats = torch.rand(64, 3)
    batch = torch.zeros(64, dtype=torch.long)
    a = merge_to_budget(part, feats, batch, edges, 10)
    b = merge_to_budget(part, feats, batch, edges, 10)
    assert a.merge == b.merge
    s1 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(3))
    s2 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(3))
    s3 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(4))
    assert s1.merge == s2.merge and s1.merge.num_blocks == 10
    assert not torch.equal(s1.kept, s3.kept)


def test_keep_mask_counts():
    score = torch.tensor([3.0, 1.0, 2.0, 5.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1, 1])
    assert keep_mask(score, batch, 2).tolist() == [True, False, True, True, True]
    assert keep_mask(score, batch, 1).tolist() == [True, False, False, True, False]


@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_budget_is_an_error(bad):
    with pytest.raises(ValueError, match="'max_tokens'"):
        check_max_tokens(bad)


@pytest.mark.parametrize("bad", [2.5, "10", True])
def test_non_int_budget_is_an_error(bad):
    with pytest.raises(TypeError, match="'max_tokens'"):
        check_max_tokens(bad)


def test_disconnected_token_graph_is_an_error_not_a_silent_overrun():
    # One image, four tokens in two parts with no edge between them: {0, 1} and {2, 3}.
    # With a budget of 1, the part without the kept token has nothing to merge into.
    part = Partition.discrete(4)
    feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    tokens = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    batch = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"connected \(got image 0 with 4 tokens, whose token "
                                         r"graph is disconnected.*max_tokens=1"):
        merge_to_budget(part, feats, batch, None, 1, token_edge_index=tokens)
    # A budget that keeps a token in each part is fine: sizes 2, 1, 1, 2 keep 0 and 3.
    sized = Partition(torch.tensor([0, 0, 1, 2, 3, 3]))
    out = merge_to_budget(sized, feats, batch, None, 2, token_edge_index=tokens, priority="size")
    assert out.kept.tolist() == [True, False, False, True]
    assert out.merge.labels.tolist() == [0, 0, 1, 1]
    two = torch.tensor([0, 0, 1, 1])
    edges = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="image 1 with 2 tokens"):
        merge_to_budget(part, feats, two, None, 1, token_edge_index=edges)
