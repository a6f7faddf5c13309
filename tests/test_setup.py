"""setup.py declares what is tested: installing mmhatnet into each tested
stack, with every toolbox extra, keeps that environment's packages (torch,
mmcv, the toolboxes) and installs nothing but mmhatnet itself."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_installing_into_this_stack_replaces_nothing(tmp_path):
    # --no-index: a requirement this environment does not already satisfy
    # fails the resolution instead of being downloaded
    report = tmp_path / 'report.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
         '--no-build-isolation', '--disable-pip-version-check',
         '--report', str(report), '-e', f'{ROOT}[all]'],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    installs = json.loads(report.read_text())['install']
    names = [item['metadata']['name'] for item in installs]
    assert names == ['mmhatnet'], names
