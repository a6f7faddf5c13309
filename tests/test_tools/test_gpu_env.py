"""tools/gpu_env.py: the set-up's GPU decisions, fed fake nvidia-smi
outputs, environments, nvcc versions and torch builds; and its command line
with fake nvidia-smi / nvcc programs on PATH."""
import os
import subprocess
import sys

import pytest
import torch

from e2e import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from gpu_env import (GpuEnvError, Nvcc, TorchInfo, choose_mmcv,  # noqa: E402
                     choose_torch, link_dev_libraries, parse_gpus,
                     pip_nvcc)

A100_535 = 'NVIDIA A100-SXM4-80GB, 535.104.05, 8.0\n' * 8
H100_580 = 'NVIDIA H100 80GB HBM3, 580.82.07, 9.0\n'
V100_580 = 'Tesla V100-SXM2-32GB, 580.65.06, 7.0\n'
P100_550 = 'Tesla P100-PCIE-16GB, 550.54.15, 6.0\n'
K80_470 = 'Tesla K80, 470.256.02, 3.7\n'
MIXED_570 = ('NVIDIA A100-PCIE-40GB, 570.86.15, 8.0\n'
             'NVIDIA L40S, 570.86.15, 8.9\n')
CU130_ARCHS = ('7.5', '8.0', '8.6', '9.0', '10.0', '12.0')


def torch_step(smi, env=None, torch='2.14.1'):
    return choose_torch(smi, env or {}, torch, '0.29.1')


def test_parse_gpus_reads_every_line():
    gpus = parse_gpus(MIXED_570)
    assert [(g.name, g.driver, g.capability) for g in gpus] == [
        ('NVIDIA A100-PCIE-40GB', '570.86.15', (8, 0)),
        ('NVIDIA L40S', '570.86.15', (8, 9))]


def test_parse_gpus_names_an_unreadable_line():
    with pytest.raises(GpuEnvError, match=r"'Tesla K80, 470.57.02, \[N/A\]'"
                       r'.*update the driver'):
        parse_gpus('Tesla K80, 470.57.02, [N/A]\n')


def test_no_gpu_keeps_the_default_build_and_says_so():
    d = torch_step(None)
    assert d.variables == dict(TORCH='2.14.1', TORCHVISION='0.29.1',
                               TORCH_INDEX='', MMHATNET_GPU_KEY='')
    assert 'no NVIDIA GPU found' in d.notes[0]


def test_recent_driver_gets_the_default_cuda13_build():
    d = torch_step(H100_580)
    assert d.variables['TORCH'] == '2.14.1'
    assert d.variables['TORCH_INDEX'] == ''
    assert d.variables['MMHATNET_GPU_KEY'] == '2.14.1-sm9.0'
    assert '2.14.1+cu130 from the default index' in d.notes[0]


def test_r535_driver_gets_a_cuda12_build_from_pytorchs_index():
    """The issue's case: the default cu130 build needs R580."""
    d = torch_step(A100_535)
    assert d.variables['TORCH'] == '2.14.1+cu128'
    assert d.variables['TORCHVISION'] == '0.29.1+cu128'
    assert d.variables['TORCH_INDEX'] == \
        'https://download.pytorch.org/whl/cu128'
    assert '8 x NVIDIA A100-SXM4-80GB (sm 8.0); driver 535.104.05' in \
        d.notes[0]


def test_gpu_without_kernels_in_the_default_build_gets_one_that_has():
    assert torch_step(V100_580).variables['TORCH'] == '2.14.1+cu128'
    assert torch_step(P100_550).variables['TORCH'] == '2.14.1+cu126'


def test_mixed_gpus_key_the_venv_on_every_architecture():
    d = torch_step(MIXED_570)
    assert d.variables['MMHATNET_GPU_KEY'] == '2.14.1+cu128-sm8.0-8.9'
    assert torch_step(A100_535).variables['MMHATNET_GPU_KEY'] == \
        '2.14.1+cu128-sm8.0'


