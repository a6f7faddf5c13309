"""A pickle reader that rebuilds plain data and runs nothing.

Python's ``pickle.Unpickler`` lets a pickle call whatever its globals
resolve to (REDUCE), construct any class (NEWOBJ, INST, OBJ) and set any
attribute on what it built (BUILD); restricting only the globals it may
name (``find_class``) still leaves REDUCE and BUILD free to call and
change what those globals return. :func:`restricted_load` is not built on
it. It walks the opcodes that :func:`pickletools.genops` decodes (the
standard library's opcode table, every protocol 0 to 5) with its own
stack, and the only things a pickle can make are:

- ``None``, bools, ints, floats, str, bytes, tuples, lists, dicts, sets
  and frozensets (dict keys and set items may be atoms or flat tuples of
  atoms: nothing whose hash or equality runs long);
- what the :class:`Rebuilder` given to it rebuilds from data: every GLOBAL
  is only a name to it (no module is imported, no attribute is looked
  up), and REDUCE, NEWOBJ and BUILD on a name it does not know are
  refused with :class:`UnsafePickle`, which names the global or opcode.

The opcodes that exist only to call or construct (INST, OBJ, NEWOBJ_EX
with arguments, EXT1/2/4 of copyreg's extension registry, PERSID in text
form, out-of-band buffers) are refused outright.
"""
from __future__ import annotations

import pickletools
from typing import Any, Callable

ATOMS = (type(None), bool, int, float, complex, str, bytes)


class UnsafePickle(Exception):
    """The pickle asked for something outside plain data."""


class NotAPickle(ValueError):
    """The bytes are not a well-formed pickle."""


class Global:
    """A GLOBAL (``module.name``) as a name only: never imported."""

    __slots__ = ('module', 'name')

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def qualname(self) -> str:
        return f'{self.module}.{self.name}'

    def __repr__(self) -> str:
        return self.qualname


class Pending:
    """An object whose value its BUILD gives (numpy arrays and dtypes)."""

    __slots__ = ('kind', 'value', 'built')

    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind, self.value, self.built = kind, value, False


class Rebuilder:
    """What a pickle may rebuild beyond plain data; subclasses override.

    ``reduce(g, args)`` for ``REDUCE`` on the global ``g``, ``newobj(g,
    args)`` for ``NEWOBJ``, ``build(obj, state)`` for ``BUILD`` (returns
    the built object), ``persistent_load(pid)`` for ``BINPERSID``.
    ``allowed(g)`` says whether ``g`` may be named at all.
    """

    def allowed(self, g: Global) -> bool:
        return False

    def resolve(self, g: Global) -> Any:
        """What the pickle gets for the allowed global ``g``: ``g`` itself
        (a name to call through REDUCE or NEWOBJ), or an inert value."""
        return g

    def reduce(self, g: Global, args: tuple) -> Any:
        raise UnsafePickle(f'refused REDUCE of {g}')

    def newobj(self, g: Global, args: tuple) -> Any:
        raise UnsafePickle(f'refused NEWOBJ of {g}')

    def build(self, obj: Any, state: Any) -> Any:
        raise UnsafePickle(f'refused BUILD on {type(obj).__name__}')

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle('refused a persistent id: this file holds '
                           'no tensor storages')


def _value(x: Any, in_tuple: bool = False) -> Any:
    """``x`` as a value: a Pending must have been built first; a global
    (a name only) may stand in a tuple (the arguments of a REDUCE, a
    persistent id), not in data."""
    if isinstance(x, Pending):
        if not x.built:
            raise UnsafePickle(f'refused: a {x.kind} used before its BUILD')
        return x.value
    if isinstance(x, Global) and not in_tuple:
        raise UnsafePickle(f'refused {x} as a value: globals are only '
                           f'names of what may be rebuilt')
    return x


def hashable(x: Any) -> Any:
    """``x`` if it may be a dict key or set item: an atom or a flat tuple
    of atoms (a nested tuple's hash can be made to run exponentially
    long through shared references)."""
    x = _value(x)
    if isinstance(x, ATOMS) or (isinstance(x, tuple) and all(
            isinstance(i, ATOMS) for i in x)):
        return x
    raise UnsafePickle(f'refused a {type(x).__name__} as a dict key or set '
                       f'item: only numbers, strings, bytes and flat tuples '
                       f'of them')


