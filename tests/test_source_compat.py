"""The source runs on Python 3.8: vermin (a static minimum-version check)
finds no newer syntax or standard-library API in any file."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLDEST = '3.8'


def _sources() -> list:
    found = [os.path.join(ROOT, 'setup.py')]
    for top in ('mmhatnet', 'tools', 'tests', 'configs'):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            found += [os.path.join(folder, f) for f in sorted(files)
                      if f.endswith('.py')]
    return found


def _vermin(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'vermin'),
         f'-t={OLDEST}-', '--no-tips',
         '--violations', '--no-parse-comments', *args],
        capture_output=True, text=True)


def test_no_syntax_or_api_newer_than_oldest_python():
    proc = _vermin(*_sources())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_annotations_evaluated_at_import_are_oldest_python():
    """Without ``from __future__ import annotations`` a module's annotations
    run at import: ``str | None`` or ``list[int]`` there fail on 3.8."""
    evaluated = []
    for path in _sources():
        with open(path, encoding='utf-8') as f:
            if 'from __future__ import annotations' not in f.read():
                evaluated.append(path)
    proc = _vermin('--eval-annotations', *evaluated)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _newer_annotations(tree: ast.AST) -> list:
    """Annotations that fail on 3.8 when evaluated: ``X | Y`` and
    ``list[...]``-style builtin generics (vermin misses some)."""
    found = []
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            notes = [a.annotation for a in (
                *args.posonlyargs, *args.args, *args.kwonlyargs,
                args.vararg, args.kwarg) if a is not None] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            notes = [node.annotation]
        for note in filter(None, notes):
            for sub in ast.walk(note):
                if isinstance(sub, ast.BinOp) and isinstance(sub.op,
                                                             ast.BitOr):
                    found.append((sub.lineno, 'X | Y'))
                elif isinstance(sub, ast.Subscript) and isinstance(
                        sub.value, ast.Name) and sub.value.id in (
                            'list', 'dict', 'tuple', 'set', 'frozenset',
                            'type'):
                    found.append((sub.lineno, f'{sub.value.id}[...]'))
    return found


def test_no_newer_annotation_runs_at_import():
    bad = []
    for path in _sources():
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if 'from __future__ import annotations' in text:
            continue
        bad += [f'{os.path.relpath(path, ROOT)}:{line}: {what}'
                for line, what in _newer_annotations(ast.parse(text))]
    assert not bad, 'add `from __future__ import annotations`:\n' + \
        '\n'.join(bad)


def test_a_newer_construct_is_caught(tmp_path):
    """The check itself: 3.9 and 3.10 constructs fail it (ones that parse
    on the Python running vermin)."""
    for code in ('def f(x: list[int]) -> None:\n    pass\n',
                 'print(list(zip([1], [2], strict=True)))\n',
                 'import functools\n\n\n@functools.cache\n'
                 'def f():\n    pass\n',
                 'print("ab".removeprefix("a"))\n'):
        path = tmp_path / 'new.py'
        path.write_text(code)
        proc = _vermin('--eval-annotations', str(path))
        assert proc.returncode != 0 and 'requires' in proc.stdout, \
            proc.stdout + proc.stderr
    assert _newer_annotations(ast.parse(
        'class A:\n    def f(self, x: dict | None = None) -> None:\n'
        '        pass\n')) == [(2, 'X | Y')]
