"""Edge potentials, self-loop potentials and compactness (spec §3.1–§3.3)."""

import math

import pytest
import torch

from dhtgraph.hierarchy.affinity import (_SEQUENTIAL_SUM, compactness_potential, edge_affinity,
                                         gaussian_potential, self_loop_potential)


def test_gaussian_potential_hand_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    edges = torch.tensor([[0, 1, 0, 2], [1, 2, 2, 2]])
    got = gaussian_potential(x, edges)
    assert torch.allclose(got, torch.tensor([math.exp(-1), math.exp(-1), math.exp(-2), 1.0]))


def test_self_loop_potential_projection_and_default():
    var = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    proj = torch.nn.Linear(2, 1)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, -0.5]]))
        proj.bias.fill_(0.25)
    assert torch.allclose(self_loop_potential(var, proj), torch.sigmoid(torch.tensor([0.25, 0.25])))
    assert torch.equal(self_loop_potential(var), torch.zeros(2))
    assert torch.equal(self_loop_potential(var, default=0.3), torch.full((2,), 0.3))


def test_compactness_hand_values():
    # Blocks: two single pixels side by side, and a filled 2×2 square with a loop.
    size = torch.tensor([1, 1, 4])
    bbox = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [2, 0, 3, 1]])
    edges = torch.tensor([[0, 1, 2, 0], [1, 0, 2, 2]])
    got = compactness_potential(size, bbox, edges)
    # (0,1): m = 2, Δy = 0, Δx = 1 → 8/9; loop of the square → 16/16 = 1;
    # (0,2): m = 5, union box rows 0..3, cols 0..1 → 20 / (2+3+1)² = 20/36.
    assert torch.allclose(got, torch.tensor([8 / 9, 8 / 9, 1.0, 20 / 36]))


def test_edge_affinity_mixes_with_compactness():
    mean = torch.tensor([[0.0], [0.5], [3.0]])
    var = torch.zeros(3, 1)
    size = torch.tensor([1, 1, 4])
    bbox = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [2, 0, 3, 1]])
    edges = torch.tensor([[0, 1, 2], [1, 0, 2]])
    c = 0.25
    got = edge_affinity(mean, var, size, bbox, edges, compactness=c, loop_default=0.2)
    k = math.exp(-0.25)
    expected = torch.tensor([(1 - c) * k + c * 8 / 9, (1 - c) * k + c * 8 / 9, (1 - c) * 0.2 + c])
    assert torch.allclose(got, expected)
    plain = edge_affinity(mean, var, size, bbox, edges, compactness=0.0)
    assert torch.allclose(plain, torch.tensor([k, k, 0.0]))


def test_edge_affinity_is_differentiable_in_mean():
    mean = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    edges = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    size = torch.ones(3, dtype=torch.long)
    bbox = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [0, 2, 0, 2]])
    torch.autograd.gradcheck(
        lambda m: edge_affinity(m, torch.zeros_like(m), size, bbox, edges, compactness=0.1),
        (mean,))


def test_compactness_out_of_range_is_refused():
    with pytest.raises(ValueError, match="'compactness'"):
        edge_affinity(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, dtype=torch.long),
                      torch.zeros(1, 4, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long),
                      compactness=1.5)


def _random_block_graph(k=40, e=300, d=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    mean = torch.rand(k, d, generator=g, dtype=dtype) * 2
    var = torch.rand(k, d, generator=g, dtype=dtype)
    size = torch.randint(1, 50, (k,), generator=g)
    low = torch.randint(0, 20, (k, 2), generator=g)
    bbox = torch.cat([low, low + torch.randint(0, 6, (k, 2), generator=g)], 1)
    edges = torch.randint(0, k, (2, e), generator=g)
    edges[:, :k] = torch.arange(k)  # loops too
    return mean, var, size, bbox, edges


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("projection", [False, True])
def test_edge_affinity_chunks_are_bit_identical(monkeypatch, grad, projection):
    import dhtgraph.hierarchy.affinity as affinity

    mean, var, size, bbox, edges = _random_block_graph()
    proj = torch.nn.Linear(3, 1) if projection else None
    if proj is not None:
        proj.requires_grad_(grad)

    def run():
        m = mean.clone().requires_grad_(grad)
        out = edge_affinity(m, var, size, bbox, edges, compactness=0.3, var_projection=proj)
        if grad:
            out.pow(2).sum().backward()
            return out.detach(), m.grad
        return out, None

    whole, whole_grad = run()
    monkeypatch.setattr(affinity, "_EDGE_CHUNK", 7)  # 300 edges: 43 chunks, a ragged last one
    chunked, chunked_grad = run()
    assert torch.equal(whole, chunked)
    if grad:
        assert torch.equal(whole_grad, chunked_grad)


def test_edge_affinity_chunked_gradcheck(monkeypatch):
    import dhtgraph.hierarchy.affinity as affinity

    monkeypatch.setattr(affinity, "_EDGE_CHUNK", 5)
    mean, var, size, bbox, edges = _random_block_graph(k=8, e=30, d=2, seed=4, dtype=torch.float64)
    mean.requires_grad_()
    torch.autograd.gradcheck(
        lambda m: edge_affinity(m, var, size, bbox, edges, compactness=0.2), (mean,))


def _premise_values(shape: tuple, seed: int) -> torch.Tensor:
    # float32 values of ``shape`` (…, d): adversarial ones (NaN of both signs, ±inf, ±0,
    # overflowing and order-sensitive magnitudes), every third row random.
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([float("nan"), -float("nan"), float("inf"), -float("inf"), 0.0,
                           -0.0, 1.0, -1.0, 3e38, -3e38, 1e-45, 2.5, 1e-8], dtype=torch.float32)
    rows = values[torch.randint(0, len(values), shape, generator=g)].view(-1, shape[-1])
    rows[::3] = torch.randn(rows[::3].shape, generator=g, dtype=torch.float32)
    return rows.view(shape)


@pytest.mark.parametrize("d", range(1, _SEQUENTIAL_SUM + 1))
@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (4,), (5,), (7,), (8,), (9,), (200_003,),
                                   (2, 7, 10), (3, 1, 13), (1, 9, 1), (1, 101, 223), (101, 223)])
def test_channel_sum_premise_of_the_channel_major_native_layout(d, shape):
    # affinity._SEQUENTIAL_SUM: torch's CPU sum over the last dimension of ≤ that many
    # float32 channels gives the same bits on a row-major (…, d) tensor and on a
    # channel-major one (d, …) permuted to (…, d) (NaN payloads and signs, ±0, ±inf,
    # overflow), negated or not: the (E, d) edge squares, the (B', rows, columns, d)
    # grid squares _native_potentials sums and their one-image (rows, columns, d) view.
    # Row counts that are not multiples of the vector widths reach the tail loops.
    shape = shape + (d,)
    rows = _premise_values(shape, seed=d)
    assert rows.dtype == torch.float32
    for x in (rows, rows.neg()):
        channel_major = x.permute(-1, *range(x.dim() - 1)).contiguous()
        channel_major = channel_major.permute(*range(1, x.dim()), 0)
        assert channel_major.shape == x.shape
        assert d == 1 or channel_major.stride()[-1] == x[..., 0].numel()  # (d = 1: one layout)
        assert torch.equal(x.sum(-1).view(torch.int32),
                           channel_major.sum(-1).view(torch.int32))