_MARK = object()

# opcodes whose argument is the value they push
_PUSH = {
    'INT', 'BININT', 'BININT1', 'BININT2', 'LONG', 'LONG1', 'LONG4',
    'FLOAT', 'BINFLOAT', 'STRING', 'BINSTRING', 'SHORT_BINSTRING',
    'BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'UNICODE', 'BINUNICODE',
    'SHORT_BINUNICODE', 'BINUNICODE8'
}
_CONST = {'NONE': None, 'NEWTRUE': True, 'NEWFALSE': False}
_REFUSED = {
    'INST': 'INST builds an instance of any class',
    'OBJ': 'OBJ builds an instance of any class',
    'EXT1': "EXT1 names a global through copyreg's extension registry",
    'EXT2': "EXT2 names a global through copyreg's extension registry",
    'EXT4': "EXT4 names a global through copyreg's extension registry",
    'PERSID': 'a text persistent id',
    'NEXT_BUFFER': 'an out-of-band buffer',
    'READONLY_BUFFER': 'an out-of-band buffer',
    'BYTEARRAY8': 'a bytearray',
}


def restricted_load(data: bytes, rebuilder: Rebuilder) -> Any:
    """The object the pickle ``data`` holds, rebuilt as plain data and by
    ``rebuilder``; :class:`UnsafePickle` for anything else."""
    stack: list = []
    marks: list = []
    memo: dict = {}

    def pop_mark() -> list:
        if not marks:
            raise NotAPickle('malformed pickle: no MARK')
        items = stack[marks[-1]:]
        del stack[marks.pop():]
        return items

    def top(kind: type) -> Any:
        if not stack or not isinstance(stack[-1], kind):
            raise NotAPickle(f'malformed pickle: expected a '
                               f'{kind.__name__} on the stack')
        return stack[-1]

    def set_items(d: dict, items: list) -> None:
        if len(items) % 2:
            raise NotAPickle('malformed pickle: odd SETITEMS')
        for k, v in zip(items[::2], items[1::2]):
            d[hashable(k)] = _value(v)

    handlers: dict = {}

    def op(*names: str) -> Callable:
        def register(f: Callable) -> Callable:
            for n in names:
                handlers[n] = f
            return f
        return register

    @op('MARK')
    def _mark(arg):
        marks.append(len(stack))

    @op('POP')
    def _pop(arg):
        if not stack:
            raise NotAPickle('malformed pickle: POP on an empty stack')
        stack.pop()

    @op('POP_MARK')
    def _pop_mark(arg):
        pop_mark()

    @op('DUP')
    def _dup(arg):
        stack.append(stack[-1])

    @op('EMPTY_TUPLE')
    def _empty_tuple(arg):
        stack.append(())

    @op('TUPLE')
    def _tuple(arg):
        stack.append(tuple(_value(x, True) for x in pop_mark()))

    def tuple_n(n: int) -> Callable:
        def f(arg):
            if len(stack) < n:
                raise NotAPickle('malformed pickle: short stack')
            items = tuple(_value(x, True) for x in stack[-n:])
            del stack[-n:]
            stack.append(items)
        return f

    for n in (1, 2, 3):
        handlers[f'TUPLE{n}'] = tuple_n(n)

    @op('EMPTY_LIST')
    def _empty_list(arg):
        stack.append([])

    @op('LIST')
    def _list(arg):
        stack.append([_value(x) for x in pop_mark()])

    @op('APPEND')
    def _append(arg):
        v = _value(stack.pop())
        top(list).append(v)

    @op('APPENDS')
    def _appends(arg):
        items = [_value(x) for x in pop_mark()]
        top(list).extend(items)

    @op('EMPTY_DICT')
    def _empty_dict(arg):
        stack.append({})

    @op('DICT')
    def _dict(arg):
        d: dict = {}
        set_items(d, pop_mark())
        stack.append(d)

    @op('SETITEM')
    def _setitem(arg):
        v, k = stack.pop(), stack.pop()
        set_items(top(dict), [k, v])

    @op('SETITEMS')
    def _setitems(arg):
        items = pop_mark()
        set_items(top(dict), items)

    @op('EMPTY_SET')
    def _empty_set(arg):
        stack.append(set())

    @op('ADDITEMS')
    def _additems(arg):
        items = [hashable(x) for x in pop_mark()]
        top(set).update(items)

    @op('FROZENSET')
    def _frozenset(arg):
        stack.append(frozenset(hashable(x) for x in pop_mark()))

    @op('PUT', 'BINPUT', 'LONG_BINPUT')
    def _put(arg):
        memo[arg] = stack[-1]

    @op('MEMOIZE')
    def _memoize(arg):
        memo[len(memo)] = stack[-1]

    @op('GET', 'BINGET', 'LONG_BINGET')
    def _get(arg):
        if arg not in memo:
            raise NotAPickle(f'malformed pickle: memo {arg} unset')
        v = memo[arg]
        stack.append(v.value if isinstance(v, Pending) and v.built else v)

    def push_global(module: Any, name: Any) -> None:
        if not (isinstance(module, str) and isinstance(name, str)):
            raise UnsafePickle('refused STACK_GLOBAL of non-strings')
        g = Global(module, name)
        if not rebuilder.allowed(g):
            raise UnsafePickle(f'refused GLOBAL {g.qualname}')
        stack.append(rebuilder.resolve(g))

    @op('GLOBAL')
    def _global(arg):
        module, name = arg.split(' ', 1)
        push_global(module, name)

    @op('STACK_GLOBAL')
    def _stack_global(arg):
        name, module = _value(stack.pop()), _value(stack.pop())
        push_global(module, name)

    def callee() -> tuple:
        args, g = stack.pop(), stack.pop()
        if not isinstance(g, Global):
            raise UnsafePickle(f'refused a call of a {type(g).__name__}: '
                               f'only named globals are rebuilt')
        if not isinstance(args, tuple):
            raise NotAPickle(f'malformed pickle: {g} called with a '
                               f'{type(args).__name__}')
        return g, args

    @op('REDUCE')
    def _reduce(arg):
        g, args = callee()
        stack.append(rebuilder.reduce(g, args))

    @op('NEWOBJ')
    def _newobj(arg):
        g, args = callee()
        stack.append(rebuilder.newobj(g, args))

    @op('NEWOBJ_EX')
    def _newobj_ex(arg):
        kwargs = stack.pop()
        if kwargs != {}:
            raise UnsafePickle('refused NEWOBJ_EX with keyword arguments')
        g, args = callee()
        stack.append(rebuilder.newobj(g, args))

    @op('BUILD')
    def _build(arg):
        state = _value(stack.pop())
        if not stack:
            raise NotAPickle('malformed pickle: BUILD on an empty stack')
        obj = stack.pop()
        if isinstance(obj, Global):
            raise UnsafePickle(f'refused BUILD on {obj}: a pickle may not '
                               f'change a class or function')
        stack.append(rebuilder.build(obj, state))

    @op('BINPERSID')
    def _binpersid(arg):
        stack.append(rebuilder.persistent_load(_value(stack.pop())))

    @op('PROTO', 'FRAME')
    def _ignore(arg):
        pass

    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name == 'STOP':
                if len(stack) != 1 or marks:
                    raise NotAPickle('malformed pickle at STOP')
                return _value(stack[0])
            if name in _PUSH:
                stack.append(arg)
            elif name in _CONST:
                stack.append(_CONST[name])
            elif name in handlers:
                handlers[name](arg)
            else:
                raise UnsafePickle(f'refused opcode {name}: '
                                   f'{_REFUSED.get(name, "not plain data")}')
    except (UnsafePickle, NotAPickle):
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError,
            UnicodeDecodeError, RecursionError) as e:
        raise NotAPickle(f'malformed pickle ({type(e).__name__}: '
                         f'{str(e)[:120]})') from None
    raise NotAPickle('malformed pickle: no STOP')
