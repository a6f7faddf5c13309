"""Resume state checked against the run that loads it.

A checkpoint that loads as plain data (:mod:`.safe_load`) still drives
what the run does next, because mmengine hands its parts to objects that
adopt them as they are:

- torch's ``Optimizer.load_state_dict`` takes every key of the saved
  parameter groups, so a saved ``fused=True`` switches the run to the fused
  kernel, which writes past undersized ``exp_avg`` tensors (SIGSEGV);
- mmengine's ``_ParamScheduler.load_state_dict`` is
  ``self.__dict__.update(state)``: any attribute, any type (a
  ``param_name`` of ``'fused'`` would set that key on every step);
- ``MessageHub.load_state_dict`` is quadratic in its number of keys
  (bounded in :func:`.safe_load.checked_contents`).

:func:`use_checked_resume_state_in_mmengine` (called when ``mmhatnet`` is
imported) makes mmengine's optimizer wrappers and parameter schedulers
check what they load against what the run built, and ``Runner.resume``
name the file in the :class:`~.safe_load.CheckpointError` that follows a
refusal:

- optimizer: the same number of groups and of parameters in each; the
  keys that pick a code path (``fused``, ``foreach``, ``capturable``,
  ``differentiable``) take the run's values, never the file's; the other
  group values are numbers, bools, None, strings or short tuples of
  numbers; every state tensor is a scalar (a step count) or has its
  parameter's shape and dtype; AMP's loss-scaler state is numbers;
- schedulers: only the attributes the built scheduler has, each of the
  type it has (numbers for numbers, lists of the same length), and the
  same ``param_name``.
"""
from __future__ import annotations

import contextvars
import functools
import importlib
import numbers
from typing import Any

import torch

from .safe_load import CheckpointError
from .unpickler import brief

_RESUMING = contextvars.ContextVar('mmhatnet_resuming',
                                   default='the checkpoint')
PATH_KEYS = ('fused', 'foreach', 'capturable', 'differentiable')


def _refuse(what: str) -> CheckpointError:
    return CheckpointError(f'{_RESUMING.get()}: refused to resume: {what}')


def _number(x: Any) -> bool:
    return isinstance(x, (bool, int, float)) or x is None


def _plain_setting(x: Any) -> bool:
    """A parameter-group value: a number, bool, None or short string, or a
    short tuple or list of numbers (``betas``)."""
    if _number(x) or (isinstance(x, str) and len(x) <= 64):
        return True
    return isinstance(x, (tuple, list)) and len(x) <= 8 and all(
        _number(i) for i in x)


def _check_group(saved: Any, built: dict, where: str) -> None:
    """``saved``, a saved parameter group, made safe for ``built`` (in
    place): path keys from ``built``, plain values only."""
    if not isinstance(saved, dict):
        raise _refuse(f'{where} is {brief(saved)}, not a dict')
    for key in PATH_KEYS:
        if key in built:
            saved[key] = built[key]
        else:
            saved.pop(key, None)
    for key, value in saved.items():
        if key != 'params' and not (type(key) is str and
                                    _plain_setting(value)):
            raise _refuse(f'{where}[{brief(key)}] is {brief(value)}: a '
                          f'group setting is a number, bool, None, string '
                          f'or short tuple of numbers')


def check_optimizer_state(optimizer: torch.optim.Optimizer,
                          state_dict: Any) -> None:
    """Check (and make safe in place) ``state_dict`` for ``optimizer``."""
    if not (isinstance(state_dict, dict) and
            isinstance(state_dict.get('param_groups'), list) and
            isinstance(state_dict.get('state'), dict)):
        raise _refuse('its optimizer state is not a dict of '
                      "'state' and 'param_groups'")
    groups, saved_groups = optimizer.param_groups, state_dict['param_groups']
    if len(groups) != len(saved_groups):
        raise _refuse(f'its optimizer has {len(saved_groups)} parameter '
                      f'groups, the run {len(groups)}')
    params = {}  # saved index -> the run's parameter
    for n, (group, saved) in enumerate(zip(groups, saved_groups)):
        _check_group(saved, group, f'param_groups[{n}]')
        ids = saved.get('params')
        if not (isinstance(ids, list) and all(type(i) is int for i in ids)
                and len(ids) == len(group['params'])):
            raise _refuse(f'param_groups[{n}] lists {brief(ids)} as its '
                          f'parameters; the run has '
                          f'{len(group["params"])} there')
        params.update(zip(ids, group['params']))
    if len(params) != sum(len(g['params']) for g in groups):
        raise _refuse('its parameter groups list a parameter twice')
    for index, state in state_dict['state'].items():
        param = params.get(index)
        if param is None or not isinstance(state, dict):
            raise _refuse(f'optimizer state {brief(index)}: '
                          f'{"no such parameter" if param is None else "not a dict"}')  # noqa: E501
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                if value.dim() == 0 or (value.shape == param.shape and
                                        value.dtype == param.dtype):
                    continue
                raise _refuse(
                    f'optimizer state {index}[{brief(key)}] is a '
                    f'{value.dtype} tensor of shape {tuple(value.shape)}; '
                    f'its parameter is {param.dtype} {tuple(param.shape)}')
            if not _number(value):
                raise _refuse(f'optimizer state {index}[{brief(key)}] is '
                              f'{brief(value)}')
    scaler = state_dict.get('loss_scaler')
    if scaler is not None and not (isinstance(scaler, dict) and len(
            scaler) <= 16 and all(type(k) is str and _number(v)
                                  for k, v in scaler.items())):
        raise _refuse(f'its loss scaler state is {brief(scaler)}, not '
                      f'numbers')


