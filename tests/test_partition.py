"""Exact small cases and bad input for dhtgraph.partition (laws: tests/properties/)."""

import pytest
import torch

from dhtgraph import Partition, canonicalize


def P(*labels):
    return Partition.from_labels(torch.tensor(labels))


def test_canonical_numbering_by_first_occurrence():
    p = P(7, 7, 3, 9, 3)
    assert p.labels.tolist() == [0, 0, 1, 2, 1]
    assert p.num_blocks == 3 and p.num_items == 5
    assert p.sizes.tolist() == [2, 2, 1]


def test_canonicalize_large_sparse_labels_uses_sort_path():
    labels = torch.tensor([10**12, 5, 10**12, 0])
    canonical, k = canonicalize(labels)
    assert canonical.tolist() == [0, 1, 0, 2] and k == 3


def test_discrete_and_indiscrete():
    assert Partition.discrete(3).labels.tolist() == [0, 1, 2]
    assert Partition.indiscrete(3).labels.tolist() == [0, 0, 0]
    assert Partition.indiscrete(0).num_blocks == 0
    assert Partition.discrete(3).refines(Partition.indiscrete(3))
    assert not Partition.indiscrete(3).refines(Partition.discrete(3))


def test_meet_and_join_by_hand():
    a, b = P(0, 0, 1, 1, 2), P(0, 1, 1, 2, 2)
    assert a.meet(b) == P(0, 1, 2, 3, 4)
    assert a.join(b) == P(0, 0, 0, 0, 0)
    c = P(0, 0, 1, 2, 2)
    assert a.meet(c) == P(0, 0, 1, 2, 3)
    assert a.join(c) == P(0, 0, 1, 1, 1)


def test_compose_lifts_block_partition():
    fine = P(0, 0, 1, 2, 2, 3)
    coarse_of_blocks = P(0, 1, 0, 1)
    assert fine.compose(coarse_of_blocks) == P(0, 0, 1, 0, 0, 1)
    assert fine.compose(coarse_of_blocks).validate() is not None


def test_reduce_and_broadcast_exact():
    p = P(0, 0, 1)
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 5.0]])
    assert p.reduce(x).tolist() == [[2.0, 4.0], [5.0, 5.0]]
    assert p.reduce(x, "sum").tolist() == [[4.0, 8.0], [5.0, 5.0]]
    assert p.reduce(x, "max").tolist() == [[3.0, 6.0], [5.0, 5.0]]
    assert p.reduce(x, "min").tolist() == [[1.0, 2.0], [5.0, 5.0]]
    assert p.broadcast(torch.tensor([10, 20])).tolist() == [10, 10, 20]


def test_reduce_mean_is_differentiable():
    p = P(0, 0, 1)
    x = torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: p.reduce(t), (x,))


def test_quotient_of_path():
    # path 0-1-2-3 with blocks {0,1}, {2,3}
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    p = P(0, 0, 1, 1)
    assert p.quotient(edge_index).tolist() == [[0, 1], [1, 0]]
    assert p.quotient(edge_index, self_loops=True).tolist() == [[0, 0, 1, 1], [0, 1, 0, 1]]


def test_is_connected():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    assert P(0, 0, 1, 1).is_connected(edge_index)
    assert not P(0, 1, 1, 0).is_connected(edge_index)  # {0, 3} is not connected


def test_equality():
    assert P(5, 5, 1) == P(0, 0, 2)
    assert P(0, 0, 1) != P(0, 1, 1)
    assert P(0, 0) != P(0, 0, 0)


def test_validate_rejects_non_canonical_labels():
    bad = Partition(torch.tensor([1, 0]), 2, canonical=True)
    with pytest.raises(ValueError, match="not canonical"):
        bad.validate()
    with pytest.raises(ValueError, match="span 0..2"):
        Partition(torch.tensor([0, 1]), 3, canonical=True).validate()


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (torch.tensor([0, -1]), ValueError, "non-negative"),
        (torch.tensor([0.0, 1.0]), TypeError, "integer dtype"),
        (torch.tensor([[0, 1]]), ValueError, "1-dimensional"),
        (torch.tensor([True, False]), TypeError, "integer dtype"),
    ],
)
def test_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        Partition.from_labels(labels)


def test_bad_arguments_name_themselves():
    p = P(0, 0, 1)
    with pytest.raises(ValueError, match="'other' to partition the same 3 items"):
        p.refines(P(0, 1))
    with pytest.raises(ValueError, match="'coarser' to partition the 2 blocks"):
        p.compose(P(0, 0, 0))
    with pytest.raises(ValueError, match="'reduce' to be one of"):
        p.reduce(torch.ones(3), "median")
    with pytest.raises(ValueError, match=r"'x' to have shape \(3, \*\)"):
        p.reduce(torch.ones(4))
    with pytest.raises(ValueError, match=r"'y' to have shape \(2, \*\)"):
        p.broadcast(torch.ones(3))
    with pytest.raises(ValueError, match="'n' to be a non-negative int"):
        Partition.discrete(-1)
    with pytest.raises(ValueError, match=r"'edge_index' to have shape \(2, E\)"):
        p.quotient(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'edge_index' values in 0..2 \(got 0..3\)"):
        p.is_connected(torch.tensor([[0], [3]]))
    with pytest.raises(ValueError, match="'num_blocks' to equal the number of distinct labels 2"):
        Partition(torch.tensor([0, 1]), 3)
