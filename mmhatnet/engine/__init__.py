"""The runtime pieces mmhatnet adds to mmengine runners: hooks, the atomic
checkpoint backend, safe loading of untrusted checkpoints and resume from
the newest complete checkpoint. The lowest layer of the package: it imports
nothing else of mmhatnet."""
from .fileio import (ATOMIC_BACKEND, AtomicLocalBackend, save_checkpoint,
                     write_atomically)
from .hooks import FiniteLossHook, StepSeedHook
from .resume import (find_latest_checkpoint, is_complete,
                     use_complete_checkpoints_in_mmengine)
from .resume_state import use_checked_resume_state_in_mmengine
from .safe_load import (CheckpointError, load_untrusted, state_dict_of,
                        use_safe_loading_in_mmengine)

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'CheckpointError',
    'FiniteLossHook', 'StepSeedHook', 'find_latest_checkpoint',
    'is_complete', 'load_untrusted', 'save_checkpoint', 'state_dict_of',
    'use_checked_resume_state_in_mmengine',
    'use_complete_checkpoints_in_mmengine', 'use_safe_loading_in_mmengine',
    'write_atomically'
]