def _check_wrapper_state(wrapper: Any, state_dict: Any) -> None:
    check_optimizer_state(wrapper.optimizer, state_dict)
    base = state_dict.get('base_param_settings')
    built = getattr(wrapper, 'base_param_settings', None)
    if base is None:
        return
    if built is None:  # the run has one group: nothing to track
        del state_dict['base_param_settings']
        return
    _check_group(base, built, 'base_param_settings')
    base['params'] = built['params']


def check_scheduler_state(scheduler: Any, state_dict: Any) -> None:
    """Check ``state_dict`` for mmengine's ``scheduler``: its attributes
    only, each of the type it has in the run."""
    built = scheduler.state_dict()
    if not isinstance(state_dict, dict):
        raise _refuse(f'a scheduler state is {brief(state_dict)}')
    for key, value in state_dict.items():
        if key not in built:
            raise _refuse(f'{type(scheduler).__name__} has no attribute '
                          f'{brief(key)} to resume')
        have = built[key]
        if isinstance(have, (bool, str)) or key == 'param_name':
            ok = type(value) is type(have) and (
                key != 'param_name' or value == have)
        elif isinstance(have, numbers.Number):
            ok = type(value) in (int, float)
        elif have is None:
            ok = value is None or type(value) in (int, float)
        elif isinstance(have, (list, tuple)):
            ok = type(value) is type(have) and len(value) == len(have) and \
                all(_number(v) for v in value)
        elif isinstance(have, dict):  # milestones, a Counter
            ok = isinstance(value, dict) and len(value) <= 10000 and all(
                type(k) is int and type(v) is int for k, v in value.items())
        else:
            ok = False
        if not ok:
            raise _refuse(f'{type(scheduler).__name__}.{key} is '
                          f'{brief(value)}; the run has {brief(have)}')


def _checked(load: Any, check: Any) -> Any:
    @functools.wraps(load)
    def load_state_dict(self, state_dict):
        check(self, state_dict)
        return load(self, state_dict)
    load_state_dict.__mmhatnet_checked__ = True
    return load_state_dict


def _naming(resume: Any) -> Any:
    @functools.wraps(resume)
    def named_resume(self, filename, *args, **kwargs):
        token = _RESUMING.set(str(filename))
        try:
            return resume(self, filename, *args, **kwargs)
        finally:
            _RESUMING.reset(token)
    named_resume.__mmhatnet_checked__ = True
    return named_resume


def use_checked_resume_state_in_mmengine() -> None:
    """Check every optimizer wrapper's and parameter scheduler's
    ``load_state_dict`` in mmengine 0.8 to 0.10, and name the file in
    ``Runner.resume``'s refusals. Idempotent."""
    from mmengine.optim import OptimWrapper, _ParamScheduler
    from mmengine.runner import Runner
    optim = importlib.import_module('mmengine.optim')
    wrappers = {c for c in vars(optim).values() if isinstance(c, type) and
                issubclass(c, OptimWrapper) and
                c.__name__ != 'OptimWrapperDict'}  # it loads each wrapper
    wrappers |= {c for c in OptimWrapper.__mro__ if 'OptimWrapper' in
                 c.__name__}  # BaseOptimWrapper, where 0.10 defines it
    schedulers = {c for c in vars(optim).values() if isinstance(c, type)
                  and issubclass(c, _ParamScheduler)}
    targets = [(c, _check_wrapper_state) for c in wrappers] + [
        (c, check_scheduler_state) for c in schedulers]
    for cls, check in targets:
        load = cls.__dict__.get('load_state_dict')
        if load is not None and not getattr(load, '__mmhatnet_checked__',
                                            False):
            cls.load_state_dict = _checked(load, check)
    if not getattr(Runner.resume, '__mmhatnet_checked__', False):
        Runner.resume = _naming(Runner.resume)


__all__ = ['check_optimizer_state', 'check_scheduler_state',
           'use_checked_resume_state_in_mmengine']
