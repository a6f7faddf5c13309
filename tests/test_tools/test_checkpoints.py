"""Checkpoints across the newest and the common stack, both ways, and resume
from the newest complete checkpoint under `mim train`.

For Semantic FPN (mmseg, iteration-based) and Mask R-CNN (mmdet,
epoch-based), on generated data, one chain of runs whose checkpoints carry
the optimizer, the schedulers and the message hub:
1. this stack trains A (tools/train.py);
2. the other stack tests A (tools/test.py: every weight loads, the metrics
   of A's own validation) and resumes it (`mim train --resume`): B;
3. this stack tests B and resumes it (`mim train --resume`): C.
Before each resume, ``last_checkpoint`` is made to fail as a kill leaves it:
missing, empty, naming a missing file, naming a truncated one.

Run by the common stack, with the newest stack's venv as the other one (set
up first by tools/run.sh), in place of its own train + test of these two
models (tests/test_tools/test_train_test.py); either venv can drive the
other. Without the other venv the chain runs on this stack alone, and the
cross-stack tests skip.
"""
import os
import sys

import pytest

from e2e import ROOT, config, metric, run, small_options
from mmhatnet.demo.data import make_demo_data
from mmhatnet.engine import load_untrusted

pytestmark = [pytest.mark.e2e, pytest.mark.cross_stack]

VENVS = {'.venv': 'newest', '.venv-common': 'common'}
HERE = next((name for name in VENVS if os.path.realpath(sys.prefix)
             == os.path.realpath(os.path.join(ROOT, name))), None)
OTHER_VENV = {'.venv': '.venv-common', '.venv-common': '.venv'}.get(HERE)
OTHER = (os.path.join(ROOT, OTHER_VENV, 'bin', 'python')
         if OTHER_VENV else None)
if OTHER and not os.path.isfile(OTHER):
    OTHER = None
# the stacks this run of tools/run.sh set up (a venv left from an earlier
# one may be stale)
if OTHER and os.environ.get('MMHATNET_STACKS') and VENVS[OTHER_VENV] not in \
        os.environ['MMHATNET_STACKS'].split():
    OTHER = None
cross = pytest.mark.skipif(
    OTHER is None, reason=f'needs the other stack: {OTHER_VENV or ".venv"} '
    f'in the checkout, set up by tools/run.sh in this run (MMHATNET_STACKS '
    f'names both newest and common, or is unset)')

CHAINS = {
    # family: toolbox, data, step option, A, B, C, the metrics compared,
    # and how last_checkpoint fails before each resume
    'fpn': ('mmseg', 'ade', 'train_cfg.max_iters={}', (2, 4, 6),
            'iter_{}.pth', ['aAcc', 'mIoU'], ('missing', 'empty')),
    'mask-rcnn': ('mmdet', 'coco', 'train_cfg.max_epochs={}', (1, 2, 3),
                  'epoch_{}.pth', ['coco/bbox_mAP', 'coco/segm_mAP'],
                  ('names a missing file', 'names a truncated file')),
}
# the same percentages from another torch may round differently
TOLERANCE = {'aAcc': 0.5, 'mIoU': 0.5}


def _python(stack):
    return OTHER if stack == 'other' and OTHER else sys.executable