def test_driver_too_old_for_every_build_is_an_error_with_the_fix():
    with pytest.raises(GpuEnvError) as e:
        torch_step(K80_470)
    msg = str(e.value)
    assert 'no torch 2.14.1 build runs here' in msg
    assert 'Tesla K80 (sm 3.7); driver 470.256.02' in msg
    assert '2.14.1+cu130 (default index) needs driver >= 580.65.06' in msg
    assert '2.14.1+cu126 (https://download.pytorch.org/whl/cu126) needs ' \
        'driver >= 525.60.13' in msg
    assert 'Fix: update the NVIDIA driver' in msg
    assert 'MMHATNET_TORCH_INDEX=' in msg


def test_index_variable_picks_the_build_and_is_checked():
    env = {'MMHATNET_TORCH_INDEX': 'https://download.pytorch.org/whl/cu126'}
    d = torch_step(H100_580, env)
    assert d.variables['TORCH'] == '2.14.1+cu126'
    assert d.variables['TORCH_INDEX'] == env['MMHATNET_TORCH_INDEX']
    with pytest.raises(GpuEnvError, match='cu126.*needs driver >= 525'):
        torch_step('Tesla T4, 470.82.01, 7.5\n', env)


def test_site_mirror_and_unknown_torch_versions_are_checked_after_install():
    mirror = {'MMHATNET_TORCH_INDEX': 'https://pypi.example.org/simple'}
    d = torch_step(A100_535, mirror)
    assert d.variables['TORCH'] == '2.14.1'
    assert d.variables['TORCH_INDEX'] == mirror['MMHATNET_TORCH_INDEX']
    assert 'checked after install' in d.notes[0]
    d = torch_step(A100_535, torch='2.1.2')
    assert d.variables['TORCH'] == '2.1.2'
    assert d.variables['TORCH_INDEX'] == ''
    assert 'checked after install' in d.notes[0]


def cuda_torch(cuda='13.0', count=8, archs=CU130_ARCHS, available=True,
               error=''):
    return TorchInfo(f'2.14.1+cu{cuda.replace(".", "")}', cuda, available,
                     count, archs, error)


def test_mmcv_on_a_cpu_machine_builds_cpu_ops():
    d = choose_mmcv(None, {}, cuda_torch(count=0, available=False), None)
    assert d.exports == {'FORCE_CUDA': '0'}
    assert d.variables['MMHATNET_MMCV_KEY'] == ''  # the key it always had


def test_mmcv_with_a_matching_system_toolkit():
    nvcc = Nvcc('/usr/local/cuda-13.0/bin/nvcc', '13.0')
    d = choose_mmcv(A100_535.replace('535.104.05', '580.65.06'), {},
                    cuda_torch(), nvcc)
    assert d.exports == dict(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.0',
                             CUDA_HOME='/usr/local/cuda-13.0')
    assert d.variables == dict(MMHATNET_MMCV_KEY='cuda13.0-sm8.0',
                               NVCC_PIP='')


def test_mmcv_cache_key_follows_cuda_and_architectures():
    nvcc = Nvcc('/opt/cuda-12.8/bin/nvcc', '12.8')
    torch = cuda_torch('12.8', 2, ('7.0', '7.5', '8.0', '8.6', '9.0'))
    d = choose_mmcv(MIXED_570, {}, torch, nvcc)
    assert d.exports['TORCH_CUDA_ARCH_LIST'] == '8.0;8.9'
    assert d.variables['MMHATNET_MMCV_KEY'] == 'cuda12.8-sm8.0-8.9'
    d = choose_mmcv(None, {'TORCH_CUDA_ARCH_LIST': '8.0 9.0+PTX'}, torch,
                    nvcc)  # a login node compiling for the compute nodes
    assert d.exports['TORCH_CUDA_ARCH_LIST'] == '8.0 9.0+PTX'
    assert d.variables['MMHATNET_MMCV_KEY'] == 'cuda12.8-sm8.0-9.0-PTX'


@pytest.mark.parametrize('nvcc', [
    None, Nvcc('/usr/local/cuda-12.4/bin/nvcc', '12.4'),
    Nvcc('/usr/local/cuda/bin/nvcc', None)],
    ids=['none', 'other-major', 'broken'])
