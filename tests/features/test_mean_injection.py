"""Mean injection (spec §7)."""

import pytest
import torch

from dhtgraph.features import block_mean_image, mean_injection
from dhtgraph.partition import Partition


def test_hand_values_and_identity():
    image = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])  # (1, 1, 2, 2)
    part = Partition(torch.tensor([0, 0, 1, 1]))
    assert block_mean_image(image, part).flatten().tolist() == [2.0, 2.0, 6.0, 6.0]
    values = torch.tensor([[10.0], [0.0]])
    assert mean_injection(image, part, values).flatten().tolist() == [9.0, 11.0, -1.0, 1.0]
    # W μ* = x̄ gives the image back.
    assert torch.equal(mean_injection(image, part, torch.tensor([[2.0], [6.0]])), image)


def test_gradient_flows_into_the_token_values_only():
    image = torch.rand(1, 3, 4, 4, requires_grad=True)
    part = Partition(torch.arange(16) // 4)
    values = torch.rand(4, 3, requires_grad=True)
    mean_injection(image, part, values).sum().backward()
    assert torch.equal(values.grad, torch.full((4, 3), 4.0))
    assert image.grad is None


def test_shape_mismatch():
    with pytest.raises(ValueError, match="'token_values'"):
        mean_injection(torch.rand(1, 3, 2, 2), Partition(torch.zeros(4, dtype=torch.long)),
                       torch.rand(2, 3))
