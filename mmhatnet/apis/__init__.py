"""The logic behind ``tools/train.py`` and ``tools/test.py``: argument
handling, the config check and the runner (the top of the runtime)."""
from .config_check import check_config
from .runner import test, test_config, train, train_config, working_dir

__all__ = [
    'check_config', 'test', 'test_config', 'train', 'train_config',
    'working_dir'
]