def test_mmcv_gets_nvcc_from_the_index_for_cuda13(nvcc):
    d = choose_mmcv(H100_580, {}, cuda_torch(count=1), nvcc)
    assert d.variables['NVCC_PIP'] == 'cuda-toolkit[nvcc,cccl]==13.0.*'
    assert 'CUDA_HOME' not in d.exports  # set once the wheels are in
    assert d.exports['FORCE_CUDA'] == '1'


def test_mmcv_without_nvcc_for_cuda12_is_an_error_with_the_fix():
    assert pip_nvcc('12.8') is None
    torch = cuda_torch('12.8', archs=('7.0', '8.0', '9.0'))
    with pytest.raises(GpuEnvError) as e:
        choose_mmcv(A100_535, {}, torch, None)
    msg = str(e.value)
    assert 'no nvcc found' in msg and 'no nvcc wheel for CUDA 12' in msg
    assert 'conda install -c nvidia cuda-nvcc=12.8' in msg
    assert 'set CUDA_HOME' in msg


def test_mmcv_refuses_a_torch_that_does_not_see_the_gpus():
    """The silent CPU fallback of the issue: a driver too old for the
    build, or a CPU-only torch."""
    torch = cuda_torch(count=0, available=False,
                       error='The NVIDIA driver on your system is too old')
    with pytest.raises(GpuEnvError) as e:
        choose_mmcv(A100_535, {}, torch, None)
    msg = str(e.value)
    assert 'sees 0 of 8 GPUs' in msg and 'too old' in msg
    assert 'needs driver >= 580.65.06' in msg
    with pytest.raises(GpuEnvError, match='sees 4 of 8 GPUs.*'
                       'CUDA_VISIBLE_DEVICES'):
        choose_mmcv(A100_535, {}, cuda_torch(count=4), None)
    cpu_build = TorchInfo('2.14.1+cpu', None, False, 0, ())
    with pytest.raises(GpuEnvError, match='CPU-only build'):
        choose_mmcv(A100_535, {}, cpu_build, None)


def test_mmcv_refuses_a_torch_without_kernels_for_the_gpus():
    with pytest.raises(GpuEnvError, match='no kernels for compute '
                       r'capability 7\.0 .*cu126'):
        choose_mmcv(V100_580, {}, cuda_torch(count=1), None)


# --- the command line, as setup_env.sh runs it ---------------------------

