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
  and frozensets (dict keys and set items may be None, bools, str, bytes
  and ints below 2**61 - 1 in magnitude: nothing whose hash runs long or
  that an attacker can make collide, as ints that are multiples of
  2**61 - 1 and NaNs do);
- what the :class:`Rebuilder` given to it rebuilds from data: every GLOBAL
  is only a name to it (no module is imported, no attribute is looked
  up), and REDUCE, NEWOBJ and BUILD on a name it does not know are
  refused with :class:`UnsafePickle`, which names the global or opcode.

The opcodes that exist only to call or construct (INST, OBJ, NEWOBJ_EX
with arguments, EXT1/2/4 of copyreg's extension registry, PERSID in text
form, out-of-band buffers) are refused outright.

Work and memory are linear in the pickle's size, with small constants:
the Python heap it builds is charged as it grows and may not pass
``HEAP_BASE + HEAP_PER_BYTE`` bytes per pickle byte (one empty set per
pickle byte would take 216); what comes back is a tree at most
``MAX_DEPTH`` deep with no cycles, whose expansion through shared
references (a DAG of tuples doubles at each level) has at most
``NODES_BASE`` plus one node per pickle byte, so code that walks it
naively (``repr``, ``==``, ``copy.deepcopy``, hashing) stays linear too.
Messages show values through :func:`brief`, which is bounded.
"""
from __future__ import annotations

import collections
import pickletools
import reprlib
import sys
from typing import Any, Callable

ATOMS = (type(None), bool, int, float, complex, str, bytes)
KEY_TYPES = (type(None), bool, int, str, bytes)
_HASH_MODULUS = 2**61 - 1  # CPython's int hash is n mod this
HEAP_BASE = 64 * 2**20
HEAP_PER_BYTE = 32
MAX_DEPTH = 64
NODES_BASE = 2**20


class _Brief(reprlib.Repr):
    """``repr`` cut to a few items per level and three levels, with no
    decimal conversion of huge ints (quadratic before Python 3.11)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxdict = self.maxset = 4
        self.maxfrozenset = self.maxdeque = self.maxarray = 4
        self.maxstring = self.maxother = 80

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f'<int of {x.bit_length()} bits>'
        return repr(x)

    def repr_instance(self, x: Any, level: int) -> str:
        return f'<{type(x).__name__}>'


_brief = _Brief()


def brief(x: Any) -> str:
    """A short ``repr`` of ``x`` for messages: bounded in length and work
    whatever ``x`` is, control characters escaped."""
    return clean(_brief.repr(x), 200)


def clean(text: str, limit: int = 4000) -> str:
    """``text`` with control characters (newlines, ANSI escapes) escaped
    and cut in the middle to ``limit`` characters (the start names the
    file, the end the fix): what a file says reaches a terminal and a log
    as one inert line."""
    text = ''.join(c if c.isprintable() else
                   c.encode('unicode_escape').decode('ascii') for c in text)
    if len(text) > limit:
        half = (limit - 5) // 2
        text = f'{text[:half]} ... {text[-half:]}'
    return text


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
        raise UnsafePickle(f'refused {brief(x)} as a value: globals are only '
                           f'names of what may be rebuilt')
    return x


def hashable(x: Any) -> Any:
    """``x`` if it may be a dict key or set item: None, a bool, str, bytes
    or an int below 2**61 - 1 in magnitude. A tuple's hash walks its items
    (exponentially long through shared references) and can be made to
    collide; ints that are multiples of 2**61 - 1 all hash to 0, as NaNs
    did before Python 3.10: a dict of them fills in quadratic time."""
    x = _value(x)
    if type(x) in KEY_TYPES and not (
            type(x) is int and not -_HASH_MODULUS < x < _HASH_MODULUS):
        return x
    raise UnsafePickle(f'refused {brief(x)} as a dict key or set item: '
                       f'only None, bools, strings, bytes and ints below '
                       f'2**61 - 1')


