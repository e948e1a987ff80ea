"""pointea's packed classifier == an independent dense research-style implementation.

The dense reference (pointea.bench.dense_pct) uses PCT_Pytorch's parameter names, so one
random state dict loads into it directly and, converted, into pointea. Equal logits show
both the import mapping and the packed path (FPS, kNN, restructured neighbour embedding,
attention, pooling) are right.
"""

import torch
from pointea_testing import fake_pct_state_dict

from pointea.bench.dense_pct import DensePCT
from pointea.models import from_pct_pytorch


def test_imported_checkpoint_matches_dense_reference():
    state = fake_pct_state_dict(seed=3)
    dense = DensePCT(attention="self")
    dense.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    dense.eval()
    ours = from_pct_pytorch(state)
    g = torch.Generator().manual_seed(1)
    clouds = torch.rand(2, 1024, 3, generator=g) * 2 - 1
    with torch.no_grad():
        expect = dense(clouds.permute(0, 2, 1))
        got = ours(None, clouds.reshape(-1, 3), torch.arange(2).repeat_interleave(1024))
    assert torch.allclose(got, expect, atol=1e-4, rtol=1e-4), (got - expect).abs().max()
