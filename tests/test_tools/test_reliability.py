"""Interrupted and broken runs, through tools/train.py on generated data."""
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from e2e import ROOT, config, environment, run, small_options, tool
from mmhatnet.demo.data import make_demo_data
from mmhatnet.engine import load_untrusted

pytestmark = pytest.mark.e2e
# decided by torch and mmengine alone: the common stack runs these for the
# Python 3.8 one (pytest.ini)
torch_mmengine = pytest.mark.torch_mmengine

DETERMINISTIC = ['randomness.deterministic=True', 'randomness.seed=0']
RESUME_CASES = {
    # iteration-based: 6 iterations, a checkpoint every 2
    'fpn': ('ade', ['train_cfg.max_iters=6', 'train_cfg.val_interval=100',
                    'default_hooks.checkpoint.interval=2'],
            'iter_2.pth', 'iter_6.pth'),
    # epoch-based: 3 epochs of 2 iterations, a checkpoint every epoch
    'retinanet': ('coco', ['train_cfg.max_epochs=3',
                           'train_cfg.val_interval=100'],
                  'epoch_1.pth', 'epoch_3.pth'),
}


def _train_cmd(family, work, extra):
    return [sys.executable, os.path.join(ROOT, 'tools', 'train.py'),
            config(family), '--work-dir', str(work),
            *small_options(family, *DETERMINISTIC, *extra)]


