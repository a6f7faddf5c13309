"""mmhatnet.engine.resume: what a run that resumes without a path continues
from (end to end under ``mim train``: tests/test_tools/test_checkpoints.py;
under tools/train.py: tests/test_tools/test_reliability.py)."""
import importlib
import os
import sys

import pytest
import torch

import mmhatnet  # noqa: F401  (puts the finder into mmengine)
from mmhatnet.engine import find_latest_checkpoint, is_complete, resume


@pytest.fixture
def work(tmp_path):
    """A work dir with epoch_1 and epoch_2 (newer), a temporary file of the
    atomic backend, a best checkpoint and no ``last_checkpoint``."""
    for age, name in enumerate(['epoch_1.pth', 'epoch_2.pth', 'best.pth']):
        torch.save({'meta': {'epoch': age + 1}}, tmp_path / name)
        os.utime(tmp_path / name, (age, age))
    (tmp_path / 'epoch_3.pth.tmp').write_bytes(b'half a save')
    return tmp_path


def _truncate(path, size):
    with open(path, 'r+b') as f:
        f.truncate(size)


def test_the_named_complete_checkpoint_is_taken(work):
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    assert find_latest_checkpoint(str(work)) == str(work / 'epoch_1.pth')
    # remote paths are returned as they are, as mmengine does
    (work / 'last_checkpoint').write_text('s3://bucket/epoch_1.pth')
    assert find_latest_checkpoint(str(work)) == 's3://bucket/epoch_1.pth'


WHY = {
    'empty': 'is empty',
    'missing': 'does not exist',
    'names a missing file': 'names {work}/epoch_9.pth, which does not exist',
    'names a truncated file': 'names {work}/epoch_3.pth, which is incomplete '
    '(a save cut short)',
}


@pytest.mark.parametrize('case', WHY)
def test_otherwise_the_newest_complete_checkpoint(work, case, monkeypatch):
    logged = []
    monkeypatch.setattr(resume, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    marker = work / 'last_checkpoint'
    if case == 'empty':  # killed between mmengine's open('w') and write
        marker.write_text('')
    elif case == 'names a missing file':
        marker.write_text(str(work / 'epoch_9.pth'))
    elif case == 'names a truncated file':
        # a save cut short without the atomic backend: newest, but partial
        torch.save({'meta': {'epoch': 3}}, work / 'epoch_3.pth')
        _truncate(work / 'epoch_3.pth', os.path.getsize(work / 'epoch_3.pth')
                  - 30)
        marker.write_text(str(work / 'epoch_3.pth'))
    assert find_latest_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    why = WHY[case].format(work=work)
    assert logged == [f'{marker} {why}; resuming from the newest '
                      f'complete checkpoint, {work / "epoch_2.pth"}']


def test_the_named_files_folder_is_searched_too(work):
    """``last_checkpoint`` naming a missing file outside the work dir (a
    work dir given as another path): the newest complete one of both."""
    other = work / 'elsewhere'
    other.mkdir()
    torch.save({'meta': {'epoch': 5}}, other / 'epoch_5.pth')
    (work / 'last_checkpoint').write_text(str(other / 'epoch_6.pth'))
    assert find_latest_checkpoint(str(work)) == str(other / 'epoch_5.pth')


def test_no_complete_checkpoint_starts_from_the_beginning(tmp_path):
    assert find_latest_checkpoint(str(tmp_path / 'new')) is None
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_latest_checkpoint(str(tmp_path)) is None


def test_is_complete_reads_the_zip_directory_only(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save({'w': torch.zeros(1000)}, path)
    assert is_complete(str(path))
    for cut in (22, 4000):  # in the end record, in the data
        _truncate(path, os.path.getsize(path) - cut)
        assert not is_complete(str(path))
    assert not is_complete(str(tmp_path / 'none.pth'))


def test_every_mmengine_lookup_is_replaced():
    """Runner.load_or_resume and FlexibleRunner read the global of their
    module; strategies import it from mmengine.runner when they resume."""
    importlib.import_module('mmengine._strategy')
    found = {name: module.find_latest_checkpoint
             for name, module in list(sys.modules.items())
             if name.startswith('mmengine')
             and hasattr(module, 'find_latest_checkpoint')}
    assert 'mmengine.runner.runner' in found
    assert all(f is find_latest_checkpoint for f in found.values()), found


@pytest.mark.parametrize('kind', ['fifo', 'dev zero', 'marker fifo'])
def test_the_search_reads_regular_files_only(work, kind):
    """A FIFO, or a link to /dev/zero, named iter_9.pth in the work dir (or
    as last_checkpoint) would block the search or feed it without end."""
    import subprocess
    if kind == 'fifo':
        os.mkfifo(work / 'iter_9.pth')
        (work / 'last_checkpoint').write_text(str(work / 'iter_9.pth'))
    elif kind == 'dev zero':
        os.symlink('/dev/zero', work / 'iter_9.pth')
        (work / 'last_checkpoint').write_text(str(work / 'iter_9.pth'))
    else:
        os.mkfifo(work / 'last_checkpoint')
    found = subprocess.run(
        [sys.executable, '-c', 'import sys; from mmhatnet.engine import '
         'find_latest_checkpoint as f; print(f(sys.argv[1]))', str(work)],
        capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip().endswith('epoch_2.pth')
