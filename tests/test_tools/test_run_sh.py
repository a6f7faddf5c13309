"""``bash tools/run.sh test`` (what CI runs) exits 0 only when every
stack's set-up and suite passed, and names the stacks that did not.

A copy of run.sh runs in a scratch checkout whose ``tools/setup_env.sh``
makes each stack's venv a wrapper of this interpreter (or fails for the
stacks listed in FAIL_SETUP), so what is tested is run.sh's own logic: the
background set-ups, the waits, the summary and the exit status."""
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

SETUP = f"""#!/usr/bin/env bash
case $1 in newest) v=.venv ;; common) v=.venv-common ;; py38) v=.venv-py38 ;;
esac
case " ${{FAIL_SETUP:-}} " in *" $1 "*) echo "no $1 here" >&2; exit 3 ;; esac
mkdir -p "$v/bin"
printf '#!/bin/sh\\nexec {sys.executable} "$@"\\n' > "$v/bin/python"
chmod +x "$v/bin/python"
"""


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / 'tools').mkdir()
    shutil.copy(os.path.join(ROOT, 'tools', 'run.sh'), tmp_path / 'tools')
    setup = tmp_path / 'tools' / 'setup_env.sh'
    setup.write_text(SETUP)
    setup.chmod(setup.stat().st_mode | stat.S_IXUSR)
    (tmp_path / 'test_passes.py').write_text('def test_passes():\n    pass\n')
    return tmp_path


def _run(checkout, *args, **env):
    return subprocess.run(
        ['bash', 'tools/run.sh', 'test', '-p', 'no:cacheprovider', *args],
        cwd=checkout, capture_output=True, text=True, timeout=300,
        env={**os.environ, 'MMHATNET_STACKS': 'newest common py38', **env})


def test_all_passed_exits_0(checkout):
    proc = _run(checkout, 'test_passes.py')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stack in ('newest', 'common', 'py38'):
        assert f'[test] {stack} stack: set-up' in proc.stdout
    assert proc.stdout.count('1 passed') == 6  # pytest's line, the summary
    assert 'failed on' not in proc.stderr


def test_a_failed_suite_or_set_up_exits_1_and_names_it(checkout):
    proc = _run(checkout, 'test_passes.py', '--co', '-k', 'no_such_test',
                FAIL_SETUP='common')
    assert proc.returncode == 1
    assert '[test] common stack: set-up failed (3)' in proc.stdout
    assert 'no common here' in proc.stdout  # its log, printed
    # pytest exits 5 when no test ran: a failure too
    assert '[test] failed on: newest common py38' in proc.stderr
