"""mmhatnet.engine.safe_load: files from outside load as plain data or are
refused, on every entry point; mmengine's own checkpoints load exactly."""
import collections
import functools
import hashlib
import http.server
import json
import os
import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmhatnet  # noqa: F401  (mmengine loads through safe_load)
from mmhatnet.engine import CheckpointError, load_untrusted
from mmhatnet.engine.safe_load import cache_path

import attacks

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path / 'www'``; yields its URL.
    A file whose name starts with 'cut' is sent with a Content-Length
    larger than its body, as a download cut off midway."""
    root = tmp_path / 'www'
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name = os.path.basename(self.path)
            if name.startswith('drip'):  # no length, a byte at a time
                self.send_response(200)
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b'P')
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            if not name.startswith('cut'):
                return super().do_GET()
            data = (root / name).read_bytes()
            self.send_response(200)
            self.send_header('Content-Length', str(2 * len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f'http://127.0.0.1:{httpd.server_port}'
    httpd.shutdown()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path / 'torch_home' / 'hub' / 'checkpoints'


def test_corpus_of_attacks_is_refused_on_every_entry_point(
        tmp_path, server, hub):
    """Each malicious file, through load_untrusted, weights-only, the
    check to meta, mmengine's loader and by URL, in a forked child under
    memory and CPU caps: refused, or (weights-only) loaded as plain data;
    no marker file, no crash, no changed class."""
    root, url = server
    marker = str(tmp_path / 'pwned')
    names = attacks.build(str(root), marker)
    out = tmp_path / 'results.json'
    subprocess.run([sys.executable, os.path.join(HERE, 'attack_harness.py'),
                    str(root), marker, str(out), url], check=True,
                   env={**os.environ, 'TORCH_HOME': str(hub.parent.parent)},
                   cwd=str(tmp_path), timeout=900)
    results = json.loads(out.read_text())
    assert len(results) == 5 * len(names)
    bad = [r for r in results if r['marker'] or not (
        r['outcome'].startswith('refused') or
        (r['via'] == 'weights_only' and r['outcome'] == 'loaded'))]
    assert not bad, json.dumps(bad, indent=1)
    assert not os.path.exists(marker)
    # what each refusal names, for a few classes of attack
    by_file = {(r['file'], r['via']): r['outcome'] for r in results}
    for name, words in {
            'zip_posix.system.pth': 'refused GLOBAL posix.system',
            'zip_torch.load.pth': 'refused GLOBAL torch.load',
            'zip_HistoryBuffer_poisoning.pth': 'HistoryBuffer state',
            'zip_BUILD_on_Counter.pth': 'refused BUILD on collections',
            'zip_INST.pth': 'refused opcode INST',
            'legacy.pth': 'legacy format',
            'tar.pth': 'tar format',
            'torchscript.pth': 'TorchScript',
            'compressed_record.pth': 'is compressed',
            'record_smaller_than_storage.pth': 'its storage declares',
            'stride_0_into_set.pth': 'over a storage of 2 elements',
            'deep_tuple_hash.pth': 'as a dict key or set item',
            'colliding_ints_in_a_set.pth': 'as a dict key or set item',
            'big_tuple_reused_as_set_items.pth': 'as a dict key or set item',
            'an_object_per_byte.pth': 'bytes of Python objects per byte',
            'shared_tuples_in_a_message.pth': 'only _reconstruct',
            'shared_tuples_in_a_dtype_check.pth': 'refused numpy.dtype',
            'one_deflated_record_listed_20000_times.pth': 'is compressed',
            'encrypted_record.pth': 'is encrypted',
            'terminal_escapes_in_a_name.pth': 'refused GLOBAL os\\x1b',
    }.items():
        assert words in by_file[(name, 'mmengine')], by_file[(name,
                                                              'mmengine')]


def _message_hub_checkpoint(path):
    buffer = HistoryBuffer()
    for v in (1.0, 2.0, 4.0):
        buffer.update(v)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                              torch.nn.BatchNorm2d(4))
    optim = torch.optim.AdamW(net.parameters())
    net(torch.ones(1, 3, 5, 5)).sum().backward()
    optim.step()
    meta = {'seed': np.int64(3), 'scale': np.float32(0.5),
            'mask': np.arange(4, dtype=np.uint8),
            'fortran': np.arange(6.).reshape(2, 3, order='F')}
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}},
                'meta': meta, 'state_dict': net.state_dict(),
                'optimizer': optim.state_dict(),
                'param_schedulers': [{'milestones': collections.Counter(
                    {8: 1, 11: 1})}],
                'tied': [net[0].weight, net[0].weight[1]]}, path)
    return net, optim


def test_mmengine_checkpoint_loads_exactly(tmp_path):
    path = tmp_path / 'ckpt.pth'
    net, optim = _message_hub_checkpoint(path)
    methods = dict(HistoryBuffer._statistics_methods)
    # mmhatnet's loader and mmengine's (load_from, resume) alike
    for loaded in (load_untrusted(str(path)), _load_checkpoint(str(path))):
        assert loaded['message_hub']['log_scalars']['loss'].mean() == \
            pytest.approx(7 / 3)
        assert loaded['meta']['seed'] == 3
        assert loaded['meta']['mask'].tolist() == [0, 1, 2, 3]
        assert loaded['meta']['fortran'].flags.f_contiguous
        assert np.array_equal(loaded['meta']['fortran'],
                              np.arange(6.).reshape(2, 3, order='F'))
        for k, v in net.state_dict().items():
            assert torch.equal(loaded['state_dict'][k], v), k
        assert loaded['state_dict']._metadata == \
            net.state_dict()._metadata
        for p, s in optim.state_dict()['state'].items():
            for k, v in s.items():
                assert torch.equal(loaded['optimizer']['state'][p][k], v)
        assert loaded['param_schedulers'][0]['milestones'] == \
            collections.Counter({8: 1, 11: 1})
        w, row = loaded['tied']  # views keep sharing their storage
        assert row.data_ptr() == w[1].data_ptr()
    assert dict(HistoryBuffer._statistics_methods) == methods


def test_a_check_to_meta_reads_no_tensor_bytes(tmp_path):
    """The tools check a checkpoint before building a runner by loading it
    to meta: the pickle and every size, not the tensors' bytes (a damaged
    tensor record passes the check; the real load then refuses it)."""
    path = tmp_path / 'ckpt.pth'
    net, _ = _message_hub_checkpoint(path)
    data = bytearray(path.read_bytes())
    weight = net[0].weight.detach().numpy().tobytes()
    at = data.find(weight)
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    checked = load_untrusted(str(path), 'meta')
    for k, v in net.state_dict().items():
        assert checked['state_dict'][k].is_meta, k
        assert checked['state_dict'][k].shape == v.shape, k
    assert checked['message_hub']['log_scalars']['loss'].mean() == \
        pytest.approx(7 / 3)
    with pytest.raises(CheckpointError, match='CRC'):
        load_untrusted(str(path))


def test_weights_only_leaves_out_what_is_not_weights(tmp_path):
    path = tmp_path / 'release.pth'
    import argparse
    weights = {'w': torch.randn(3)}
    torch.save({'model': weights, 'args': argparse.Namespace(lr=1.0),
                'epoch': 300}, path)
    loaded = load_untrusted(str(path), weights_only=True)
    assert torch.equal(loaded['model']['w'], weights['w'])
    assert loaded['epoch'] == 300
    assert 'argparse.Namespace' in repr(loaded['args'])
    with pytest.raises(CheckpointError, match='refused GLOBAL '
                       'argparse.Namespace'):
        load_untrusted(str(path))


class _Exploit:
    def __reduce__(self):
        return (os.system, ('touch pwned',))


def test_code_running_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {'w': _Exploit()}}, f)
    with pytest.raises(CheckpointError, match='refused: its pickle asks for '
                       'code'):
        load_untrusted(str(path))
    assert not (tmp_path / 'pwned').exists()
    # mmengine's own loader (load_from, resume, Pretrained) refuses it too
    with pytest.raises(CheckpointError, match='refused GLOBAL '
                       '(posix|os|nt).system'):
        _load_checkpoint(str(path))
    assert not (tmp_path / 'pwned').exists()


@pytest.mark.parametrize('content, message', [
    (b'hello, not a checkpoint', 'is not a PyTorch checkpoint'),
    (b'', 'is not a'),
    (pickle.dumps({'a': 1}), 'is a raw pickle'),
])
def test_non_checkpoint_file_is_refused(tmp_path, content, message):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_untrusted(str(path))


def test_pickle_size_cap_has_an_override(tmp_path, monkeypatch):
    path = tmp_path / 'big.pth'
    torch.save({'names': [f'{i:0100d}' for i in range(20000)]}, path)
    monkeypatch.setenv('MMHATNET_MAX_PICKLE_MB', '0.5')
    with pytest.raises(CheckpointError, match='MMHATNET_MAX_PICKLE_MB'):
        load_untrusted(str(path))
    monkeypatch.setenv('MMHATNET_MAX_PICKLE_MB', '8')
    assert len(load_untrusted(str(path))['names']) == 20000


def test_url_downloads_once_and_loads(server, hub):
    root, url = server
    weights = {'w': torch.randn(4, 4)}
    torch.save(weights, root / 'weights.pth')
    loaded = _load_checkpoint(f'{url}/weights.pth')
    assert torch.equal(loaded['w'], weights['w'])
    assert open(cache_path(f'{url}/weights.pth'), 'rb').read() == \
        (root / 'weights.pth').read_bytes()
    (root / 'weights.pth').unlink()  # the cache is read from now on
    assert torch.equal(load_untrusted(f'{url}/weights.pth')['w'],
                       weights['w'])


def test_cut_off_download_leaves_nothing_cached(server, hub):
    root, url = server
    torch.save({'w': torch.randn(64, 64)}, root / 'cut.pth')
    with pytest.raises(CheckpointError, match='cut off'):
        _load_checkpoint(f'{url}/cut.pth')
    assert not hub.exists() or [p for p in hub.rglob('*') if p.is_file()] \
        == []


def test_a_download_has_a_deadline_and_a_size_cap(server, hub, monkeypatch):
    root, url = server
    monkeypatch.setenv('MMHATNET_DOWNLOAD_TIMEOUT', '1')
    start = time.monotonic()
    with pytest.raises(CheckpointError, match='MMHATNET_DOWNLOAD_TIMEOUT'):
        load_untrusted(f'{url}/drip.pth')
    assert time.monotonic() - start < 10
    monkeypatch.delenv('MMHATNET_DOWNLOAD_TIMEOUT')
    torch.save({'w': torch.zeros(2**18)}, root / 'big.pth')  # 1 MiB
    monkeypatch.setenv('MMHATNET_MAX_DOWNLOAD_MB', '0.5')
    with pytest.raises(CheckpointError, match='MMHATNET_MAX_DOWNLOAD_MB'):
        load_untrusted(f'{url}/big.pth')
    assert not [p for p in hub.rglob('*') if p.is_file()]
    monkeypatch.setenv('MMHATNET_MAX_DOWNLOAD_MB', '2')
    assert load_untrusted(f'{url}/big.pth')['w'].numel() == 2**18


def test_sha256_in_the_name_or_after_the_url_is_checked(server, hub):
    root, url = server
    torch.save({'w': torch.ones(3)}, root / 'w.pth')
    digest = hashlib.sha256((root / 'w.pth').read_bytes()).hexdigest()
    for name in (f'w-{digest[:8]}.pth', 'w-0123abcd.pth'):
        (root / name).write_bytes((root / 'w.pth').read_bytes())
    assert load_untrusted(f'{url}/w-{digest[:8]}.pth')['w'].sum() == 3
    assert load_untrusted(f'{url}/w.pth#sha256={digest}')['w'].sum() == 3
    with pytest.raises(CheckpointError, match='not the 0123abcd'):
        load_untrusted(f'{url}/w-0123abcd.pth')
    with pytest.raises(CheckpointError, match=f'not the {"0" * 64}'):
        load_untrusted(f'{url}/w-0123abcd.pth#sha256={"0" * 64}')
    with pytest.raises(CheckpointError, match='sha256=<64 hex digits>'):
        load_untrusted(f'{url}/w.pth#md5=00')
    # nothing of the refused downloads stayed
    assert not os.path.exists(cache_path(f'{url}/w-0123abcd.pth'))


def test_the_cache_is_keyed_by_the_whole_url(server, hub):
    """One load of http://anyone/.../resnet50-0676ba61.pth must not make
    torchvision://resnet50 return its weights."""
    root, url = server
    (root / 'x').mkdir()
    torch.save({'w': torch.ones(1)}, root / 'x' / 'resnet50-0676ba61.pth')
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_untrusted(f'{url}/x/resnet50-0676ba61.pth')
    torch.save({'w': torch.ones(1)}, root / 'x' / 'resnet50.pth')
    load_untrusted(f'{url}/x/resnet50.pth')
    from mmhatnet.engine.safe_load import _model_url
    official = _model_url('torchvision://resnet50')
    assert official.startswith('https://download.pytorch.org/')
    assert cache_path(official) != cache_path(f'{url}/x/resnet50.pth')
    assert not os.path.exists(cache_path(official))
    assert cache_path('http://h/a/../b.pth') != cache_path('http://h/b.pth')
    assert cache_path('http://h/b.pth?x=1') != cache_path('http://h/b.pth')


