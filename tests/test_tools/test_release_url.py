"""The configs' pretrained weights by URL, with a loopback HTTP server on
127.0.0.1 standing in for the authors' GitHub release: the shipped URL's
path served from a temporary folder, each test with its own torch hub
cache (TORCH_HOME)."""
import functools
import http.server
import json
import os
import socket
import sys
import threading
import urllib.parse

import pytest
import torch
from mmengine.config import Config

from e2e import COMMON, ROOT, config, run, small, tool
from mmhatnet import HATNet
from mmhatnet.demo.data import make_demo_data
from mmhatnet.engine import CheckpointError, load_untrusted
from mmhatnet.engine.safe_load import cache_path

RELEASE = 'https://github.com/yun-liu/HAT-Net/releases/download/v2.0/'
KEYS = os.path.join(os.path.dirname(__file__), '..', 'data',
                    'official_state_dict_keys.json')


@functools.lru_cache(maxsize=None)
def _release(arch: str) -> dict:
    """A state dict with every key and shape of the authors' release of
    ``arch`` (tests/data/official_state_dict_keys.json), random values."""
    with open(KEYS) as f:
        layout = json.load(f)[arch]
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=gen) for k, shape in layout}


def _assert_loaded(model_state: dict, release: dict, prefix: str = ''):
    """Every backbone tensor equals the release's tensor of that name; the
    release keys left out are only the unused proj_norm and the
    classifier."""
    ours = {k[len(prefix):]: v for k, v in model_state.items()
            if k.startswith(prefix)}
    assert ours and set(ours) <= set(release)
    assert all('.attn.proj_norm.' in k or k.startswith('classifier.')
               for k in set(release) - set(ours))
    for k, v in ours.items():
        assert torch.equal(v, release[k]), k


