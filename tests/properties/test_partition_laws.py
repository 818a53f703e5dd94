"""Laws of partitions: canonical labels, refinement, the lattice, pooling.

Every test names the statement of theory/ it checks; theory/ names the test back.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dhtgraph import Partition, canonicalize
from dhtgraph.testing import coarsenings, labels, partition_pairs, partitions, refinements

# ---------------------------------------------------------------- brute-force references


@functools.lru_cache(maxsize=None)
def all_partitions(n: int) -> tuple[tuple[int, ...], ...]:
    """Every partition of {0..n-1} as its canonical label tuple (restricted growth strings).

    A label vector is canonical exactly when it is a restricted growth string (theory/
    Proposition 2), so enumerating those enumerates the Bell(n) partitions once each.
    """
    out: list[tuple[int, ...]] = []

    def grow(prefix: list[int], top: int) -> None:
        if len(prefix) == n:
            out.append(tuple(prefix))
            return
        for label in range(top + 2):
            grow(prefix + [label], max(top, label))

    if n == 0:
        return ((),)
    grow([0], 0)
    return tuple(out)


def refines_py(fine: tuple[int, ...], coarse: tuple[int, ...]) -> bool:
    """Definition 8 read literally: every block of ``fine`` lies inside a block of ``coarse``."""
    seen: dict[int, int] = {}
    return all(seen.setdefault(f, c) == c for f, c in zip(fine, coarse))


def blocks_py(labels_: list[int]) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for i, label in enumerate(labels_):
        out.setdefault(label, set()).add(i)
    return {frozenset(b) for b in out.values()}


def as_tuple(p: Partition) -> tuple[int, ...]:
    return tuple(p.labels.tolist())


# ---------------------------------------------------------------- Theorem 1, Definition 7


@given(labels())
def test_labels_define_a_partition(lab):
    """Checks theory/02-equivalence.md Definition 6 (classes) and theory/03-partitions.md
    Theorem 1 (fundamental theorem) and Definition 7:
    the classes of "same label" are non-empty, pairwise disjoint and cover the items."""
    p = Partition.from_labels(lab).validate()
    blocks = blocks_py(p.labels.tolist())
    n = lab.numel()
    assert len(blocks) == p.num_blocks
    assert all(blocks), "a block is empty"
    assert sum(len(b) for b in blocks) == n, "blocks overlap"
    assert set().union(*blocks) == set(range(n)) if blocks else n == 0
    assert p.sizes.sum().item() == n and bool((p.sizes > 0).all())


@given(st.integers(0, 7).flatmap(lambda n: st.tuples(labels(n, max_blocks=3), labels(n, max_blocks=3))))
def test_equal_partitions_iff_same_equivalence_relation(ab):
    """Checks theory/02-equivalence.md Definition 5 ("same label" is an equivalence
    relation) and Definition 6 (its classes), and theory/03-partitions.md Theorem 1 (the
    correspondence between equivalence relations and partitions is one-to-one): two label
    vectors give equal Partitions exactly when they relate the same pairs of items."""
    a, b = ab
    same_a = a[:, None] == a[None, :]
    same_b = b[:, None] == b[None, :]
    event(f"same relation: {bool(torch.equal(same_a, same_b))}")
    assert (Partition.from_labels(a) == Partition.from_labels(b)) == bool(torch.equal(same_a, same_b))


# ---------------------------------------------------------------- Proposition 2 (canonical labels)


@given(labels())
def test_canonicalize_is_idempotent(lab):
    """Checks theory/03-partitions.md Proposition 2 (canonical labels): canonicalising
    canonical labels changes nothing."""
    once, k = canonicalize(lab)
    twice, k2 = canonicalize(once)
    assert torch.equal(once, twice) and k == k2


@given(labels(), st.data())
def test_canonicalize_is_invariant_under_injective_relabelling(lab, data):
    """Checks theory/03-partitions.md Proposition 2: canonical labels depend only on the
    partition, so renaming the labels by any injective map f leaves them unchanged."""
    values = sorted(set(lab.tolist()))
    images = data.draw(st.lists(st.integers(0, 2**50), min_size=len(values),
                                max_size=len(values), unique=True), label="f")
    f = dict(zip(values, images))
    renamed = torch.tensor([f[v] for v in lab.tolist()], dtype=torch.long)
    assert torch.equal(canonicalize(renamed)[0], canonicalize(lab)[0])


@given(labels())
def test_canonical_labels_are_restricted_growth_strings(lab):
    """Checks theory/03-partitions.md Proposition 2: canonical labels start at 0 and each
    label is at most one more than every label before it (blocks numbered by first
    occurrence), and they induce the same partition as the input labels."""
    canon, k = canonicalize(lab)
    top = -1
    for value in canon.tolist():
        assert value <= top + 1
        top = max(top, value)
    assert k == top + 1
    assert blocks_py(canon.tolist()) == blocks_py(lab.tolist())


# ---------------------------------------------------------------- Definition 8, Proposition 3


@given(partition_pairs(max_items=8))
def test_refines_matches_definition(pair):
    """Checks theory/03-partitions.md Definition 8 (refinement): ``p.refines(q)`` holds
    exactly when every block of p lies inside a block of q."""
    p, q = pair
    by_definition = all(any(b <= c for c in blocks_py(q.labels.tolist()))
                        for b in blocks_py(p.labels.tolist()))
    assert p.refines(q) == by_definition


@given(partitions())
def test_refines_is_reflexive(p):
    """Checks theory/03-partitions.md Proposition 3 (refinement is a partial order):
    reflexivity, π ≤ π."""
    assert p.refines(p)


@given(partition_pairs())
def test_refines_is_antisymmetric(pair):
    """Checks theory/03-partitions.md Proposition 3: antisymmetry, π ≤ ρ and ρ ≤ π imply
    π = ρ."""
    p, q = pair
    if p.refines(q) and q.refines(p):
        event("mutually refining")
        assert p == q
    else:
        assert p != q


@given(partitions().flatmap(lambda p: st.tuples(st.just(p), coarsenings(p)))
       .flatmap(lambda pq: st.tuples(st.just(pq[0]), st.just(pq[1]), coarsenings(pq[1]))))
def test_refines_is_transitive(triple):
    """Checks theory/03-partitions.md Proposition 3: transitivity, π ≤ ρ ≤ τ implies
    π ≤ τ (chains drawn by two random coarsenings)."""
    p, q, r = triple
    assert p.refines(q) and q.refines(r)
    assert p.refines(r)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_refines_is_partial_order(n):
    """Checks theory/03-partitions.md Proposition 3 exhaustively: on all Bell(n)
    partitions of n ≤ 4 items, ``refines`` is reflexive, antisymmetric and transitive,
    and agrees with Definition 8."""
    parts = [Partition(torch.tensor(t, dtype=torch.long)) for t in all_partitions(n)]
    le = [[a.refines(b) for b in parts] for a in parts]
    m = len(parts)
    for i in range(m):
        assert le[i][i]
        for j in range(m):
            assert le[i][j] == refines_py(all_partitions(n)[i], all_partitions(n)[j])
            if i != j:
                assert not (le[i][j] and le[j][i])
            for k in range(m):
                assert not (le[i][j] and le[j][k]) or le[i][k]


@given(partitions())
def test_discrete_is_bottom_and_indiscrete_is_top(p):
    """Checks theory/03-partitions.md Definition 7 (⊥ and ⊤) and Proposition 3: ⊥ ≤ π ≤ ⊤
    for every partition π."""
    n = p.num_items
    assert Partition.discrete(n).refines(p)
    assert p.refines(Partition.indiscrete(n))


@given(partitions().flatmap(lambda p: st.tuples(st.just(p), refinements(p))))
def test_refinements_strategy_refines(pair):
    """Checks theory/03-partitions.md Definition 8 on the shipped ``refinements``
    strategy: splitting every block of π gives a partition that refines π."""
    p, r = pair
    assert r.refines(p)


# ---------------------------------------------------------------- Proposition 4 (the lattice)


def _greatest(candidates: list[tuple[int, ...]]) -> tuple[int, ...]:
    tops = [c for c in candidates if all(refines_py(d, c) for d in candidates)]
    assert len(tops) == 1
    return tops[0]


def _least(candidates: list[tuple[int, ...]]) -> tuple[int, ...]:
    bottoms = [c for c in candidates if all(refines_py(c, d) for d in candidates)]
    assert len(bottoms) == 1
    return bottoms[0]


@given(partition_pairs(min_items=0, max_items=6))
def test_meet_is_greatest_lower_bound(pair):
    """Checks theory/03-partitions.md Proposition 4 (refinement lattice): ``p.meet(q)`` is
    the greatest lower bound of p and q, found by brute force over all partitions of
    n ≤ 6 items."""
    p, q = pair
    a, b = as_tuple(p), as_tuple(q)
    lower = [r for r in all_partitions(p.num_items) if refines_py(r, a) and refines_py(r, b)]
    assert as_tuple(p.meet(q).validate()) == _greatest(lower)


@given(partition_pairs(min_items=0, max_items=6))
def test_join_is_least_upper_bound(pair):
    """Checks theory/03-partitions.md Proposition 4: ``p.join(q)`` is the least upper
    bound of p and q, found by brute force over all partitions of n ≤ 6 items."""
    p, q = pair
    a, b = as_tuple(p), as_tuple(q)
    upper = [r for r in all_partitions(p.num_items) if refines_py(a, r) and refines_py(b, r)]
    assert as_tuple(p.join(q).validate()) == _least(upper)


@given(partition_pairs())
def test_meet_and_join_are_commutative_and_absorb(pair):
    """Checks theory/03-partitions.md Proposition 4: π ∧ ρ = ρ ∧ π, π ∨ ρ = ρ ∨ π,
    π ∧ (π ∨ ρ) = π and π ∨ (π ∧ ρ) = π."""
    p, q = pair
    assert p.meet(q) == q.meet(p)
    assert p.join(q) == q.join(p)
    assert p.meet(p.join(q)) == p
    assert p.join(p.meet(q)) == p


# ---------------------------------------------------------------- Proposition 5 (pooling)


@st.composite
def partitions_with_values(draw):
    p = draw(partitions(min_items=1))
    d = draw(st.integers(1, 3))
    x = draw(hnp.arrays(np.float64, (p.num_items, d),
                        elements=st.floats(-1e3, 1e3, allow_nan=False)))
    return p, torch.from_numpy(x)


@given(partitions_with_values())
def test_reduce_then_broadcast_preserves_block_means(px):
    """Checks theory/03-partitions.md Proposition 5 (block pooling): giving every item its
    block mean keeps every block mean (and block sum) unchanged."""
    p, x = px
    means = p.reduce(x, "mean")
    y = p.broadcast(means)
    assert y.shape == x.shape
    torch.testing.assert_close(p.reduce(y, "mean"), means, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(p.reduce(y, "sum"), p.reduce(x, "sum"), rtol=1e-9, atol=1e-6)


@given(partitions_with_values())
def test_broadcast_of_reduce_is_a_projection(px):
    """Checks theory/03-partitions.md Proposition 5: x ↦ broadcast(reduce(x)) is
    idempotent, and its values are constant on blocks."""
    p, x = px
    project = lambda v: p.broadcast(p.reduce(v, "mean"))  # noqa: E731
    once = project(x)
    torch.testing.assert_close(project(once), once, rtol=1e-9, atol=1e-9)
    for reduce in ("min", "max"):
        torch.testing.assert_close(p.reduce(once, reduce), p.reduce(x, "mean"), rtol=1e-9, atol=1e-9)


@given(partitions_with_values())
def test_reduce_matches_blockwise_definition(px):
    """Checks theory/03-partitions.md Proposition 5: ``reduce`` pools exactly the items of
    each block (sum, mean, min, max), in block order."""
    p, x = px
    for k, block in enumerate(sorted(blocks_py(p.labels.tolist()), key=min)):
        rows = x[sorted(block)]
        torch.testing.assert_close(p.reduce(x, "sum")[k], rows.sum(0))
        torch.testing.assert_close(p.reduce(x, "mean")[k], rows.mean(0))
        torch.testing.assert_close(p.reduce(x, "min")[k], rows.min(0).values)
        torch.testing.assert_close(p.reduce(x, "max")[k], rows.max(0).values)


@pytest.mark.parametrize("n", [0, 1, 5, 6])
def test_number_of_partitions_is_bell(n):
    """Checks theory/03-partitions.md Proposition 2 (canonical labels are the restricted
    growth strings): the brute-force enumeration used by the lattice tests yields each of
    the Bell(n) partitions once, and each is a valid canonical Partition."""
    bell = {0: 1, 1: 1, 5: 52, 6: 203}[n]
    found = all_partitions(n)
    assert len(found) == len(set(found)) == bell
    for t in itertools.islice(found, 0, None, 17):
        Partition(torch.tensor(t, dtype=torch.long), canonical=True).validate()