def test_schemes_are_read_exactly(server, hub):
    root, url = server
    torch.save({'w': torch.ones(1)}, root / 'w.pth')
    with pytest.raises(CheckpointError, match='file:http:// scheme'):
        load_untrusted(f'file:{url}/w.pth')
    assert not [p for p in hub.rglob('*') if p.is_file()]


@pytest.mark.parametrize('location', ['cuda:0', 'meta', 'xla:0'])
def test_a_files_own_device_is_checked(tmp_path, location):
    from after_load import _patch
    from attacks import s
    path = str(tmp_path / 'w.pth')
    torch.save({'w': torch.ones(2)}, path)
    _patch(path, 'cpu', s(location))
    if location == 'cuda:0' and torch.cuda.is_available():
        assert _load_checkpoint(path)['w'].is_cuda
        return
    with pytest.raises(CheckpointError, match=path):  # map_location None
        _load_checkpoint(path)
    assert load_untrusted(path, 'cpu')['w'].sum() == 2


def test_state_dict_metadata_keeps_versions_only(tmp_path):
    state = collections.OrderedDict(w=torch.ones(1))
    state._metadata = {'': {'version': 1, 'assign_to_params_buffers': True},
                       'a': {'version': 'x'}}
    torch.save({'state_dict': state}, tmp_path / 'w.pth')
    loaded = load_untrusted(str(tmp_path / 'w.pth'))['state_dict']
    assert loaded._metadata == {'': {'version': 1}, 'a': {}}


def test_refusals_are_one_bounded_line(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_untrusted(str(tmp_path / ('x\n\x1b[31m' + 'y' * 5000)))
    assert str(e.value).isprintable() and len(str(e.value)) <= 4000