class _Release(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder; a path in ``server.cut`` gets its full
    Content-Length but only half its bytes, then the connection closes."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.cut:
            return super().do_GET()
        with open(self.translate_path(self.path), 'rb') as f:
            body = f.read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server:
    """The loopback stand-in: ``url(release_url)`` is the same path here."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(_Release, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     handler)
        self.httpd.requests, self.httpd.cut = [], set()
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, release_url: str) -> str:
        host, port = self.httpd.server_address
        return f'http://{host}:{port}' + urllib.parse.urlparse(
            release_url).path

    def put(self, release_url: str, obj) -> str:
        """Serve ``obj`` (torch.save'd) at ``release_url``'s path; return
        the loopback URL."""
        path = self.root / urllib.parse.urlparse(release_url).path.lstrip('/')
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)
        return self.url(release_url)

    def requests(self, url: str) -> int:
        return self.httpd.requests.count(urllib.parse.urlparse(url).path)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    served = Server(tmp_path_factory.mktemp('release'))
    served.put(RELEASE + 'HAT-Net_Tiny.pth', {'model': _release('tiny')})
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


@pytest.fixture(autouse=True)
def hub_cache(tmp_path, monkeypatch):
    """An empty torch hub cache per test, and no proxy for 127.0.0.1."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    return tmp_path / 'torch' / 'hub' / 'checkpoints'


def _init(url, arch='tiny'):
    model = HATNet(arch, init_cfg=dict(type='Pretrained', checkpoint=url,
                                       prefix='backbone.'))
    model.init_weights()
    return model


DOWNSTREAM = sorted(
    name for name in os.listdir(os.path.join(ROOT, 'configs'))
    if name.endswith('.py') and not name.startswith('imagenet_'))


def test_shipped_configs_name_the_release():
    for name in DOWNSTREAM + ['imagenet_hatnet_tiny.py']:
        cfg = Config.fromfile(os.path.join(ROOT, 'configs', name))
        backbone = cfg.model.backbone
        if name.startswith('imagenet_'):  # trained from scratch
            assert backbone.get('init_cfg') is None
            continue
        arch = backbone.arch.capitalize()
        assert backbone.init_cfg == dict(
            type='Pretrained', checkpoint=f'{RELEASE}HAT-Net_{arch}.pth',
            prefix='backbone.'), name


def test_raw_release_by_url_loads_exactly_and_once(server, hub_cache):
    url = server.url(RELEASE + 'HAT-Net_Tiny.pth')
    before = server.requests(url)
    for _ in range(2):  # the second run reads the cache
        _assert_loaded(_init(url).state_dict(), _release('tiny'))
    assert server.requests(url) == before + 1
    assert os.path.isfile(cache_path(url))


def test_other_variants_weights_by_url_are_refused_as_a_file(server,
                                                             tmp_path):
    url = server.url(RELEASE + 'HAT-Net_Tiny.pth')
    path = str(tmp_path / 'HAT-Net_Tiny.pth')
    torch.save({'model': _release('tiny')}, path)
    messages = []
    for where in (url, path):
        with pytest.raises(CheckpointError) as e:
            _init(where, arch='small')
        messages.append(str(e.value).replace(where, '<weights>'))
    assert "its shapes fit arch='tiny'" in messages[0]
    assert messages[0] == messages[1]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_code_running_pickle_by_url_is_refused(server, tmp_path):
    """Needs the safe http(s) loader (mmhatnet.engine.safe_load)."""
    marker = tmp_path / 'pwned'
    url = server.put(RELEASE + 'evil/HAT-Net_Tiny.pth',
                     {'model': {'w': _Exploit(marker)}})
    with pytest.raises(CheckpointError, match='refused'):
        _init(url)
    assert not marker.exists()


def test_cut_off_download_leaves_no_loadable_cache_entry(server, hub_cache):
    """Needs the safe http(s) loader (mmhatnet.engine.safe_load)."""
    url = server.put(RELEASE + 'cut/HAT-Net_Tiny.pth',
                     {'model': _release('tiny')})
    server.httpd.cut.add(urllib.parse.urlparse(url).path)
    try:
        with pytest.raises(CheckpointError, match='download cut off'):
            _init(url)
    finally:
        server.httpd.cut.clear()
    assert not os.path.exists(cache_path(url))
    # the next run downloads the whole file and loads it
    _assert_loaded(_init(url).state_dict(), _release('tiny'))


TRAIN = {
    # family: toolbox for mim, data set, checkpoint written, options
    'retinanet': ('mmdet', 'coco', 'epoch_1.pth', [
        'train_cfg.max_epochs=1', 'train_cfg.val_begin=2']),
    'fpn': ('mmseg', 'ade', 'iter_1.pth', [
        'train_cfg.max_iters=1', 'train_cfg.val_begin=2',
        'default_hooks.checkpoint.interval=1']),
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    make_demo_data(root, ['coco', 'ade'], num_train=2, num_val=1)
    return root


@pytest.mark.e2e
@pytest.mark.parametrize('how', ['tools', 'mim'])
@pytest.mark.parametrize('family', sorted(TRAIN))
def test_training_starts_from_the_served_weights(server, data, tmp_path,
                                                 family, how):
    toolbox, _, written, extra = TRAIN[family]
    shipped = Config.fromfile(config(family)).model.backbone
    url = server.url(shipped.init_cfg.checkpoint)
    work = tmp_path / 'work'
    # a frozen backbone keeps what it loaded: the checkpoint shows it
    options = ['--cfg-options',
               *[o for o in COMMON if not o.startswith('model.backbone.init')],
               *small(family), *extra, 'model.backbone.frozen_stages=3',
               f'model.backbone.init_cfg.checkpoint={url}']
    if how == 'mim':
        mim = os.path.join(os.path.dirname(sys.executable), 'mim')
        proc = run([mim, 'train', toolbox, config(family), '--work-dir',
                    str(work), *options], cwd=data)
    else:
        proc = tool('train.py', config(family), '--work-dir', str(work),
                    *options, cwd=data)
    assert f'from {url} (the release layout, converted)' in \
        proc.stdout + proc.stderr
    saved = load_untrusted(str(work / written))['state_dict']
    _assert_loaded(saved, _release('tiny'), prefix='backbone.')
