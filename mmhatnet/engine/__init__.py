"""The runtime pieces mmhatnet adds to mmengine runners: hooks, the atomic
checkpoint backend, safe loading of untrusted checkpoints and the config
check of ``tools/train.py``."""
from .config_check import check_config
from .fileio import (ATOMIC_BACKEND, AtomicLocalBackend, save_checkpoint,
                     write_atomically)
from .hooks import FiniteLossHook, StepSeedHook
from .safe_load import (CheckpointError, allow_mmengine_checkpoints,
                        load_untrusted, state_dict_of)

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'CheckpointError',
    'FiniteLossHook', 'StepSeedHook', 'allow_mmengine_checkpoints',
    'check_config', 'load_untrusted', 'save_checkpoint', 'state_dict_of',
    'write_atomically'
]
