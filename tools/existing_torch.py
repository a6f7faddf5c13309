"""The decisions of ``tools/setup_env.sh`` that keep an environment's torch
(``MMHATNET_TORCH=existing``), as pure functions.

Standard library only, Python >= 3.8: it runs with the Python whose torch
is kept (an NGC container's, a cluster module's, a conda or venv one's),
before anything is installed. It reads the versions of Python, torch,
torchvision and numpy there, checks them against the ranges ``setup.py``
declares (``python_requires``, ``install_requires``) and the pairing of
torchvision 0.(N+15) with torch 2.N, and picks the pins of the rest of the
stack by torch version (:func:`choose_pins`). It prints shell assignments
for ``eval``, or what is out of range and exits 1.

Versions are compared by their release numbers: a pre-release or a local
build tag counts as its release (NGC's ``2.6.0a0+ecf3bae40a.nv25.01`` is
2.6.0).

Usage (what setup_env.sh and make_wheelhouse.sh run)::

    eval "$("$PYTHON" tools/existing_torch.py)"
    eval "$(python3 tools/existing_torch.py --freeze FREEZE \
            --python-version 3.11)"   # for another machine
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from collections.abc import Mapping, Sequence

from gpu_env import Decision, GpuEnvError, parse_gpus, read_smi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ExistingTorchError(Exception):
    """What is out of the supported range, and the range."""


def release(version: str) -> tuple[int, ...]:
    """The release numbers that lead a version: '2.6.0a0+nv25.01' ->
    (2, 6, 0)."""
    m = re.match(r'\d+(\.\d+)*', version.strip())
    if m is None:
        raise ValueError(f'not a version: {version!r}')
    return tuple(int(p) for p in m.group(0).split('.'))


def _padded(a: tuple[int, ...], n: int) -> tuple[int, ...]:
    return a + (0, ) * (n - len(a))


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` is inside ``spec``, a comma-separated list of
    ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=`` clauses ('' admits all)."""
    ops = {'>=': lambda a, b: a >= b, '<=': lambda a, b: a <= b,
           '>': lambda a, b: a > b, '<': lambda a, b: a < b,
           '==': lambda a, b: a == b, '!=': lambda a, b: a != b}
    for clause in filter(None, (c.strip() for c in spec.split(','))):
        m = re.fullmatch(r'(>=|<=|==|!=|>|<)\s*([\d.]+)', clause)
        if m is None:
            raise ValueError(f'unsupported version clause {clause!r}')
        a, b = release(version), release(m.group(2))
        n = max(len(a), len(b))
        if not ops[m.group(1)](_padded(a, n), _padded(b, n)):
            return False
    return True


def setup_ranges(setup_py: str) -> dict[str, str]:
    """``{'python': '>=3.8', 'torch': '>=2.0.1', ...}``: ``python_requires``
    and the ``install_requires`` of setup.py's source, read without running
    it."""
    ranges = {}
    for node in ast.walk(ast.parse(setup_py)):
        if not isinstance(node, ast.keyword):
            continue
        if node.arg == 'python_requires':
            ranges['python'] = ast.literal_eval(node.value)
        elif node.arg == 'install_requires':
            for req in ast.literal_eval(node.value):
                m = re.fullmatch(r'([A-Za-z0-9_.-]+)\s*(.*)', req)
                ranges[m.group(1).lower()] = m.group(2)
    return ranges


def paired_torchvision(torch: str) -> str:
    """The torchvision minor series of torch 2.N: '0.(N+15)'."""
    major, minor = release(torch)[:2]
    return f'0.{minor + 15}' if major == 2 else ''


def choose_pins(python: str, torch: str) -> str:
    """The pins file of the stack the found torch belongs to: Python 3.8 ->
    requirements/py38.txt (its bottom: mmcv 2.0.1, mmdet 3.0); torch 2.0 ->
    requirements/common.txt (mmcv 2.1.0, mmdet 3.2, mmengine 0.8.5); newer
    -> requirements/stack.txt. Torch, torchvision and numpy are not taken
    from the file: they stay as found."""
    if release(python)[:2] == (3, 8):
        return 'requirements/py38.txt'
    if release(torch)[:2] == (2, 0):
        return 'requirements/common.txt'
    return 'requirements/stack.txt'


