"""The logic behind ``tools/train.py`` and ``tools/test.py``."""
from .runner import test, test_config, train, train_config, working_dir

__all__ = ['test', 'test_config', 'train', 'train_config', 'working_dir']
