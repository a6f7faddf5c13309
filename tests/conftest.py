import pytest
import torch

from mmhatnet.models.convffn import row_bands


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: minutes and the package index; runs only when '
        'asked for (-m slow)')


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
