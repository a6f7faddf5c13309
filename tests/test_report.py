"""``tools/check.py --report FILE`` (``bash tools/run.sh check --report
FILE``): the CPU version end to end -- self-check, benchmark, 1-process
dist_train.sh + dist_test.sh -- into one Markdown report."""
import os
import re
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, 'tools', 'check.py')


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the GPU workload takes minutes per GPU')
def test_report_on_cpu(tmp_path):
    report = tmp_path / 'out' / 'report.md'
    env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONUNBUFFERED='1')
    # --train with no family: the 1-process dist_train.sh trains already
    proc = subprocess.run([sys.executable, CHECK, '--train', '--report',
                           str(report)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    text = report.read_text()
    for section in ('# mmhatnet check report', '## Environment',
                    '## Verdicts', '## Self-check', '## Benchmark',
                    '## Train and test'):
        assert re.search(rf'^{re.escape(section)}$', text, re.M), section
    for line in (f'- torch: {torch.__version__}', '- mmcv: ', '- mmdet: ',
                 '- mmsegmentation: ', '- mmengine: ', '- nvidia-smi: '):
        assert line in text, line
    assert 'CPU only (no GPU): **all steps passed**' in text
    verdicts = re.findall(r'^- (.+): \*\*(passed|FAILED)\*\* \((.*)\)',
                          text, re.M)
    assert [v[0] for v in verdicts] == [
        'self-check', 'benchmark tiny 64x64 batch 1 fp32 on cpu',
        '1-process tools/dist_train.sh retinanet tiny, 2 iterations',
        '1-process tools/dist_test.sh on its checkpoint'], verdicts
    assert all(v[1] == 'passed' for v in verdicts), verdicts
    assert 'coco/bbox_mAP' in verdicts[-1][2]
    assert re.search(r'^- total wall time: \d+ s$', text, re.M)
    # the benchmark table: every model, with the ratios and memory
    for model in ('hatnet', 'release_baseline', 'pvtv2_b2', 'swin_t'):
        assert re.search(rf'^{model} ', text, re.M), model
    assert 'mem MB' in text
    assert '[report] all steps passed' in proc.stdout


def test_a_failed_step_fails_the_report(tmp_path, monkeypatch):
    """A step that fails is a FAILED verdict with its reason, and the exit
    status is 1; the other steps still run and are reported."""
    from mmhatnet import selfcheck

    def broken(root, work):
        raise RuntimeError('no launcher here')

    monkeypatch.setattr(selfcheck, 'dist_steps', broken)
    monkeypatch.setattr(selfcheck, 'benchmark_steps', lambda: (
        [selfcheck.Step('benchmark x', True, 'fine', 1.0)], []))
    monkeypatch.setattr(selfcheck, 'run_checks',
                        lambda root, list_gpus, families: [
                            selfcheck.Row('mmcv nms', 'cpu', 'ok', '')])
    report = tmp_path / 'r.md'
    assert selfcheck.main(['--report', str(report)], ROOT,
                          lambda: None) == 1
    text = report.read_text()
    assert '- self-check: **passed** (1 checks ok)' in text
    assert '- benchmark x: **passed** (fine)' in text
    assert ('- 1-process dist_train.sh + dist_test.sh: **FAILED** '
            '(RuntimeError: no launcher here)') in text
    assert '**FAILED**, total wall time' in text
