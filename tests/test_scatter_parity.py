"""Optional accelerator parity: torch-scatter gives the same block statistics.

The core never needs torch-scatter (``make scatter`` installs it); when it is importable
this checks that Partition.reduce agrees with it.
"""

import pytest
import torch

from dhtgraph import Partition

torch_scatter = pytest.importorskip("torch_scatter", reason="torch-scatter is not installed "
                                    "(optional accelerator: `make scatter`)")


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_reduce_matches_torch_scatter(reduce):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 50, (1000,), generator=g)
    p = Partition.from_labels(labels)
    x = torch.randn(1000, 3, generator=g)
    ours = p.reduce(x, reduce)
    theirs = torch_scatter.scatter(x, p.labels, dim=0, dim_size=p.num_blocks, reduce=reduce)
    torch.testing.assert_close(ours, theirs)
