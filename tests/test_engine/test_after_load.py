"""What a checkpoint carries stays data after the load: config text is
never executed, resume state is checked against the run, on mmengine's
runner (resume by URL, resume by the latest-checkpoint search) and the
mmdet and mmseg inferencers built from weights alone. Each attempt runs in
a forked child under memory, CPU and wall-clock caps
(tests/test_engine/after_load.py); the command-line entry points are in
tests/test_tools/test_after_load_cli.py."""
import functools
import http.server
import threading

import pytest
import torch

import after_load
from mmhatnet.engine import CheckpointError
from mmhatnet.engine.config_text import literal_config

# refused on resume: the state does not fit the run, or is not plain
REFUSED = {'fused_undersized_state', 'seed_deep_tuple',
           'step_seed_shared_tuples', 'message_hub_100k_keys',
           'scheduler_param_name', 'scheduler_attribute'}
# resumed: the config text dropped, fused taken from the run, _metadata
# reduced to versions
RESUMED = {'config_code', 'config_base', 'config_imports', 'fused_switch',
           'metadata_assign'}
# what the inferencers' one door reads: config text and the state dict
FOR_INFERENCERS = {'config_code', 'config_base', 'config_imports',
                   'seed_deep_tuple', 'metadata_assign'}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('after_load')
    www = root / 'www'
    www.mkdir()
    marker = root / 'pwned'
    after_load.train(after_load.toy_config(str(root / 'benign')))
    cases = after_load.build(str(www), str(marker),
                             str(root / 'benign' / 'iter_2.pth'))
    assert set(cases) == REFUSED | RESUMED
    quiet = type('Quiet', (http.server.SimpleHTTPRequestHandler, ),
                 {'log_message': lambda *a: None})
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, www, marker, cases, f'http://127.0.0.1:{httpd.server_port}'
    httpd.shutdown()


def test_attacks_after_the_load_are_refused_or_stay_data(corpus, monkeypatch):
    root, www, marker, cases, url = corpus
    monkeypatch.syspath_prepend(str(www))  # the module a config imports
    monkeypatch.setenv('TORCH_HOME', str(root / 'torch_home'))
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    results = {}
    for case in cases:
        path = str(www / f'{case}.pth')
        jobs = {'resume_by_url': f'{url}/{case}.pth',
                'resume_by_search': path}
        if case in FOR_INFERENCERS:
            jobs.update(det_inferencer=path, seg_inferencer=path)
        for entry, source in jobs.items():
            work = str(root / 'runs' / f'{case}-{entry}')
            results[case, entry] = after_load.attempt(
                entry, source, work, str(marker))
    errors = [f'{case} via {entry}: {outcome[:200]}'
              for (case, entry), outcome in results.items()
              if outcome.startswith('error')]
    if errors:
        pytest.fail('\n'.join(errors))
    for (case, entry), outcome in results.items():
        if entry.startswith('resume') and case in REFUSED:
            assert outcome.startswith('refused'), (case, entry, outcome)
            assert case in outcome or 'iter_9' in outcome  # the file
        elif entry.startswith('resume'):
            assert outcome == 'ran to iteration 4', (case, entry, outcome)
        elif case.startswith('config'):  # no config left to build from
            assert not outcome.startswith('ran'), (case, entry, outcome)


def test_benign_checkpoint_resumes_exactly_with_its_config(tmp_path):
    """A resumed toy run ends where the uninterrupted one does, and the
    config text in its checkpoint reads back as the same values."""
    whole = after_load.train(after_load.toy_config(str(tmp_path / 'a')))
    resumed = after_load.train(after_load.toy_config(
        str(tmp_path / 'b'), resume=True,
        load_from=str(tmp_path / 'a' / 'iter_2.pth')))
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    from mmengine.config import Config
    from mmhatnet.engine import load_untrusted
    checkpoint = load_untrusted(str(tmp_path / 'a' / 'iter_4.pth'))
    text = checkpoint['message_hub']['runtime_info']['cfg']
    assert Config.fromstring(text, '.py').model == dict(type='AfterLoadToy')
    assert checkpoint['meta']['cfg'] == text


@pytest.mark.parametrize('text, kept', [
    ("a = dict(b=[1, (2, 3)], c={'.d': -1.5})\n",
     {'a': {'b': [1, (2, 3)], 'c': {'.d': -1.5}}}),
    ("x = dict({'.k': 1}, y=None)\n", {'x': {'.k': 1, 'y': None}}),
    # braces never reach mmengine's {{ }} substitution
    ("s = '{{$HOME:x}} {{ fileDirname }}'\n",
     {'s': '{{$HOME:x}} {{ fileDirname }}'}),
    ("_base_ = ['x.py']\nm = 1\n", {'m': 1}),
    ("custom_imports = dict(imports=['mmhatnet'])\n",
     {'custom_imports': {'imports': ['mmhatnet']}}),
    ("custom_imports = dict(imports=['not_imported_module'])\n", {}),
])
def test_config_text_is_read_as_literal_values(text, kept):
    from mmengine.config import Config
    safe, _ = literal_config(text)
    assert '{{' not in safe
    assert Config.fromstring(safe, '.py')._cfg_dict.to_dict() == kept


@pytest.mark.parametrize('text', [
    "import os\n", "x = __import__('os')\n", "x = f(1)\n", "x = a.b\n",
    "x = [i for i in ()]\n", "x = 1\ny = lambda: 0\n",
    "x = (" * 300 + ")" * 300,
    "x = '" + 'a' * (2**20) + "'\n", "x = dict(**y)\n", 3,
])
def test_config_text_that_is_not_literal_is_dropped(text):
    assert literal_config(text)[0] is None


def test_optimizer_state_is_checked_against_the_run():
    from mmhatnet.engine.resume_state import check_optimizer_state
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    good = optimizer.state_dict()
    good['param_groups'][0].update(fused=True, foreach=True)
    check_optimizer_state(optimizer, good)  # the run's values replace them
    for key in ('fused', 'foreach'):
        assert good['param_groups'][0].get(key) == \
            optimizer.param_groups[0].get(key)
    bad = optimizer.state_dict()
    bad['state'][0]['exp_avg'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match='shape'):
        check_optimizer_state(optimizer, bad)
    bad = optimizer.state_dict()
    bad['param_groups'][0]['params'] = [0]
    with pytest.raises(CheckpointError, match='parameters'):
        check_optimizer_state(optimizer, bad)
    bad = optimizer.state_dict()
    bad['param_groups'][0]['lr'] = ((1, ), )
    with pytest.raises(CheckpointError, match='group setting'):
        check_optimizer_state(optimizer, bad)
