"""Config text from a checkpoint, as data that is safe to execute.

mmengine keeps the run's config in its checkpoints as Python text (its
``Config.pretty_text``: ``meta['config']``, ``meta['cfg']``,
``message_hub['runtime_info']['cfg']``) and runs it again through
``Config.fromstring(text, '.py')``: ``Runner.resume`` to compare the GPU
count, ``BaseInferencer`` to build a model from weights alone. Text from a
file of unknown origin is therefore code. :func:`literal_config` reads the
text as data without executing anything: assignments of literals and of
``dict(...)``, lists, tuples and sets of them, which is all that
``pretty_text`` writes for a config of plain values. It returns the same
values written again as Python literals, so that ``Config.fromstring``
executing the result only rebuilds them; anything else in the text makes
it return ``None`` (the caller drops the text and says so).

What ``Config.fromstring`` does besides executing is closed off too:
top-level names starting with ``_`` (``_base_`` reads other config files)
are dropped; ``custom_imports`` is kept only when every module it names is
already imported (importing a module runs it); braces in strings are
written as escapes, so the ``{{ ... }}`` placeholders that mmengine
substitutes into the text before executing it (environment variables,
base variables) cannot appear in the result.
"""
from __future__ import annotations

import ast
import math
import sys
from typing import Any

MAX_TEXT = 2**20  # characters; real configs' text is under 100 kB
MAX_DEPTH = 32


class NotLiteral(ValueError):
    """The text holds something other than literal assignments."""


def _value(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise NotLiteral(f'nested deeper than {MAX_DEPTH} levels')
    if isinstance(node, ast.Constant) and type(node.value) in (
            str, bytes, int, float, bool, type(None)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(
            node.op, (ast.USub, ast.UAdd)) and isinstance(
                node.operand, ast.Constant) and type(
                    node.operand.value) in (int, float):
        v = node.operand.value
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_value(e, depth + 1) for e in node.elts]
        kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        if kind is set and not all(type(i) in (str, int, bool)
                                   for i in items):
            raise NotLiteral('a set of other than strings and ints')
        return kind(items)
    if isinstance(node, ast.Dict):
        keys = [_value(k, depth + 1) if k is not None else None
                for k in node.keys]
        if not all(type(k) in (str, int, bool) for k in keys):
            raise NotLiteral('a dict key other than a string or an int')
        return dict(zip(keys, (_value(v, depth + 1) for v in node.values)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict' and len(node.args) <= 1 and all(
                k.arg is not None for k in node.keywords):
        # dict(a=1) and, for keys that are not names, dict({'.a': 1})
        base = _value(node.args[0], depth + 1) if node.args else {}
        if not isinstance(base, dict):
            raise NotLiteral('dict() of other than a dict')
        return {**base, **{k.arg: _value(k.value, depth + 1)
                           for k in node.keywords}}
    raise NotLiteral(f'{type(node).__name__} at line '
                     f'{getattr(node, "lineno", "?")}')


def _render(x: Any) -> str:
    """``x`` as a Python literal with no ``{`` or ``}`` inside strings."""
    if isinstance(x, (str, bytes)):
        return repr(x).replace('{', '\\x7b').replace('}', '\\x7d')
    if isinstance(x, float) and not math.isfinite(x):
        raise NotLiteral(f'the float {x}')
    if isinstance(x, (bool, int, float, type(None))):
        return repr(x)
    if isinstance(x, dict):
        return '{' + ', '.join(f'{_render(k)}: {_render(v)}'
                               for k, v in x.items()) + '}'
    if isinstance(x, list):
        return '[' + ', '.join(map(_render, x)) + ']'
    if isinstance(x, tuple):
        return '(' + ''.join(f'{_render(i)}, ' for i in x) + ')'
    if isinstance(x, set):
        return ('{' + ', '.join(map(_render, sorted(x, key=repr))) + '}'
                if x else 'set()')
    raise NotLiteral(type(x).__name__)


def literal_config(text: Any) -> tuple[str | None, str]:
    """``(safe_text, note)``: the config ``text`` written again as literal
    assignments, and what was left out of it; or ``(None, why)`` when the
    text is not a config of literal values."""
    if not isinstance(text, str):
        return None, f'not text but a {type(text).__name__}'
    if len(text) > MAX_TEXT:
        return None, f'{len(text)} characters, more than {MAX_TEXT}'
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return None, f'not Python ({type(e).__name__})'
    values: dict = {}
    dropped = []
    try:
        for stmt in tree.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                raise NotLiteral(f'a {type(stmt).__name__} statement at '
                                 f'line {stmt.lineno}')
            name = stmt.targets[0].id
            value = _value(stmt.value, 0)
            if name.startswith('_'):
                dropped.append(name)
            elif name == 'custom_imports' and not _imported(value):
                dropped.append(name)
            else:
                values[name] = value
        safe = ''.join(f'{name} = {_render(value)}\n'
                       for name, value in values.items())
    except (NotLiteral, RecursionError) as e:
        return None, f'not literal values ({str(e)[:100]})'
    note = f'left out {", ".join(dropped)}' if dropped else ''
    return safe, note


def _imported(custom_imports: Any) -> bool:
    """Whether every module ``custom_imports`` names is imported already
    (importing it again is then a no-op)."""
    imports = custom_imports.get('imports') if isinstance(
        custom_imports, dict) else None
    if isinstance(imports, str):
        imports = [imports]
    return isinstance(imports, list) and all(
        isinstance(m, str) and m in sys.modules for m in imports)


__all__ = ['literal_config']
