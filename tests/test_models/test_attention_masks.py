"""What HATNet hands to ``scaled_dot_product_attention``, on each path.

No mask where G1 divides a map (a mask moves SDPA off its flash path), a
bool mask where a grid is padded, and never a float mask whose dtype is not
the queries': SDPA's cuDNN backend, the first choice on SM90 (H100/H200),
returned wrong outputs and gradients for an additive mask of another dtype
than fp16/bf16 queries (fixed in PyTorch PRs 191612 and 191964). Under
export the graph must fit every size, so it always masks, with an additive
mask in the queries' dtype (mmdeploy's rewrite reads no other kind).
"""
import pytest
import torch
import torch.nn.functional as F

from mmhatnet.models.attention import attention
from tiny import tiny_model

# 512x512: every stage's map is a multiple of G1 = 8 (128, 64, 32); the
# issue's 333x517: stages 1-3 (84x130, 42x65, 21x33) all have padded grids
SIZES = [(512, 512), (333, 517)]
G1 = 8


@pytest.fixture
def sdpa_calls(monkeypatch):
    """Every call of F.scaled_dot_product_attention, as (q, attn_mask)
    dtypes: (q.dtype, None) without a mask."""
    calls = []
    original = F.scaled_dot_product_attention

    def recording(q, k, v, attn_mask=None, *args, **kwargs):
        calls.append((q.dtype, None if attn_mask is None
                      else attn_mask.dtype))
        return original(q, k, v, attn_mask, *args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording)
    return calls


def _expected(outs, exporting: bool) -> list:
    """Per call, in order, whether a mask is expected: stages 1-3 each run
    the local step (masked if its grids are padded, or always under export)
    and the pooled global step (no mask); stage 4 is global (no mask)."""
    masks = []
    for out in outs[:3]:
        h, w = out.shape[-2:]
        masks += [exporting or bool(h % G1 or w % G1), False]
    return masks + [False]


@pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning')
@pytest.mark.parametrize('size', SIZES, ids=['512x512', '333x517'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16],
                         ids=['fp32', 'autocast-bf16'])
@pytest.mark.parametrize('path', ['eager', 'train', 'export'])
def test_sdpa_gets_no_mask_or_bool_or_the_queries_dtype(sdpa_calls, size,
                                                        dtype, path):
    model = tiny_model().train(path == 'train')
    x = torch.randn(1, 3, *size, requires_grad=path == 'train')
    with torch.autocast('cpu', dtype=torch.bfloat16,
                        enabled=dtype == torch.bfloat16):
        if path == 'export':
            # torch.jit.trace: the export switch is on while it records
            # (as under torch.onnx.export), and it runs on every stack;
            # the recorded graph runs without calling Python
            with torch.no_grad():
                outs = torch.jit.trace(model, x, check_trace=False)(x)
        elif path == 'train':
            outs = model(x)
            sum(o.float().sum() for o in outs).backward()
        else:
            with torch.no_grad():
                outs = model.eval()(x)
    expected = _expected(outs, path == 'export')
    assert len(sdpa_calls) == len(expected), sdpa_calls
    for (q_dtype, mask_dtype), masked in zip(sdpa_calls, expected):
        assert q_dtype == dtype  # autocast reached the attention
        if not masked:
            assert mask_dtype is None
        elif path == 'export':
            assert mask_dtype == q_dtype
        else:
            assert mask_dtype == torch.bool


def test_a_float_key_mask_is_refused():
    q = torch.randn(2, 1, 4, 8)
    keep = torch.tensor([[True, True, False, False]])  # (1, S)
    with pytest.raises(TypeError, match='torch.float32'):
        attention(q, q, q, keep.float())
    # the bool mask is applied: the last two keys take no part
    out = attention(q, q, q, keep)
    torch.testing.assert_close(out, attention(q, q[..., :2, :],
                                              q[..., :2, :]))
