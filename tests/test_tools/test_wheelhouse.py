"""tools/wheelhouse.py: which of the wheels pip resolved a target needs,
given what it has (its ``pip list --format=freeze``)."""
import os
import sys

from e2e import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from wheelhouse import marker_env, needed, read_freeze  # noqa: E402

ENV = marker_env('3.11', 'x86_64')


def _item(name, version, *requires, extras=()):
    return {'metadata': {'name': name, 'version': version,
                         'requires_dist': list(requires)},
            'requested_extras': list(extras)}


REPORT = {'install': [
    _item('mmengine', '0.10.7', 'numpy', 'opencv-python>=3', 'pyyaml',
          'matplotlib'),
    _item('numpy', '2.3.5'),
    _item('opencv-python', '5.0.0.93', 'numpy>=2; python_version >= "3.9"'),
    _item('PyYAML', '6.0.4'),
    _item('matplotlib', '3.11.2', 'pillow>=8'),
    _item('pillow', '13.0.0'),
    _item('setuptools', '80.9.0'),
]}
TOP = ['setuptools==80.9.0', 'mmengine==0.10.7  # the runner']


def test_without_a_freeze_every_wheel_is_needed():
    assert needed(REPORT, TOP, {}, ENV) == [
        'mmengine==0.10.7', 'numpy==2.3.5', 'opencv-python==5.0.0.93',
        'pyyaml==6.0.4', 'matplotlib==3.11.2', 'pillow==13.0.0',
        'setuptools==80.9.0']


def test_what_the_target_has_in_range_is_left_out():
    have = read_freeze(['numpy==2.1.0', 'PyYAML==5.4.1', 'Pillow==7.2.0',
                        'setuptools==69.5.1', 'matplotlib==3.7.0',
                        'torch @ file:///opt/torch.whl', '# a comment'])
    assert have['pyyaml'] == '5.4.1' and 'torch' not in have
    # numpy 2.1, pyyaml and matplotlib 3.7 fit and are left out; pillow
    # 7.2 is below what the resolved matplotlib asks for (kept, though
    # the target's own matplotlib may not ask it); setuptools is pinned to
    # another version
    assert needed(REPORT, TOP, have, ENV) == [
        'mmengine==0.10.7', 'opencv-python==5.0.0.93', 'pillow==13.0.0',
        'setuptools==80.9.0']
    # the pinned setuptools, though the target has it: a venv made over
    # the target has its own
    have['setuptools'] = '80.9.0'
    assert 'setuptools==80.9.0' in needed(REPORT, TOP, have, ENV)


def test_markers_are_the_targets():
    report = {'install': [_item('opencv-python', '5.0.0.93',
                                'numpy>=2; python_version >= "3.9"'),
                          _item('numpy', '2.3.5')]}
    have = {'numpy': '1.24.4'}
    assert needed(report, [], have, marker_env('3.11', 'x86_64')) == [
        'opencv-python==5.0.0.93', 'numpy==2.3.5']
    assert needed(report, [], have, marker_env('3.8', 'x86_64')) == [
        'opencv-python==5.0.0.93']


def test_a_requested_extra_counts():
    report = {'install': [
        _item('cuda-toolkit', '13.0.2', 'nvidia-cuda-nvcc==13.0.*; extra == '
              '"nvcc"', extras=['nvcc']),
        _item('nvidia-cuda-nvcc', '13.0.88')]}
    assert needed(report, [], {'nvidia-cuda-nvcc': '12.8.93'}, ENV) == [
        'cuda-toolkit==13.0.2', 'nvidia-cuda-nvcc==13.0.88']
