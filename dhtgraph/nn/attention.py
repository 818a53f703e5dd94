"""Multi-head self-attention over packed token sets, with a learned graph bias.

Tokens of a batch are packed into (B, L, D) with a key-padding mask (architecture style
item 11); the mask is converted once per forward into the ``attn_mask`` of
:func:`torch.nn.functional.scaled_dot_product_attention`.

Graph awareness: each head adds a learned bias ``b_h[d(i, j)]`` indexed by the hop
distance d between tokens i and j in the region adjacency graph, capped at
``max_hops`` (farther and unreachable pairs share the last distance bucket); pairs
involving a prefix token (class, registers) use one extra bucket. The bias tables start
at zero, so a retrofitted ViT starts as the pretrained model.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Attention", "hop_distances", "hop_buckets", "bias_index", "attention_mask",
           "LAYER_NORM_EPS"]

#: timm's ViT LayerNorm epsilon (``timm.layers.LayerNorm``), so state dicts reproduce it.
LAYER_NORM_EPS = 1e-6


def hop_distances(edge_index: Tensor, batch: Tensor, position: Tensor, batch_size: int,
                  length: int, max_hops: int) -> Tensor:
    """Capped hop distance between the tokens of each image, (B, L, L) long.

    Parameters
    ----------
    edge_index : LongTensor of shape (2, E)
        Region adjacency between the K tokens (global numbering, no self-loops needed).
    batch : LongTensor of shape (K,)
        Image of every token.
    position : LongTensor of shape (K,)
        Slot of every token in its image's packed sequence (0..L−1).
    batch_size, length : int
        B and L.
    max_hops : int
        Distances ≥ ``max_hops`` (and unreachable pairs, and padding) are ``max_hops``.

    Notes
    -----
    Breadth-first search for all pairs at once: ``max_hops − 1`` batched boolean matrix
    products on the dense per-image adjacency (no Python loop over tokens).
    """
    device = batch.device
    adjacency = torch.zeros(batch_size, length, length, device=device)
    src, dst = edge_index
    adjacency[batch[src], position[src], position[dst]] = 1.0
    dist = torch.full((batch_size, length, length), max_hops, dtype=torch.long, device=device)
    eye = torch.eye(length, dtype=torch.bool, device=device).expand(batch_size, -1, -1)
    dist[eye] = 0
    if max_hops <= 1:
        return dist
    reached = eye | (adjacency > 0)
    dist[(adjacency > 0) & ~eye] = 1
    frontier = reached.to(adjacency.dtype)
    for hop in range(2, max_hops):
        grown = torch.bmm(frontier, adjacency) > 0
        new = grown & ~reached
        dist[new] = hop
        reached = reached | new
        frontier = reached.to(adjacency.dtype)
    return dist


def hop_buckets(dist: Tensor, num_prefix: int, max_hops: int) -> Tensor:
    """Bias bucket of every pair of the full sequence (prefix tokens first), (B, S, S).

    Buckets 0..max_hops are hop distances; bucket ``max_hops + 1`` marks pairs with a
    prefix token.
    """
    if num_prefix == 0:
        return dist
    b, length, _ = dist.shape
    total = length + num_prefix
    buckets = dist.new_full((b, total, total), max_hops + 1)
    buckets[:, num_prefix:, num_prefix:] = dist
    return buckets


def bias_index(buckets: Tensor, num_heads: int, num_buckets: int) -> Tensor:
    """Flat index into a (h, num_buckets) bias table for every head and pair, (B, h, S, S).

    Built once per forward and shared by all blocks: ``torch.take(table, index)`` is then
    one contiguous gather per block.
    """
    heads = torch.arange(num_heads, device=buckets.device).view(1, -1, 1, 1) * num_buckets
    return buckets[:, None] + heads


def attention_mask(valid: Optional[Tensor], bias: Optional[Tensor], dtype) -> Optional[Tensor]:
    """The ``attn_mask`` for SDPA: key padding (B, S) and/or additive bias (B, h, S, S).

    ``None`` when there is neither (every image has the same number of tokens and no
    graph bias): the unmasked fast path of a plain ViT.
    """
    if bias is None:
        if valid is None:
            return None
        return valid[:, None, None, :]  # boolean: True = attend
    if valid is None:
        return bias.to(dtype)
    return bias.to(dtype).masked_fill(~valid[:, None, None, :], float("-inf"))


class Attention(nn.Module):
    """timm-compatible multi-head self-attention (parameter names ``qkv``, ``q_norm``,
    ``k_norm``, ``proj``) with an optional per-head hop-distance bias table.

    Parameters
    ----------
    dim : int
        D.
    num_heads : int
        h; D must be divisible by h.
    qkv_bias : bool
        Bias of the qkv projection (timm ``qkv_bias``).
    qk_norm : bool
        LayerNorm of queries and keys per head (timm ``qk_norm``).
    hop_buckets : int
        Size of the graph-bias table per head (0: no graph bias). Named ``hop_bias``,
        shape (h, hop_buckets), zero-initialised.
    """

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True, qk_norm: bool = False,
                 hop_buckets: int = 0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Expected 'embed_dim' {dim} to be divisible by 'num_heads' {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.hop_bias = nn.Parameter(torch.zeros(num_heads, hop_buckets)) if hop_buckets else None

    def graph_bias(self, index: Tensor) -> Tensor:
        """(B, h, S, S) flat table indices (:func:`bias_index`) → (B, h, S, S) additive bias."""
        return torch.take(self.hop_bias, index)

    def forward(self, x: Tensor, valid: Optional[Tensor] = None,
                index: Optional[Tensor] = None) -> Tensor:
        """x (B, S, D); ``valid`` (B, S) key mask or None; ``index`` (B, h, S, S) graph-bias
        table indices (:func:`bias_index`) or None."""
        b, s, d = x.shape
        qkv = self.qkv(x).reshape(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        bias = self.graph_bias(index) if (index is not None and self.hop_bias is not None) else None
        mask = attention_mask(valid, bias, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, s, d))