def decide(found: Mapping[str, str | None], ranges: Mapping[str, str],
           smi: str | None = None) -> Decision:
    """``found``: the versions of 'python', 'torch', 'torchvision' and
    'numpy' (None: not installed). Sets TORCH, TORCHVISION and NUMPY (''
    for one that is absent: the pins install it), KEPT (:func:`kept`),
    PINS, and MMHATNET_GPU_KEY (the GPUs, for the set-up's stamp); or
    raises :class:`ExistingTorchError` naming every version out of
    range."""
    problems = []

    def check(name: str, label: str, fix: str) -> None:
        spec = ranges.get(name, '')
        if found.get(name) and not satisfies(found[name], spec):
            problems.append(f'{label} {found[name]} is outside {spec} '
                            f'(setup.py): {fix.format(spec=spec)}')

    if not found.get('torch'):
        problems.append('no torch is installed for this Python: '
                        'MMHATNET_TORCH=existing keeps a torch that is '
                        'there (set PYTHON=/path/to/python that has it), '
                        'or leave MMHATNET_TORCH unset to install the '
                        'pinned one')
    else:
        check('python', 'Python', 'use a Python {spec}')
        check('torch', 'torch', 'use a torch {spec}, or leave '
              'MMHATNET_TORCH unset to install the pinned one')
        check('numpy', 'numpy', "install one inside it first (python -m "
              "pip install 'numpy{spec}')")
        tv, want = found.get('torchvision'), paired_torchvision(found['torch'])
        if not tv:
            problems.append(f'no torchvision is installed (mmpretrain '
                            f'imports it): install the torchvision '
                            f'{want}.x built for torch {found["torch"]}')
        elif want and release(tv)[:2] != release(want)[:2]:
            problems.append(f'torchvision {tv} does not pair with torch '
                            f'{found["torch"]} (torch 2.N pairs with '
                            f'torchvision 0.(N+15): {want}.x)')
        # torch is compiled against the numpy C API of its time: numpy 2
        # needs torch >= 2.3, and the pins of torch > 2.0 hold numpy 2
        numpy, torch = found.get('numpy'), release(found['torch'])[:2]
        if numpy and release(numpy)[0] >= 2 and torch < (2, 3) \
                or not numpy and (2, 0) < torch < (2, 3):
            problems.append(f'torch {found["torch"]} (< 2.3) needs numpy 1, '
                            f'found {numpy or "none"}: install '
                            f'numpy>=1.24.4,<2')
    if problems:
        raise ExistingTorchError(
            'the existing environment is outside the supported range:\n  '
            + '\n  '.join(problems))
    d = Decision()
    pins = choose_pins(found['python'], found['torch'])
    d.variables['KEPT'] = kept(found)
    d.variables.update(TORCH=found['torch'],
                       TORCHVISION=found['torchvision'],
                       NUMPY=found.get('numpy') or '', PINS=pins)
    gpus = parse_gpus(smi) if smi else []
    d.variables['MMHATNET_GPU_KEY'] = ('sm' + '-'.join(
        sorted({g.arch for g in gpus}, key=release)) if gpus else '')
    d.notes.append(
        f'keeping Python {found["python"]}, torch {found["torch"]}, '
        f'torchvision {found["torchvision"]}, numpy '
        f'{found.get("numpy") or "(none: from the pins)"}; the rest pinned '
        f'by {pins}')
    return d


def kept(found: Mapping[str, str | None]) -> str:
    """What the set-up must leave as it is: 'torch==X torchvision==Y
    numpy==Z' (numpy only where it was installed)."""
    return ' '.join(f'{n}=={found[n]}' for n in ('torch', 'torchvision',
                                                   'numpy') if found.get(n))


# --- the command line: gather the facts, print the decision --------------

def installed(names: Sequence[str]) -> dict[str, str | None]:
    """This Python's version and its installed versions of ``names``."""
    from importlib import metadata
    found = {'python': '.'.join(map(str, sys.version_info[:3]))}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            # on sys.path without package metadata (a PYTHONPATH install)
            found[name] = _imported_version(name)
    return found


def _imported_version(name: str) -> str | None:
    import importlib
    import importlib.util
    if importlib.util.find_spec(name) is None:
        return None
    return getattr(importlib.import_module(name), '__version__', None)


def from_freeze(lines: Sequence[str], python: str) -> dict[str, str | None]:
    """What :func:`installed` reads, from another machine's ``pip list
    --format=freeze`` and Python version."""
    versions = {}
    for line in lines:
        name, sep, version = line.strip().partition('==')
        if sep:
            versions[name.strip().lower().replace('_', '-')] = version.strip()
    return {'python': python, **{n: versions.get(n) for n in NAMES}}


NAMES = ('torch', 'torchvision', 'numpy')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kept', action='store_true',
                        help='print what the set-up keeps, as it is now')
    parser.add_argument('--freeze', help="decide for another machine: its "
                        "`pip list --format=freeze` (with --python-version)")
    parser.add_argument('--python-version', help="that machine's Python")
    args = parser.parse_args(argv)
    if args.freeze and not args.python_version:
        parser.error('--freeze needs --python-version')
    if args.kept:  # after the set-up: is it all still there?
        print(kept(installed(NAMES)))
        return 0
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        ranges = setup_ranges(f.read())
    where = sys.executable
    try:
        if args.freeze:
            where = args.freeze
            with open(args.freeze, encoding='utf-8') as f:
                found = from_freeze(f.read().splitlines(),
                                    args.python_version)
            d = decide(found, ranges)
        else:
            d = decide(installed(NAMES), ranges, read_smi())
    except (ExistingTorchError, GpuEnvError) as e:
        print(f'[setup] MMHATNET_TORCH=existing ({where}) stopped: {e}',
              file=sys.stderr)
        return 1
    print(d.shell())
    return 0


if __name__ == '__main__':
    sys.exit(main())