def _fake_bin(tmp_path, **programs):
    """Scripts named after ``programs`` that print their text and exit
    with the given status: ``name=(status, text)``."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, (status, text) in programs.items():
        path = bin_dir / name.replace('_', '-')
        # shell builtins only: PATH holds nothing but the fakes
        path.write_text(f"#!/bin/sh\nprintf '%s' '{text}'\nexit {status}\n")
        path.chmod(0o755)
    return str(bin_dir)


def _cli(python, step_args, bin_dir):
    # only the fakes: a real nvidia-smi in /usr/bin must not be found
    env = dict(os.environ, PATH=bin_dir)
    env.pop('MMHATNET_TORCH_INDEX', None)
    env.pop('TORCH_CUDA_ARCH_LIST', None)
    env.pop('CUDA_HOME', None)
    return subprocess.run(
        [python, os.path.join(ROOT, 'tools', 'gpu_env.py'), *step_args],
        env=env, capture_output=True, text=True, timeout=120)


def _shell_values(output, *names):
    script = output + '\n' + ''.join(f'echo "${n}"\n' for n in names)
    out = subprocess.run(['bash', '-c', script], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return out[-len(names):]


TORCH_ARGS = ['torch', '--torch', '2.14.1', '--torchvision', '0.29.1']


def test_cli_torch_step_with_a_fake_nvidia_smi(tmp_path):
    bin_dir = _fake_bin(tmp_path, nvidia_smi=(0, A100_535))
    p = _cli(sys.executable, TORCH_ARGS, bin_dir)
    assert p.returncode == 0, p.stderr
    assert _shell_values(p.stdout, 'TORCH', 'TORCH_INDEX') == [
        '2.14.1+cu128', 'https://download.pytorch.org/whl/cu128']


def test_cli_stops_on_a_failing_nvidia_smi(tmp_path):
    bin_dir = _fake_bin(tmp_path, nvidia_smi=(
        18, 'Failed to initialize NVML: Driver/library version mismatch\n'))
    p = _cli(sys.executable, TORCH_ARGS, bin_dir)
    assert p.returncode == 1 and p.stdout == ''
    assert 'nvidia-smi is installed but fails (Failed to initialize NVML' \
        in p.stderr


def test_cli_mmcv_step_refuses_a_gpu_this_torch_cannot_use(tmp_path):
    """The real torch of this venv, with nvidia-smi listing one GPU more
    than torch sees."""
    seen = torch.cuda.device_count()
    bin_dir = _fake_bin(tmp_path, nvidia_smi=(0, H100_580 * (seen + 1)))
    p = _cli(sys.executable, ['mmcv'], bin_dir)
    assert p.returncode == 1 and p.stdout == ''
    assert 'GPU set-up stopped' in p.stderr
    assert f'sees {seen} of {seen + 1} GPUs' in p.stderr


def test_cli_mmcv_step_without_a_gpu(tmp_path):
    p = _cli(sys.executable, ['mmcv'], _fake_bin(tmp_path))
    assert p.returncode == 0, p.stderr
    assert _shell_values(p.stdout, 'FORCE_CUDA', 'MMHATNET_MMCV_KEY') == [
        '0', '']


def test_pip_toolkit_gets_the_link_that_lcudart_needs(tmp_path):
    """NVIDIA's runtime wheel has lib/libcudart.so.13 only; linking mmcv's
    ops with -lcudart failed without the unversioned link."""
    lib = tmp_path / 'lib'
    lib.mkdir()
    (lib / 'libcudart.so.13').write_bytes(b'')
    assert link_dev_libraries(str(tmp_path)) == [str(lib / 'libcudart.so')]
    assert os.readlink(lib / 'libcudart.so') == 'libcudart.so.13'
    assert link_dev_libraries(str(tmp_path)) == []  # a second run: kept


# --- MMHATNET_DEVICE=cpu: the CPU set-up wherever the GPUs are ------------

CPU_ONLY = {'MMHATNET_DEVICE': 'cpu'}


def test_cpu_switch_ignores_the_gpus_and_keys_the_cache_cpu():
    d = torch_step(A100_535, dict(CPU_ONLY))
    assert d.variables == {'TORCH': '2.14.1', 'TORCHVISION': '0.29.1',
                           'TORCH_INDEX': '', 'MMHATNET_GPU_KEY': ''}
    cuda = TorchInfo('2.14.1+cu130', '13.0', True, 1, CU130_ARCHS)
    d = choose_mmcv(H100_580, {**CPU_ONLY, 'TORCH_CUDA_ARCH_LIST': '9.0'},
                    cuda, None)
    # no nvcc asked for; mmcv's build must not see the GPU torch sees
    assert d.exports == {'FORCE_CUDA': '0', 'CUDA_VISIBLE_DEVICES': ''}
    assert d.variables == {'NVCC_PIP': '', 'MMHATNET_MMCV_KEY': 'cpu'}


def test_cpu_switch_names_its_one_value():
    with pytest.raises(GpuEnvError, match='MMHATNET_DEVICE=cpu to set up'):
        torch_step(H100_580, {'MMHATNET_DEVICE': 'cuda'})


@pytest.mark.parametrize('step', [TORCH_ARGS, ['mmcv']])
def test_cli_cpu_switch_never_runs_nvidia_smi(tmp_path, monkeypatch, step):
    """A failing nvidia-smi (a laptop's driver without CUDA) is not run."""
    bin_dir = _fake_bin(tmp_path, nvidia_smi=(
        18, 'Failed to initialize NVML: Driver/library version mismatch\n'))
    monkeypatch.setenv('MMHATNET_DEVICE', 'cpu')
    p = _cli(sys.executable, step, bin_dir)
    assert p.returncode == 0, p.stderr
    assert 'MMHATNET_DEVICE=cpu' in p.stdout
    if step == ['mmcv']:
        assert _shell_values(p.stdout, 'FORCE_CUDA', 'MMHATNET_MMCV_KEY',
                             'CUDA_VISIBLE_DEVICES') == ['0', 'cpu', '']
