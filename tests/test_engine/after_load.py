"""Checkpoints whose contents attack what reads them after the load, and
the in-process entry points they reach, each attempt in a forked child.

``build(folder, marker, benign)`` writes one file per attack, made from
the benign resume checkpoint ``benign`` of :func:`toy_config`'s run; the
pickles of the deep and shared seeds are patched in as opcodes.
``attempt_all(cases, entries, ...)`` runs each file through each entry
point in a child under a 1 GiB memory cap, a 30 s CPU cap and a 90 s wall
clock, and returns what happened: 'ran ...' (it resumed, or built), 'refused:
...' (CheckpointError), 'failed: ...' (another exception, e.g. an
inferencer that finds no config), or 'error: ...' (a signal, a hang, a
marker written, or a class or function of the process changed).
"""
from __future__ import annotations

import io
import os
import struct
import sys
import traceback
import zipfile

import torch
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS

import attack_harness
from mmhatnet.engine import CheckpointError


@MODELS.register_module()
class AfterLoadToy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        return {'loss': out.pow(2).mean()} if mode == 'loss' else out


@DATASETS.register_module()
class AfterLoadToyData(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {'inputs': torch.linspace(-1, 1, 4) * (i + 1)}


def toy_config(work_dir: str, **extra) -> dict:
    """A real mmengine run of 4 iterations: AdamW, LinearLR, StepSeedHook,
    a checkpoint every 2 iterations."""
    return dict(
        model=dict(type='AfterLoadToy'), work_dir=work_dir,
        train_dataloader=dict(
            dataset=dict(type='AfterLoadToyData'), batch_size=2,
            num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5,
                             by_epoch=False, begin=0, end=4),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=[dict(type='StepSeedHook')],
        custom_imports=dict(imports=['mmhatnet'], allow_failed_imports=False),
        randomness=dict(seed=0), env_cfg=dict(cudnn_benchmark=False),
        log_level='WARNING', **extra)


def train(config: dict):
    from mmengine.config import Config
    from mmengine.runner import Runner
    runner = Runner.from_cfg(Config(config))
    runner.train()
    return runner


# --- the corpus -------------------------------------------------------------
def payloads(marker: str, folder: str) -> dict:
    """Config texts that run code when executed, each by another door."""
    touch = f"__import__('os').system('touch {marker}')"
    evil_base = os.path.join(folder, 'evil_base.py')
    with open(evil_base, 'w') as f:
        f.write(f'x = {touch}\n')
    with open(os.path.join(folder, 'after_load_evil_module.py'), 'w') as f:
        f.write(f'{touch}\n')
    return {
        # plain code in the text
        'config_code': f"model = dict(type='AfterLoadToy')\n"
                       f"work_dir = {touch} or 'w'\n",
        # a literal-looking text whose _base_ is a file that runs code
        'config_base': f"_base_ = [{evil_base!r}]\nmodel = dict(type='X')\n",
        # custom_imports of a module that runs code at import
        'config_imports': "custom_imports = dict(imports=["
                          "'after_load_evil_module'])\n",
    }


def _save(obj, path: str) -> None:
    torch.save(obj, path)


def _patch(path: str, placeholder: str, opcodes: bytes) -> None:
    """Replace the string ``placeholder`` in the file's data.pkl with
    ``opcodes``, the zip written again with stored records."""
    with zipfile.ZipFile(path) as z:
        records = [(i, z.read(i)) for i in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
        for info, data in records:
            if info.filename.endswith('data.pkl'):
                text = placeholder.encode()
                short = b'\x8c' + bytes([len(text)]) + text  # protocol 4+
                long = b'X' + struct.pack('<I', len(text)) + text
                old = short if short in data else long
                assert data.count(old) == 1, placeholder
                data = data.replace(old, opcodes)
            z.writestr(info.filename, data)
    with open(path, 'wb') as f:
        f.write(out.getvalue())


def deep_tuple(levels: int) -> bytes:
    return b')' + b'\x85' * levels  # EMPTY_TUPLE, TUPLE1 ...


def shared_tuples(levels: int) -> bytes:
    """A tuple of two references to a tuple of two references ... : 2**n
    leaves through ``levels`` memo entries (LONG_BINPUT, POP, LONG_BINGET
    twice, TUPLE2 ...)."""
    def put(n):
        return b'r' + struct.pack('<I', 900000 + n) + b'0'

    def get(n):
        return b'j' + struct.pack('<I', 900000 + n)
    out = b')' + put(0)
    for n in range(levels):
        out += get(n) + get(n) + b'\x86' + put(n + 1)
    return out + get(levels)


def build(folder: str, marker: str, benign: str) -> list:
    """One file per attack, made from the benign checkpoint; returns the
    case names (file name without .pth)."""
    ckpt = torch.load(benign, weights_only=False)  # our own, trusted
    names = []

    def case(name, mutate, patch=None):
        c = torch.load(benign, weights_only=False)
        mutate(c)
        path = os.path.join(folder, name + '.pth')
        _save(c, path)
        if patch:
            _patch(path, *patch)
        names.append(name)

    for name, text in payloads(marker, folder).items():
        def put(c, text=text):
            c['meta']['config'] = c['meta']['cfg'] = text
            c['message_hub']['runtime_info']['cfg'] = text
        case(name, put)

    def fused(c, undersized=True):
        for group in c['optimizer']['param_groups']:
            group['fused'] = True
        if undersized:
            for state in c['optimizer']['state'].values():
                state['exp_avg'] = state['exp_avg_sq'] = torch.zeros(1)
    case('fused_undersized_state', fused)
    case('fused_switch', lambda c: fused(c, undersized=False))

    def seed(key, placeholder):
        return lambda c: c['meta'].__setitem__(key, placeholder)
    case('seed_deep_tuple', seed('seed', 'PLACEHOLDER_DEEP'),
         ('PLACEHOLDER_DEEP', deep_tuple(10**6)))
    case('step_seed_shared_tuples', seed('step_seed', 'PLACEHOLDER_DAG'),
         ('PLACEHOLDER_DAG', shared_tuples(60)))
    def keys(c):  # mmengine checks each resumed key against a new set
        for section, value in (('runtime_info', 0), ('resumed_keys', True)):
            c['message_hub'][section].update(
                {f'k{i}': value for i in range(100000)})
    case('message_hub_100k_keys', keys)
    case('scheduler_param_name', lambda c: c['param_schedulers'][0].update(
        param_name='fused'))
    case('scheduler_attribute', lambda c: c['param_schedulers'][0].update(
        optimizer=None))

    def alias(c):
        sd = c['state_dict']
        weight = sd['linear.weight']
        sd['linear.bias'] = weight.view(-1)[:2]  # shares the weight's bytes
        sd._metadata = {k: dict(v, assign_to_params_buffers=True)
                        for k, v in sd._metadata.items()}
    case('metadata_assign', alias)
    del ckpt
    return names


# --- the entry points -------------------------------------------------------
def _aliased(model) -> bool:
    params = list(model.parameters())
    ptrs = {p.untyped_storage().data_ptr() for p in params}
    return len(ptrs) != len(params)


def resume(source: str, work_dir: str) -> str:
    runner = train(toy_config(work_dir, resume=True, load_from=source))
    model = runner.model
    fused = [g.get('fused') for g in runner.optim_wrapper.param_groups]
    if any(fused):
        return f'error: the run switched to fused={fused}'
    if _aliased(model):
        return 'error: parameters alias each other after the load'
    return f'ran to iteration {runner.iter}'


def resume_by_search(source: str, work_dir: str) -> str:
    os.makedirs(work_dir, exist_ok=True)
    planted = os.path.join(work_dir, 'iter_9.pth')
    with open(source, 'rb') as f, open(planted, 'wb') as g:
        g.write(f.read())
    with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(planted)
    return resume(None, work_dir)


def det_inferencer(source: str, work_dir: str) -> str:
    from mmdet.apis import DetInferencer
    DetInferencer(model=None, weights=source, device='cpu')
    return 'ran: built'


def seg_inferencer(source: str, work_dir: str) -> str:
    from mmseg.apis import MMSegInferencer
    MMSegInferencer(model=None, weights=source, device='cpu')
    return 'ran: built'


ENTRIES = {'resume': resume, 'resume_by_url': resume,
           'resume_by_search': resume_by_search,
           'det_inferencer': det_inferencer,
           'seg_inferencer': seg_inferencer}


def _one(entry: str, source: str, work_dir: str) -> str:
    before = attack_harness.state()
    try:
        outcome = ENTRIES[entry](source, work_dir)
    except CheckpointError as e:
        outcome = f'refused: {str(e)[:300]}'
        if not str(e).isprintable():
            outcome = f'error: control characters in {str(e)!r}'
    except Exception as e:
        outcome = f'failed: {type(e).__name__}: {str(e)[:300]}'
    except BaseException:
        return 'error: ' + traceback.format_exc()[-600:]
    if attack_harness.state() != before:
        return f'error: process state changed: {before} -> ' \
               f'{attack_harness.state()}'
    return outcome


def attempt(entry: str, source: str, work_dir: str, marker: str,
            wall: int = 90) -> str:
    """``entry`` on ``source`` in a forked child under caps."""
    outcome = attack_harness.in_child(
        lambda: _one(entry, source, work_dir), cpu=30, wall=wall)
    if os.path.exists(marker):
        os.remove(marker)
        outcome = f'error: code ran (the marker was written); {outcome}'
    return outcome


if __name__ == '__main__':  # build the corpus for a look by hand
    sys.exit('import this module from the tests')
