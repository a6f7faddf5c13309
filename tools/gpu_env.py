"""The GPU decisions of ``tools/setup_env.sh``, as pure functions.

Standard library only, Python >= 3.8 (the set-up of each stack runs it with
that stack's Python): the first step runs before the venv (and torch)
exists. Two steps, because the second needs the installed torch:

``torch``  (system Python, before torch is installed) reads ``nvidia-smi``
    and picks the torch build the driver runs: by default the pinned version
    from the default index; if the driver or a GPU does not fit that build,
    the newest build on PyTorch's own index that fits. ``MMHATNET_TORCH``
    (the version) and ``MMHATNET_TORCH_INDEX`` (an index URL, e.g. a site
    mirror or ``https://download.pytorch.org/whl/cu126``) override it.

``mmcv``   (the venv's Python, after torch is installed, before mmcv is
    compiled) checks that torch sees every GPU and was built for their
    architectures, picks ``TORCH_CUDA_ARCH_LIST`` and the nvcc to compile
    mmcv's CUDA ops with (a system toolkit whose major version is torch's,
    else NVIDIA's nvcc wheels for torch's CUDA version), and the key of the
    compiled-wheel cache.

Each step prints shell assignments for ``eval``, or a message that says what
does not fit and how to fix it, and exits 1. No GPU is never an error: the
set-up is then for the CPU, and says so. ``TORCH_CUDA_ARCH_LIST`` set without
a GPU (a login node building for compute nodes) compiles the CUDA ops for
those architectures. ``MMHATNET_DEVICE=cpu`` sets up for the CPU where
there are NVIDIA GPUs (a laptop whose GPU has no CUDA toolkit beside it):
``nvidia-smi`` is not read, and mmcv's ops are compiled for the CPU alone,
into a cache of their own.

It is also the one reader of ``nvidia-smi``: ``tools/check.py`` passes its
:func:`list_gpus` to the self-check.

Usage (what setup_env.sh runs)::

    eval "$(python3 tools/gpu_env.py torch --torch 2.14.1 \
            --torchvision 0.29.1)"
    eval "$(.venv/bin/python tools/gpu_env.py mmcv)"
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: The oldest Linux driver for each CUDA major version. NVIDIA's minor
#: version compatibility lets such a driver run every build of that major
#: (a 535 driver runs CUDA 12.8 builds), so this, not the driver's own CUDA
#: version, decides.
MIN_DRIVER = {11: '450.80.02', 12: '525.60.13', 13: '580.65.06'}

PYTORCH_INDEX = 'https://download.pytorch.org/whl/'
#: The ``nvidia-smi`` query: the one place that reads nvidia-smi, for the
#: ``torch`` and ``mmcv`` steps and for ``tools/check.py``.
SMI_QUERY = ['nvidia-smi', '--query-gpu=name,driver_version,compute_cap',
             '--format=csv,noheader']


class GpuEnvError(Exception):
    """What does not fit, and how to fix it."""


def cpu_only(env: Mapping[str, str]) -> bool:
    """Whether ``MMHATNET_DEVICE=cpu`` asks for a CPU set-up whatever the
    GPUs; unset (or empty) follows ``nvidia-smi``."""
    device = env.get('MMHATNET_DEVICE', '')
    if device not in ('', 'cpu'):
        raise GpuEnvError(f'MMHATNET_DEVICE={device!r} is not a choice. '
                          f'Fix: MMHATNET_DEVICE=cpu to set up for the CPU '
                          f'alone, or unset it to follow nvidia-smi')
    return device == 'cpu'


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str  # '535.104.05'
    capability: tuple[int, int]

    @property
    def arch(self) -> str:
        return '{}.{}'.format(*self.capability)


@dataclass(frozen=True)
class Build:
    """A CUDA build of torch: its CUDA version, where it is served ('' for
    the default index) and the GPU architectures it has kernels for (None:
    not known before install; the ``mmcv`` step checks)."""
    cuda: str
    index: str = ''
    archs: tuple[str, ...] | None = None

    @property
    def tag(self) -> str:
        return 'cu' + self.cuda.replace('.', '')


#: The builds of each torch minor version, in the order tried: the default
#: index's first, then PyTorch's index, newest CUDA first. The default
#: index's torch 2.14.1 is ``2.14.1+cu130``, whose
#: ``torch.cuda.get_arch_list()`` is sm_75 ... sm_120. The cu128 and cu126
#: entries were not read from PyTorch's index: their architectures are
#: those PyTorch published for its 2.8 and 2.9 builds.
BUILDS = {
    '2.14': (
        Build('13.0', '', ('7.5', '8.0', '8.6', '9.0', '10.0', '12.0')),
        Build('12.8', PYTORCH_INDEX + 'cu128',
              ('7.0', '7.5', '8.0', '8.6', '9.0', '10.0', '12.0')),
        Build('12.6', PYTORCH_INDEX + 'cu126',
              ('5.0', '6.0', '7.0', '7.5', '8.0', '8.6', '9.0')),
    ),
}


@dataclass
class Decision:
    """Shell variables to set (``exports`` are exported) and lines to log."""
    variables: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def shell(self) -> str:
        lines = [f'{k}={shlex.quote(v)}' for k, v in self.variables.items()]
        lines += [f'export {k}={shlex.quote(v)}'
                  for k, v in self.exports.items()]
        lines += [f'echo {shlex.quote("[setup] " + n)}' for n in self.notes]
        return '\n'.join(lines)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip().split('.'))


def parse_gpus(smi: str) -> list[Gpu]:
    """GPUs from the output of :data:`SMI_QUERY` (``name, driver, cap`` per
    line)."""
    gpus = []
    for line in smi.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(',', 2)]
        if len(parts) != 3 or not re.fullmatch(r'\d+\.\d+', parts[2]) \
                or not re.fullmatch(r'\d+(\.\d+)*', parts[1]):
            raise GpuEnvError(
                f'cannot read this line of `{" ".join(SMI_QUERY)}`: '
                f'{line!r} (expected "name, driver version, compute '
                f'capability", e.g. "NVIDIA A100-SXM4-80GB, 535.104.05, '
                f'8.0"); a driver older than R510 does not report the '
                f'compute capability: update the driver')
        major, minor = _version(parts[2])
        gpus.append(Gpu(parts[0], parts[1], (major, minor)))
    return gpus


def covers(archs: Sequence[str], capability: tuple[int, int]) -> bool:
    """Whether kernels for ``archs`` run on a GPU of ``capability``: a
    cubin for X.y runs on X.z for every z >= y."""
    return any(_version(a)[0] == capability[0]
               and _version(a)[1] <= capability[1] for a in archs)


def driver_runs(driver: str, cuda: str) -> bool:
    need = MIN_DRIVER.get(_version(cuda)[0])
    return need is not None and _version(driver) >= _version(need)


def _index_cuda(url: str) -> str | None:
    """The CUDA version of a PyTorch-style index URL ending in ``cuXYZ``."""
    m = re.search(r'/cu(\d+)(\d)/?$', url)
    return f'{m.group(1)}.{m.group(2)}' if m else None


def _why_not(build: Build, gpus: Sequence[Gpu]) -> str | None:
    driver = gpus[0].driver
    if not driver_runs(driver, build.cuda):
        need = MIN_DRIVER.get(_version(build.cuda)[0])
        return (f'needs driver >= {need}' if need else
                'CUDA version unknown to this script')
    if build.archs is not None:
        missing = sorted({g.arch for g in gpus
                          if not covers(build.archs, g.capability)})
        if missing:
            return (f'has no kernels for compute capability '
                    f'{", ".join(missing)} (it has {", ".join(build.archs)})')
    return None


def _gpu_summary(gpus: Sequence[Gpu]) -> str:
    names = {}
    for g in gpus:
        names[(g.name, g.arch)] = names.get((g.name, g.arch), 0) + 1
    return (', '.join(f'{n} x {name} (sm {arch})'
                      for (name, arch), n in names.items())
            + f'; driver {gpus[0].driver}')


def choose_torch(smi: str | None, env: Mapping[str, str], torch: str,
                 torchvision: str) -> Decision:
    """The ``torch`` step. ``smi``: the output of :data:`SMI_QUERY`, or
    None where there is no ``nvidia-smi``.

    Sets ``TORCH`` / ``TORCHVISION`` (pip version specs, with the build's
    local tag when it is not the default index's), ``TORCH_INDEX`` (an
    extra index URL or '') and ``MMHATNET_GPU_KEY`` (what the venv's stamp
    adds, so that the venv follows the GPUs; '' without a GPU, so that a
    CPU venv keeps the stamp it had).
    """
    index = env.get('MMHATNET_TORCH_INDEX', '')
    d = Decision()
    d.variables.update(TORCH=torch, TORCHVISION=torchvision,
                       TORCH_INDEX=index)
    if cpu_only(env):
        d.variables['MMHATNET_GPU_KEY'] = ''
        d.notes.append('MMHATNET_DEVICE=cpu: setting up for the CPU, '
                       'nvidia-smi not read')
        return d
    gpus = parse_gpus(smi) if smi else []
    if not gpus:
        d.variables['MMHATNET_GPU_KEY'] = ''
        d.notes.append('no NVIDIA GPU found (no nvidia-smi, or it lists '
                       'none): setting up for the CPU; run this on a GPU '
                       'node to set up for its GPUs')
        return d
    summary = _gpu_summary(gpus)
    if index:
        cuda = _index_cuda(index)
        builds = [Build(cuda, index)] if cuda else []
        if not cuda:
            d.notes.append(f'{summary}; torch {torch} from {index} (its CUDA '
                           f'version is checked after install)')
    else:
        builds = list(BUILDS.get('.'.join(torch.split('.')[:2]), ()))
        if not builds:
            d.notes.append(f'{summary}; torch {torch} from the default index '
                           f'(its CUDA build is checked after install)')
    reasons = []
    for build in builds:
        why = _why_not(build, gpus)
        if why is None:
            if build.index:
                d.variables.update(TORCH=f'{torch}+{build.tag}',
                                   TORCHVISION=f'{torchvision}+{build.tag}',
                                   TORCH_INDEX=build.index)
            where = build.index or 'the default index'
            d.notes.append(f'{summary}: torch {torch}+{build.tag} from '
                           f'{where}')
            break
        reasons.append(f'torch {torch}+{build.tag} '
                       f'({build.index or "default index"}) {why}')
    else:
        if builds:
            raise GpuEnvError(
                f'no torch {torch} build runs here ({summary}):\n  '
                + '\n  '.join(reasons) + '\nFix: update the NVIDIA driver '
                '(R580 or newer runs every build; >= 525.60.13 runs CUDA '
                '12 builds), or choose a torch version and index that fit: '
                'MMHATNET_TORCH=<version> MMHATNET_TORCH_INDEX='
                f'{PYTORCH_INDEX}cu<XYZ>')
    d.variables['MMHATNET_GPU_KEY'] = (
        d.variables['TORCH'] + '-sm' + '-'.join(
            sorted({g.arch for g in gpus}, key=_version)))
    return d


@dataclass(frozen=True)
class TorchInfo:
    """What the installed torch says about CUDA."""
    version: str
    cuda: str | None  # torch.version.cuda
    available: bool  # torch.cuda.is_available()
    device_count: int
    archs: tuple[str, ...]  # torch.cuda.get_arch_list(), as '8.0'
    error: str = ''  # why CUDA is unavailable, when torch says


@dataclass(frozen=True)
class Nvcc:
    path: str  # .../bin/nvcc
    release: str | None  # '12.8' from `nvcc --version`, None: did not run

    @property
    def home(self) -> str:
        return os.path.dirname(os.path.dirname(self.path))


def parse_nvcc_release(text: str) -> str | None:
    m = re.search(r'release (\d+\.\d+)', text)
    return m.group(1) if m else None


def pip_nvcc(cuda: str) -> str | None:
    """The requirement that installs nvcc for torch's ``cuda`` from the
    package index, or None. The ``cuda-toolkit`` metapackage pulls nvcc,
    its compiler back end (nvvm), the runtime headers and CCCL of one CUDA
    release. For CUDA 12 its ``nvidia-cuda-nvcc-cu12`` wheels hold ptxas but
    no nvcc (checked: 12.6.85, 12.8.93, 12.9.86), so only CUDA >= 13."""
    if _version(cuda)[0] < 13:
        return None
    return f'cuda-toolkit[nvcc,cccl]=={cuda}.*'


def pip_cuda_home(site_packages: str, cuda: str) -> str:
    """Where the wheels of :func:`pip_nvcc` put bin/, include/ and lib/."""
    return os.path.join(site_packages, 'nvidia', f'cu{_version(cuda)[0]}')


def link_dev_libraries(home: str) -> list[str]:
    """Add the unversioned ``lib/libcudart.so`` that linking with
    ``-lcudart`` needs: NVIDIA's runtime wheel ships only
    ``libcudart.so.<major>`` (a toolkit's dev package adds the link).
    Returns the links made."""
    lib = os.path.join(home, 'lib')
    made = []
    link = os.path.join(lib, 'libcudart.so')
    versioned = sorted(f for f in (os.listdir(lib) if os.path.isdir(lib)
                                   else ())
                       if re.fullmatch(r'libcudart\.so\.\d+', f))
    if versioned and not os.path.lexists(link):
        os.symlink(versioned[-1], link)
        made.append(link)
    return made


def choose_mmcv(smi: str | None, env: Mapping[str, str],
                torch: TorchInfo, nvcc: Nvcc | None) -> Decision:
    """The ``mmcv`` step: exports ``FORCE_CUDA``, and when compiling for
    GPUs ``TORCH_CUDA_ARCH_LIST`` and ``CUDA_HOME`` (unless nvcc is to be
    installed: then ``NVCC_PIP`` is set); sets ``MMHATNET_MMCV_KEY``, the
    suffix of the compiled-wheel cache beside torch's version: CUDA and
    architectures, or '' for CPU ops (the cache's key before GPUs were
    handled, so that a cached CPU wheel stays valid).

    ``MMHATNET_DEVICE=cpu``: CPU ops whatever the GPUs and
    ``TORCH_CUDA_ARCH_LIST``, built with ``CUDA_VISIBLE_DEVICES`` empty
    (mmcv's build compiles CUDA ops wherever torch sees a GPU,
    ``FORCE_CUDA`` or not) and cached under the key ``cpu``, which no CUDA
    build shares."""
    d = Decision()
    if cpu_only(env):
        d.exports.update(FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='')
        d.variables.update(NVCC_PIP='', MMHATNET_MMCV_KEY='cpu')
        d.notes.append('MMHATNET_DEVICE=cpu: mmcv ops for the CPU only')
        return d
    gpus = parse_gpus(smi) if smi else []
    arch_env = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if not gpus and not arch_env:
        d.exports['FORCE_CUDA'] = '0'
        d.variables['NVCC_PIP'] = ''
        d.variables['MMHATNET_MMCV_KEY'] = ''
        d.notes.append('mmcv ops for the CPU only (no GPU found; set '
                       'TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0", to compile '
                       'CUDA ops for GPUs elsewhere)')
        return d
    if torch.cuda is None:
        raise GpuEnvError(
            f'torch {torch.version} is a CPU-only build, but CUDA ops were '
            f'asked for. Fix: MMHATNET_TORCH_INDEX={PYTORCH_INDEX}cu<XYZ> '
            f'(a CUDA build), then run the set-up again')
    if gpus:
        where = f'torch {torch.version} (CUDA {torch.cuda})'
        if not torch.available or torch.device_count < len(gpus):
            raise GpuEnvError(
                f'{where} sees {torch.device_count if torch.available else 0}'
                f' of {len(gpus)} GPUs ({_gpu_summary(gpus)})'
                + (f': {torch.error}' if torch.error else '') +
                f'. CUDA {torch.cuda} needs driver >= '
                f'{MIN_DRIVER.get(_version(torch.cuda)[0], "?")}'
                '. Fix: update the driver, or pick a build it runs with '
                f'MMHATNET_TORCH_INDEX={PYTORCH_INDEX}cu<XYZ>; if '
                'CUDA_VISIBLE_DEVICES hides GPUs, unset it for the set-up')
        missing = sorted({g.arch for g in gpus
                          if not covers(torch.archs, g.capability)})
        if missing:
            raise GpuEnvError(
                f'{where} has no kernels for compute capability '
                f'{", ".join(missing)} (it has {", ".join(torch.archs)}). '
                f'Fix: a build for these GPUs, MMHATNET_TORCH_INDEX='
                f'{PYTORCH_INDEX}cu126 for older GPUs')
    archs = arch_env or ';'.join(sorted({g.arch for g in gpus},
                                        key=_version))
    major = _version(torch.cuda)[0]
    d.exports['FORCE_CUDA'] = '1'
    d.exports['TORCH_CUDA_ARCH_LIST'] = archs
    arch_key = re.sub(r'[^0-9A-Za-z.]+', '-', archs)
    d.variables['MMHATNET_MMCV_KEY'] = f'cuda{torch.cuda}-sm{arch_key}'
    d.variables['NVCC_PIP'] = ''
    if nvcc is not None and nvcc.release is not None \
            and _version(nvcc.release)[0] == major:
        d.exports['CUDA_HOME'] = nvcc.home
        d.notes.append(f'mmcv CUDA ops for sm {archs} with nvcc '
                       f'{nvcc.release} ({nvcc.path})')
        return d
    found = ('no nvcc found (CUDA_HOME, PATH, /usr/local/cuda)'
             if nvcc is None else
             f'{nvcc.path} does not run' if nvcc.release is None else
             f'nvcc {nvcc.release} at {nvcc.path} does not match torch\'s '
             f'CUDA {torch.cuda} (the major versions must agree)')
    requirement = pip_nvcc(torch.cuda)
    if requirement is None:
        raise GpuEnvError(
            f'{found}, and NVIDIA publishes no nvcc wheel for CUDA {major} '
            f'(nvidia-cuda-nvcc-cu12 holds ptxas only). Fix: install a CUDA '
            f'{major}.x toolkit (the cluster\'s `module load cuda/{major}.x`'
            f', NVIDIA\'s cuda-toolkit-{major}-x packages, or `conda install'
            f' -c nvidia cuda-nvcc={torch.cuda} cuda-cudart-dev='
            f'{torch.cuda}`) and set CUDA_HOME to it')
    d.variables['NVCC_PIP'] = requirement
    d.notes.append(f'{found}: installing {requirement} from the package '
                   f'index; mmcv CUDA ops for sm {archs}')
    return d


# --- the command line: gather the facts, print the decision --------------

def _run(args: Sequence[str]) -> tuple[int, str]:
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)
    return p.returncode, p.stdout + p.stderr


def read_smi(env: Mapping[str, str] = os.environ) -> str | None:
    """:data:`SMI_QUERY`'s output; None without nvidia-smi, or with
    ``MMHATNET_DEVICE=cpu`` (so that nothing that reads the GPUs here, the
    self-check included, runs it). A failing nvidia-smi is an error: the
    driver is broken, not absent."""
    if cpu_only(env) or shutil.which('nvidia-smi') is None:
        return None
    code, out = _run(SMI_QUERY)
    if code != 0:
        raise GpuEnvError(f'nvidia-smi is installed but fails ({out.strip()})'
                          f'. Fix the NVIDIA driver (a driver/library '
                          f'version mismatch needs a reboot) and run again')
    return out


def list_gpus() -> list[Gpu] | None:
    """The GPUs ``nvidia-smi`` lists; None without nvidia-smi. Raises
    :class:`GpuEnvError` where it fails or prints a line that cannot be
    read."""
    smi = read_smi()
    return None if smi is None else parse_gpus(smi)


def find_nvcc(env: Mapping[str, str]) -> Nvcc | None:
    """nvcc as torch's extension builder finds it: CUDA_HOME, PATH,
    /usr/local/cuda."""
    candidates = []
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if env.get(var):
            candidates.append(os.path.join(env[var], 'bin', 'nvcc'))
    on_path = shutil.which('nvcc', path=env.get('PATH'))
    if on_path:
        candidates.append(os.path.realpath(on_path))
    candidates.append('/usr/local/cuda/bin/nvcc')
    for path in candidates:
        home = os.path.dirname(os.path.dirname(path))
        # a wrapper script (/usr/local/bin/nvcc) is not a toolkit's home
        if os.path.isfile(path) and os.path.isfile(
                os.path.join(home, 'include', 'cuda_runtime.h')):
            code, out = _run([path, '--version'])
            return Nvcc(path, parse_nvcc_release(out) if code == 0 else None)
    return None


def torch_info() -> TorchInfo:
    import torch
    error = ''
    try:
        available = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001  a broken driver raises
        available, error = False, str(e)
    archs = tuple(re.sub(r'^(?:sm|compute)_(\d+)(\d)$', r'\1.\2', a)
                  for a in torch.cuda.get_arch_list())
    return TorchInfo(torch.__version__, torch.version.cuda, available,
                     torch.cuda.device_count() if available else 0, archs,
                     error)


def _install_nvcc(d: Decision, cuda: str) -> None:
    """Install :func:`pip_nvcc` into this Python's environment and point
    CUDA_HOME at it; fail here, before the long compile, if it does not
    run."""
    import sysconfig
    requirement = d.variables['NVCC_PIP']
    code, out = _run([sys.executable, '-m', 'pip', 'install', '-q',
                      '--disable-pip-version-check', requirement])
    if code != 0:
        raise GpuEnvError(f'pip install {requirement} failed:\n{out[-2000:]}'
                          f'\nFix: install a CUDA {cuda} toolkit and set '
                          f'CUDA_HOME')
    home = pip_cuda_home(sysconfig.get_paths()['purelib'], cuda)
    nvcc = os.path.join(home, 'bin', 'nvcc')
    code, out = _run([nvcc, '--version'])
    if code != 0 or parse_nvcc_release(out) is None:
        raise GpuEnvError(f'{nvcc} from {requirement} does not run: '
                          f'{out.strip()}\nFix: install a CUDA {cuda} '
                          f'toolkit and set CUDA_HOME')
    link_dev_libraries(home)
    d.exports['CUDA_HOME'] = home


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='step', required=True)
    t = sub.add_parser('torch', help='which torch build to install')
    t.add_argument('--torch', required=True)
    t.add_argument('--torchvision', required=True)
    sub.add_parser('mmcv', help='how to compile mmcv (run with the venv)')
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        if args.step == 'torch':
            d = choose_torch(read_smi(env), env, args.torch,
                             args.torchvision)
        else:
            info = torch_info()
            d = choose_mmcv(read_smi(env), env, info, find_nvcc(env))
            if d.variables['NVCC_PIP']:
                _install_nvcc(d, info.cuda)
    except GpuEnvError as e:
        print(f'[setup] GPU set-up stopped: {e}', file=sys.stderr)
        return 1
    print(d.shell())
    return 0


if __name__ == '__main__':
    sys.exit(main())
