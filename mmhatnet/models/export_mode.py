"""The one switch between HATNet's eager paths and its export paths.

Eager HATNet takes shortcuts that depend on the input's size: the local
attention skips padding and masking when G1 divides the map, and ConvFFN
runs its memory-lean function over CPU row bands whose number depends on
the map. A graph exporter would bake either choice into the graph, and the
TorchScript exporter cannot record the autograd Function at all. Under
export the network therefore takes the size-independent paths (always pad
and mask; plain ConvFFN ops as one band), which compute the same numbers.
"""
from __future__ import annotations

import torch

# torch.export's flag (torch >= 2.4); before it, torch.export had no
# exporter of its own to flag
_torch_exporting = getattr(getattr(torch, 'compiler', None), 'is_exporting',
                           lambda: False)


def is_exporting() -> bool:
    """True while a graph is being recorded for deployment: under either
    ``torch.onnx.export`` exporter, ``torch.export`` or ``torch.jit.trace``.
    ``torch.compile`` is not export: it keeps the eager paths."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
            or _torch_exporting())