def _kill_after(cmd, cwd, path, timeout=600):
    """Start ``cmd``, SIGKILL it as soon as ``path`` exists."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=environment(threads=1),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, f'run ended before writing {path}'
        assert time.time() < deadline, f'no {path} after {timeout} s'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assert_same_state(a, b):
    for key in ('state_dict', ):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], rtol=0,
                                       atol=0, msg=k)
    opt_a, opt_b = a['optimizer']['state'], b['optimizer']['state']
    assert opt_a.keys() == opt_b.keys()
    for i in opt_a:
        for k in opt_a[i]:
            torch.testing.assert_close(opt_a[i][k], opt_b[i][k], rtol=0,
                                       atol=0)
    assert a['optimizer']['param_groups'] == b['optimizer']['param_groups']
    assert a['param_schedulers'] == b['param_schedulers']
    for k in ('iter', 'epoch'):
        assert a['meta'][k] == b['meta'][k]


@torch_mmengine
@pytest.mark.parametrize('family', RESUME_CASES)
def test_killed_run_resumes_exactly(tmp_path, family):
    """Bit-exact, single-threaded: multi-threaded CPU reductions may round
    differently from run to run, resumed or not."""
    data, extra, first, last = RESUME_CASES[family]
    make_demo_data(tmp_path, [data], num_train=4, num_val=2)
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    # the uninterrupted run beside the killed one: each takes one core
    log = tmp_path / 'full.log'
    with open(log, 'w') as f:
        reference = subprocess.Popen(
            _train_cmd(family, full, extra), cwd=tmp_path,
            env=environment(threads=1), stdout=f, stderr=subprocess.STDOUT)
        try:
            _kill_after(_train_cmd(family, killed, extra), tmp_path,
                        killed / first)
            assert reference.wait(timeout=600) == 0, log.read_text()[-5000:]
        finally:  # on a failure, not left training beside the next tests
            reference.kill()
    assert not (killed / last).exists()
    resumed = run(_train_cmd(family, killed, extra) + ['--resume'],
                  cwd=tmp_path, threads=1)
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()
    _assert_same_state(load_untrusted(str(full / last)),
                       load_untrusted(str(killed / last)))


_DIE_IN_SECOND_SAVE = """
import os, runpy, signal, sys
from mmhatnet.engine import fileio
saves = []
real_fsync = os.fsync
def fsync(fd):
    saves.append(fd)
    if len(saves) == 2:  # the temporary file of epoch_2.pth is half-written
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
fileio.os.fsync = fsync
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@torch_mmengine
def test_kill_during_save_keeps_the_last_complete_checkpoint(tmp_path):
    make_demo_data(tmp_path, ['coco'], num_train=4, num_val=2)
    work = tmp_path / 'work'
    extra = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=100']
    cmd = _train_cmd('retinanet', work, extra)
    proc = run([sys.executable, '-c', _DIE_IN_SECOND_SAVE, *cmd[1:]],
               cwd=tmp_path, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not (work / 'epoch_2.pth').exists()
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    load_untrusted(str(work / 'epoch_1.pth'))
    resumed = run(cmd + ['--resume'], cwd=tmp_path)
    assert 'epoch_1.pth' in resumed.stdout + resumed.stderr
    assert load_untrusted(str(work / 'epoch_2.pth'))['meta'][
        'epoch'] == 2


def test_non_finite_loss_stops_before_saving(tmp_path):
    make_demo_data(tmp_path, ['ade'], num_train=4, num_val=2)
    work = tmp_path / 'work'
    # a zero std makes the normalised input infinite, the loss NaN
    proc = tool('train.py', config('fpn'), '--work-dir', str(work),
                *small_options('fpn', 'model.data_preprocessor.std=[0,0,0]',
                               'default_hooks.checkpoint.interval=1'),
                cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert 'FloatingPointError: non-finite loss at iteration 1' in \
        proc.stderr
    assert not [f for f in os.listdir(work) if f.endswith('.pth')]


@pytest.mark.parametrize('options, message', [
    (['model.backbone.init_cfg.checkpoint=checkpoints/hatnet_tiny_in1k.pth'],
     "model.backbone.init_cfg.checkpoint 'checkpoints/hatnet_tiny_in1k.pth' "
     'does not exist'),
    (['model.backbone.init_cfg=None', 'model.neck.in_channels=[1,2,3,4]'],
     r'set model.neck.in_channels=\[48, 96, 240, 384\]'),
    (['model.backbone.init_cfg=None', 'model.backbone.arch=huge'],
     "unknown HATNet arch 'huge'"),
])
def test_bad_config_fails_before_training(tmp_path, options, message):
    proc = tool('train.py', config('retinanet'), '--work-dir',
                str(tmp_path / 'w'), *(['--cfg-options', *options]
                                       if options else []),
                cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert re.search(message, proc.stderr)
    assert not (tmp_path / 'w').exists()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('where', ['init_cfg', 'resume'])
def test_code_running_checkpoint_is_refused(tmp_path, where):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': _Exploit(marker)}}, evil)
    option = (['--cfg-options', f'model.backbone.init_cfg.checkpoint={evil}']
              if where == 'init_cfg' else
              ['--resume', str(evil), '--cfg-options',
               'model.backbone.init_cfg=None'])
    proc = tool('train.py', config('fpn'), '--work-dir', str(tmp_path / 'w'),
                *option, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert 'refused: its pickle asks for code' in proc.stderr
    assert not marker.exists()


def _dist(tmp_path, script, *args):
    """tools/``script`` (dist_train.sh or dist_test.sh) with 2 CPU processes
    (gloo); output to a log."""
    env = environment(threads=1)
    env.update(PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000))
    log = tmp_path / f'{script}.log'
    with open(log, 'w') as f:
        return subprocess.Popen(['bash', os.path.join(ROOT, 'tools', script),
                                 *args], cwd=tmp_path, env=env, stdout=f,
                                stderr=subprocess.STDOUT), log


def _dist_train(tmp_path, work, *extra):
    return _dist(tmp_path, 'dist_train.sh', config('retinanet'), '2',
                 '--work-dir', str(work),
                 *small_options('retinanet', 'env_cfg.dist_cfg.backend=gloo',
                                *extra))


@torch_mmengine
def test_dist_train_then_dist_test_two_processes(tmp_path):
    make_demo_data(tmp_path, ['coco'], num_train=4, num_val=2)
    proc, log = _dist_train(tmp_path, tmp_path / 'work',
                            'train_cfg.max_epochs=1')
    proc.wait(timeout=900)
    out = log.read_text()
    assert proc.returncode == 0, out[-5000:]
    # 4 images, 2 per process and batch: one iteration per epoch
    assert re.search(r'Epoch\(train\) \[1\]\[1/1\]', out), out[-3000:]
    assert 'coco/bbox_mAP' in out
    checkpoint = tmp_path / 'work' / 'epoch_1.pth'
    load_untrusted(str(checkpoint))

    proc, log = _dist(tmp_path, 'dist_test.sh', config('retinanet'),
                      str(checkpoint), '2', '--work-dir',
                      str(tmp_path / 'test'),
                      *small_options('retinanet',
                                     'env_cfg.dist_cfg.backend=gloo'))
    proc.wait(timeout=600)
    out = log.read_text()
    assert proc.returncode == 0, out[-5000:]
    # the 2 validation images, one per process
    assert re.search(r'Epoch\(test\) \[1/1\]', out), out[-3000:]
    assert 'coco/bbox_mAP' in out


@torch_mmengine
def test_killed_worker_stops_the_job(tmp_path):
    make_demo_data(tmp_path, ['coco'], num_train=4, num_val=2)
    proc, log = _dist_train(tmp_path, tmp_path / 'work',
                            'train_cfg.max_epochs=50')
    launcher = psutil.Process(proc.pid)
    deadline = time.time() + 600
    while 'Epoch(train)' not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.5)
    workers = [p for p in launcher.children(recursive=True)
               if 'train.py' in ' '.join(p.cmdline())]
    assert len(workers) == 2
    workers[1].kill()
    killed = time.time()
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert time.time() - killed < 120
    assert not workers[0].is_running() or \
        workers[0].status() == psutil.STATUS_ZOMBIE