def _break_last_checkpoint(work, how, name):
    marker = work / 'last_checkpoint'
    if how == 'missing':
        marker.unlink()
    elif how == 'empty':  # killed between mmengine's open('w') and write
        marker.write_text('')
    elif how == 'names a missing file':
        marker.write_text(str(work / 'epoch_9.pth'))
    else:  # a save cut short, without the atomic backend
        data = (work / marker.read_text().strip()).read_bytes()
        (work / name).write_bytes(data[:len(data) // 2])
        marker.write_text(str(work / name))


@pytest.fixture(scope='module', params=CHAINS)
def chain(request, tmp_path_factory):
    family = request.param
    toolbox, data, step, (a, b, c), name, metrics, breaks = CHAINS[family]
    tmp = tmp_path_factory.mktemp(family)
    make_demo_data(tmp, [data], num_train=4, num_val=1)
    work = tmp / 'work'
    every_2 = (['train_cfg.val_interval=2',
                'default_hooks.checkpoint.interval=2']
               if family == 'fpn' else [])

    def opts(n):
        return small_options(family, step.format(n), *every_2)

    out = {'family': family, 'work': work, 'name': name, 'steps': (a, b, c),
           'metrics': metrics}

    def train(stack, n, *resume):
        python = _python(stack)
        if resume:
            cmd = [os.path.join(os.path.dirname(python), 'mim'), 'train',
                   toolbox, config(family), '--work-dir', str(work),
                   '--resume']
        else:
            cmd = [python, os.path.join(ROOT, 'tools', 'train.py'),
                   config(family), '--work-dir', str(work)]
        proc = run(cmd + opts(n), cwd=tmp)
        return proc.stdout + proc.stderr

    def test(stack, n):
        proc = run([_python(stack), os.path.join(ROOT, 'tools', 'test.py'),
                    config(family), str(work / name.format(n)),
                    '--work-dir', str(tmp / f'test_{n}'), *opts(n)],
                   cwd=tmp)
        return proc.stdout + proc.stderr

    out['train A'] = train('this', a)
    out['test A'] = test('other', a)
    _break_last_checkpoint(work, breaks[0], name.format(b))
    out['resume A'] = train('other', b, 'resume')
    out['test B'] = test('this', b)
    _break_last_checkpoint(work, breaks[1], name.format(c))
    out['resume B'] = train('this', c, 'resume')
    return out


def _metrics(output, names):
    return {n: metric(output, n) for n in names}


def _assert_same_metrics(tested, validated, names):
    got, want = _metrics(tested, names), _metrics(validated, names)
    for n in names:
        assert abs(got[n] - want[n]) <= TOLERANCE.get(n, 0.005), (got, want)


def _assert_resumed(out, run_key, start, end):
    """The run resumed from ``start`` and saved ``end`` with the state of
    every step before: optimizer steps, scheduler steps, the message
    hub's history."""
    work, name = out['work'], out['name']
    assert f'from the latest checkpoint {work / name.format(start)}' in \
        out[run_key]
    saved = load_untrusted(str(work / name.format(end)))
    total = saved['meta']['iter']
    a = out['steps'][0]
    first = load_untrusted(str(work / name.format(a)))['meta']['iter']
    assert total > first
    for state in saved['optimizer']['state'].values():
        assert int(state['step']) == total
    for group in saved['optimizer']['param_groups']:
        # torch >= 2.7 keeps AdamW's decoupling in the group: a group from
        # torch 2.0 must come back decoupled
        assert group.get('decoupled_weight_decay', True)
    for scheduler in saved['param_schedulers']:
        assert scheduler['last_step'] == (saved['meta']['epoch']
                                          if scheduler['by_epoch'] else total)
    assert len(saved['message_hub']['log_scalars']['train/loss']
               ._log_history) == total


def test_trains_and_tests_on_this_stack(chain):
    """What tests/test_train_test.py checks for the other families (the
    stack that drives the chain does not run it for these two)."""
    for key in ('train A', 'test B'):
        for value in _metrics(chain[key], chain['metrics']).values():
            assert 0 <= value <= 100
    a = chain['work'] / chain['name'].format(chain['steps'][0])
    assert any(k.startswith('backbone.blocks.3.')
               for k in load_untrusted(str(a))['state_dict'])
    assert not [p for p in os.listdir(chain['work']) if p.endswith('.tmp')]


@cross
def test_checkpoint_tests_and_resumes_on_the_other_stack(chain):
    a, b, _ = chain['steps']
    assert 'do not match exactly' not in chain['test A']
    _assert_same_metrics(chain['test A'], chain['train A'], chain['metrics'])
    _assert_resumed(chain, 'resume A', a, b)


@cross
def test_the_other_stacks_checkpoint_tests_and_resumes_here(chain):
    _, b, c = chain['steps']
    assert 'do not match exactly' not in chain['test B']
    _assert_same_metrics(chain['test B'], chain['resume A'],
                         chain['metrics'])
    _assert_resumed(chain, 'resume B', b, c)


def test_mim_resume_takes_the_newest_complete_checkpoint(chain):
    """`mim train <toolbox> --resume` (the toolbox's own train script) with
    last_checkpoint missing, empty, naming a missing or a truncated file."""
    breaks = CHAINS[chain['family']][-1]
    whys = {'missing': 'does not exist', 'empty': 'is empty',
            'names a missing file': 'which does not exist',
            'names a truncated file': 'which is incomplete'}
    for key, how in zip(('resume A', 'resume B'), breaks):
        assert whys[how] in chain[key]
        assert 'resuming from the newest complete checkpoint' in chain[key]
