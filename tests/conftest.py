import importlib.util

import pytest
import torch

from mmhatnet.models.convffn import row_bands

# These import the deploy extra at the top: without it (the older stacks),
# they cannot even be collected, and -m "not deploy" deselects them anyway.
if importlib.util.find_spec('onnxruntime') is None:
    collect_ignore = ['test_deployment/test_export.py',
                      'test_models/test_export_mode.py']


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(params=['banded', 'one-band'])
def bands(request):
    """ConvFFN's CPU row bands: 2 rows, so that every map is cut into many,
    or the default (the tests' small maps fit one band)."""
    if request.param == 'banded':
        with row_bands(1, min_rows=2):
            yield
    else:
        yield
