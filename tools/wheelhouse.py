"""Which wheels a target needs, for ``tools/make_wheelhouse.sh``.

Of the distributions pip resolved for the stack (``pip install --dry-run
--report``), all but those the target already has at a version that every
requirement on them admits: the target's own pip keeps those. What the
target has is its ``python -m pip list --format=freeze`` (``--have``).

Needs ``packaging``, or the copy vendored in pip, which runs this.

Usage (what make_wheelhouse.sh runs)::

    python tools/wheelhouse.py needed REPORT.json REQS... \
        --python-version 3.11 --machine x86_64 [--have FREEZE]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a login node's Python with pip alone
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name


def read_freeze(lines: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` from ``pip list --format=freeze`` (or ``pip
    freeze``: its ``name @ url`` lines carry no version and are left
    out)."""
    have = {}
    for line in lines:
        name, sep, version = line.strip().partition('==')
        if sep and not name.startswith(('#', '-')):
            have[canonicalize_name(name)] = version.strip()
    return have


def marker_env(python_version: str, machine: str) -> dict[str, str]:
    """The markers of a Linux CPython ``python_version`` on ``machine``."""
    return {'python_version': python_version,
            'python_full_version': python_version + '.0',
            'sys_platform': 'linux', 'platform_system': 'Linux',
            'os_name': 'posix', 'platform_machine': machine,
            'implementation_name': 'cpython',
            'platform_python_implementation': 'CPython'}


def _applies(req: Requirement, env: Mapping[str, str],
             extras: Sequence[str] = ()) -> bool:
    return req.marker is None or any(
        req.marker.evaluate(dict(env, extra=e)) for e in ('', *extras))


#: Always carried: a venv made over the target (MMHATNET_TORCH=existing)
#: has its own setuptools and wheel, which hide the target's; and an
#: isolated build environment sees none of the target's packages (pip <
#: 23.1 installs mmhatnet editable through setuptools' ``develop``, which
#: runs pip again, isolated: setuptools, wheel and wheel's packaging).
ALWAYS = ('setuptools', 'wheel', 'packaging')


def needed(report: Mapping, top: Iterable[str], have: Mapping[str, str],
           env: Mapping[str, str]) -> list[str]:
    """``name==version`` of each distribution in pip's ``report`` that the
    target lacks, or has at a version some requirement rejects (the
    top-level requirement lines ``top``, or a resolved distribution's
    ``Requires-Dist``), and those of :data:`ALWAYS`."""
    specs: dict[str, list] = {}

    def require(req: Requirement) -> None:
        specs.setdefault(canonicalize_name(req.name), []).append(
            req.specifier)

    for line in top:
        line = line.split('#')[0].strip()
        if line and not line.startswith('-'):
            req = Requirement(line)
            if _applies(req, env):
                require(req)
    items = report['install']
    for item in items:
        extras = item.get('requested_extras') or ()
        for line in item['metadata'].get('requires_dist') or ():
            req = Requirement(line)
            if _applies(req, env, extras):
                require(req)
    out = []
    for item in items:
        name = canonicalize_name(item['metadata']['name'])
        version = item['metadata']['version']
        kept = have.get(name)
        if kept is not None and name not in ALWAYS and all(
                s.contains(kept, prereleases=True)
                for s in specs.get(name, ())):
            continue
        out.append(f'{name}=={version}')
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='step', required=True)
    n = sub.add_parser('needed', help='name==version per line')
    n.add_argument('report', help="pip install --dry-run's --report")
    n.add_argument('requirements', nargs='+', help='requirement files')
    n.add_argument('--python-version', required=True)
    n.add_argument('--machine', default='x86_64')
    n.add_argument('--have', help='the target\'s pip list --format=freeze')
    args = parser.parse_args(argv)
    with open(args.report, encoding='utf-8') as f:
        report = json.load(f)
    top = []
    for path in args.requirements:
        with open(path, encoding='utf-8') as f:
            top += f.read().splitlines()
    have = {}
    if args.have:
        with open(args.have, encoding='utf-8') as f:
            have = read_freeze(f)
    print('\n'.join(needed(report, top, have,
                           marker_env(args.python_version, args.machine))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
