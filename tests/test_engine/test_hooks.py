"""mmhatnet.engine.hooks (StepSeedHook is tested by exact resume in
tests/test_tools/test_reliability.py)."""
import pytest
import torch

from mmhatnet.engine import FiniteLossHook


class _Runner:
    iter, epoch = 6, 0


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_finite_loss_hook_names_the_iteration(bad):
    hook = FiniteLossHook()
    hook.after_train_iter(_Runner(), 0, outputs={'loss': torch.tensor(1.)})
    with pytest.raises(FloatingPointError, match='non-finite loss at '
                       r'iteration 7 \(epoch 1\)'):
        hook.after_train_iter(_Runner(), 0,
                              outputs={'loss': torch.tensor(bad)})