def check_tree(root: Any, max_nodes: int) -> None:
    """Raise :class:`UnsafePickle` unless ``root`` is a tree at most
    ``MAX_DEPTH`` deep with no cycles, whose expansion through shared
    references has at most ``max_nodes`` nodes. Linear in the number of
    distinct containers: each is visited once, its depth and expanded size
    kept."""
    def children(x: Any) -> Any:
        if isinstance(x, dict):
            extra = getattr(x, '_metadata', None) if isinstance(
                x, collections.OrderedDict) else None
            return [*x.keys(), *x.values(), *([extra] if extra else [])]
        if isinstance(x, (list, tuple, set, frozenset)):
            return x
        return ()

    done: dict = {}  # id -> (depth, expanded size)
    visiting: set = set()
    stack: list = [(root, None)]  # (node, its kids once they are pushed)
    while stack:
        node, kids = stack.pop()
        key = id(node)
        if kids is not None:  # every kid is done: the node's turn
            visiting.discard(key)
            depth, size = 1, 1
            for kid in kids:
                d, n = done.get(id(kid), (0, 1))  # a leaf if not in done
                depth, size = max(depth, d + 1), min(size + n, max_nodes + 1)
            if depth > MAX_DEPTH:
                raise UnsafePickle(f'refused: containers nested deeper than '
                                   f'{MAX_DEPTH} levels')
            if size > max_nodes:
                raise UnsafePickle(
                    f'refused: its containers expand to more than '
                    f'{max_nodes} items through shared references')
            done[key] = (depth, size)
            continue
        if key in done:  # a shared container: its items are listed once
            continue
        kids = children(node)
        if not kids:
            continue
        if key in visiting:
            raise UnsafePickle('refused: a container that holds itself')
        visiting.add(key)
        stack.append((node, kids))
        stack.extend((kid, None) for kid in kids)


_MARK = object()

# opcodes whose argument is the value they push
_PUSH = {
    'INT', 'BININT', 'BININT1', 'BININT2', 'LONG', 'LONG1', 'LONG4',
    'FLOAT', 'BINFLOAT', 'STRING', 'BINSTRING', 'SHORT_BINSTRING',
    'BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'UNICODE', 'BINUNICODE',
    'SHORT_BINUNICODE', 'BINUNICODE8'
}
_CONST = {'NONE': None, 'NEWTRUE': True, 'NEWFALSE': False}
_CREATES = {
    'EMPTY_TUPLE', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'EMPTY_LIST',
    'LIST', 'EMPTY_DICT', 'DICT', 'EMPTY_SET', 'FROZENSET', 'GLOBAL',
    'STACK_GLOBAL', 'REDUCE', 'NEWOBJ', 'NEWOBJ_EX', 'BINPERSID'
}
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
    heap = [HEAP_BASE + HEAP_PER_BYTE * len(data)]

    def charge(nbytes: int) -> None:
        heap[0] -= nbytes
        if heap[0] < 0:
            raise UnsafePickle(
                f'refused: it builds more than {HEAP_PER_BYTE} bytes of '
                f'Python objects per byte of pickle (plus '
                f'{HEAP_BASE >> 20} MiB)')

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
        charge(20 * len(items))  # a dict entry and its share of the table
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
        charge(8 * len(items))
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
        charge(40 * len(items))
        top(set).update(items)

    @op('FROZENSET')
    def _frozenset(arg):
        items = [hashable(x) for x in pop_mark()]
        charge(40 * len(items))
        stack.append(frozenset(items))

    @op('PUT', 'BINPUT', 'LONG_BINPUT')
    def _put(arg):
        memo[arg] = stack[-1]
        charge(100)  # an entry and its int key

    @op('MEMOIZE')
    def _memoize(arg):
        memo[len(memo)] = stack[-1]
        charge(100)  # an entry and its int key

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
                root = _value(stack[0])
                check_tree(root, NODES_BASE + len(data))
                return root
            charge(8)  # a stack slot
            if name in _PUSH:
                charge(sys.getsizeof(arg))
                stack.append(arg)
            elif name in _CONST:
                stack.append(_CONST[name])
            elif name in handlers:
                handlers[name](arg)
                if name in _CREATES:  # a container, or an object rebuilt
                    # (a storage's bytes are bounded by the file apart)
                    charge(sys.getsizeof(stack[-1]) if isinstance(
                        stack[-1], (tuple, list, dict, set, frozenset))
                        else 200)
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
