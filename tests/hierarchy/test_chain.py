"""dhtgraph.Hierarchy: relative and absolute levels, validation, bad chains."""

import pytest
import torch

from dhtgraph import Hierarchy, Partition, grid_edge_index


def P(*labels):
    return Partition.from_labels(torch.tensor(labels))


def test_levels_relative_and_absolute():
    h = Hierarchy([P(0, 0, 1, 1, 2, 2), P(0, 1, 1), P(0, 0)], 6)
    assert h.num_levels == 4 and h.num_blocks == [6, 3, 2, 1]
    assert h.level(0) == Partition.discrete(6)
    assert h.level(2) == P(0, 1, 1)
    assert h.absolute(2) == P(0, 0, 1, 1, 1, 1)
    assert h.absolute(-1) == Partition.indiscrete(6)
    for t in range(h.num_levels - 1):
        assert h.absolute(t).refines(h.absolute(t + 1))


def test_from_absolute_round_trip():
    absolute = [P(0, 0, 1, 2, 2, 1), P(0, 0, 1, 0, 0, 1)]
    h = Hierarchy.from_absolute(absolute)
    assert [h.absolute(t + 1) for t in range(2)] == absolute
    with pytest.raises(ValueError, match=r"partitions\[1\] does not coarsen"):
        Hierarchy.from_absolute([P(0, 0, 1), P(0, 1, 1)])


def test_validate_checks_connectivity_on_the_pixel_graph():
    edge_index = grid_edge_index(1, 4)  # path 0-1-2-3
    Hierarchy.from_absolute([P(0, 0, 1, 1)]).validate(edge_index)
    with pytest.raises(ValueError, match="level 1 has a block that is not connected"):
        Hierarchy.from_absolute([P(0, 1, 1, 0)]).validate(edge_index)


def test_bad_steps_and_levels():
    with pytest.raises(ValueError, match=r"'steps\[1\]' to partition the 2 blocks of level 1"):
        Hierarchy([P(0, 0, 1), P(0, 0, 0)], 3)
    with pytest.raises(TypeError, match=r"'steps\[0\]' to be a Partition"):
        Hierarchy([[0, 0, 1]], 3)
    with pytest.raises(ValueError, match=r"'num_items' to be a non-negative int \(got -3\)"):
        Hierarchy([], -3)
    with pytest.raises(IndexError, match=r"level 't' in 0..1"):
        Hierarchy([P(0, 0)], 2).level(2)
