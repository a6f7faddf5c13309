"""A corpus of malicious checkpoints, built at test time.

Each attack, if it worked, creates the file ``marker`` (code ran or a file
was written), changes a class or function of the process (checked by the
harness), crashes the interpreter, or exhausts memory. ``build(folder,
marker)`` writes one file per attack and returns their names. The
pickles are assembled from opcodes, so the gadgets need not exist here.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zipfile

import torch

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


# --- opcodes --------------------------------------------------------------
def s(text: str) -> bytes:  # BINUNICODE
    b = text.encode()
    return b'X' + struct.pack('<I', len(b)) + b


def by(data: bytes) -> bytes:  # BINBYTES
    return b'B' + struct.pack('<I', len(data)) + data


def i(n: int) -> bytes:  # LONG1
    b = n.to_bytes((n.bit_length() + 8) // 8 or 1, 'little', signed=True)
    return b'\x8a' + bytes([len(b)]) + b


def g(module: str, name: str) -> bytes:  # GLOBAL
    return b'c' + f'{module}\n{name}\n'.encode()


def t(*items: bytes) -> bytes:  # MARK ... TUPLE
    return b'(' + b''.join(items) + b't'


def call(fn: bytes, *args: bytes) -> bytes:  # fn(*args) via REDUCE
    return fn + t(*args) + b'R'


def d(**items: bytes) -> bytes:  # a dict
    return b'}(' + b''.join(s(k) + v for k, v in items.items()) + b'u'


def pkl(body: bytes, proto: int = 2) -> bytes:
    return b'\x80' + bytes([proto]) + body + b'.'


NONE, TRUE, FALSE, EMPTY_TUPLE = b'N', b'\x88', b'\x89', b')'


# --- containers -------------------------------------------------------------
def zip_checkpoint(data_pkl: bytes, records: dict | None = None,
                   compress: bool = False) -> bytes:
    """torch.save's zip layout with ``data_pkl`` and ``records``."""
    out = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, 'w', mode) as z:
        z.writestr('archive/data.pkl', data_pkl)
        z.writestr('archive/version', '3\n')
        for name, data in (records or {}).items():
            z.writestr(f'archive/data/{name}', data)
    return out.getvalue()


def legacy(*pickles: bytes) -> bytes:
    return (pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2) +
            pickle.dumps({'protocol_version': 1001}, 2) + b''.join(pickles))


def tar_checkpoint(data_pkl: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w') as tar:
        for name, data in (('sys_info', pickle.dumps({}, 2)),
                           ('pickle', data_pkl),
                           ('storages', pickle.dumps(0, 2)),
                           ('tensors', pickle.dumps(0, 2))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def torchscript() -> bytes:
    out = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), out)
    return out.getvalue()


def tensor(storage_key: str, numel: int, size: tuple, stride: tuple,
           storage: str = 'FloatStorage') -> bytes:
    pid = t(s('storage'), g('torch', storage), s(storage_key), s('cpu'),
            i(numel))
    return call(g('torch._utils', '_rebuild_tensor_v2'),
                pid + b'Q', i(0), t(*map(i, size)), t(*map(i, stride)),
                FALSE, call(g('collections', 'OrderedDict')))


# --- gadgets: pickle bodies that would act on ``marker`` ---------------------
def gadgets(marker: str) -> dict:
    sh = s(f'touch {marker}')
    py = s(f'open({marker!r}, "w").close()')
    os_mod = call(g('builtins', '__import__'), s('os'))
    inner = pickle.dumps(_Touch(marker), 2)
    inner_zip = zip_checkpoint(pkl(call(g('posix', 'system'), sh)))
    hb = 'mmengine.logging.history_buffer'
    getattr_ = g('builtins', 'getattr')
    # HistoryBuffer.__setstate__ widens the class-wide statistics names,
    # then getattr reaches object.__getattribute__ -> __globals__ -> eval
    widen = (g(hb, 'HistoryBuffer') + EMPTY_TUPLE + b'\x81' +
             d(statistics_methods=d(__getattribute__=NONE, __init__=NONE,
                                    get=NONE)) + b'b0')
    ga = call(getattr_, g(hb, 'HistoryBuffer'), s('__getattribute__'))
    init = call(getattr_, g(hb, 'HistoryBuffer'), s('__init__'))
    glob = ga + t(init, s('__globals__')) + b'R'
    get = ga + t(glob, s('get')) + b'R'
    builtins_ = get + t(s('__builtins__')) + b'R'
    eval_ = ga + t(builtins_, s('get')) + b'R'
    poison = widen + eval_ + t(s('eval')) + b'R' + t(py) + b'R'
    return {
        'os.system': call(g('os', 'system'), sh),
        'posix.system': call(g('posix', 'system'), sh),
        'nt.system': call(g('nt', 'system'), sh),
        'builtins.eval': call(g('builtins', 'eval'), py),
        '__builtin__.eval': call(g('__builtin__', 'eval'), py),
        'builtins.exec': call(g('builtins', 'exec'), py),
        '__import__': call(call(getattr_, os_mod, s('system')), sh),
        'subprocess.Popen': call(g('subprocess', 'Popen'),
                                 b']' + b'(' + s('touch') + s(marker) + b'e'),
        'subprocess.getoutput': call(g('subprocess', 'getoutput'), sh),
        'runpy._run_code': call(g('runpy', '_run_code'), py, b'}'),
        'marshal+FunctionType': call(
            g('types', 'FunctionType'),
            call(g('marshal', 'loads'),
                 by(__import__('marshal').dumps(compile(
                     f'open({marker!r}, "w").close()', 'x', 'exec')))),
            b'}') + EMPTY_TUPLE + b'R',
        'functools.partial': call(g('functools', 'partial'),
                                  g('os', 'system'), sh) + EMPTY_TUPLE +
        b'R',
        'operator.attrgetter': call(call(g('operator', 'attrgetter'),
                                         s('system')), os_mod) + t(sh) +
        b'R',
        'operator.methodcaller': call(call(g('operator', 'methodcaller'),
                                           s('system'), sh), os_mod),
        'pickle.loads': call(g('pickle', 'loads'), by(inner)),
        '_pickle.loads': call(g('_pickle', 'loads'), by(inner)),
        'torch.storage._load_from_bytes': call(
            g('torch.storage', '_load_from_bytes'), by(inner_zip)),
        'torch.load': call(g('torch', 'load'), s(marker + '.src')),
        'numpy runstring': call(g('numpy.testing._private.utils',
                                  'runstring'), py, b'}'),
        'timeit': call(g('timeit', 'timeit'), py),
        'copyreg EXT1': b'\x82\x01' + t(sh) + b'R',
        'INST': b'(' + b'S' + f"'touch {marker}'".encode() + b'\n' +
        b'ios\nsystem\n',
        'OBJ': b'(' + g('os', 'system') + sh + b'o',
        'NEWOBJ_EX': g('subprocess', 'Popen') + t(
            b']' + b'(' + s('touch') + s(marker) + b'e') + b'}' + b'\x92',
        'HistoryBuffer poisoning': poison,
        'BUILD on Counter': g('collections', 'Counter') + t(
            NONE, d(__name__=s('pwned'))) + b'b',
        'BUILD on a rebuild function': g(
            'torch._utils', '_rebuild_tensor_v2') + t(
                NONE, d(__defaults__=t(s('pwned')))) + b'b',
        'numpy dtype flags + scalar': call(
            g('numpy.core.multiarray', 'scalar'),
            call(g('numpy', 'dtype'), s('f8'), FALSE, TRUE) +
            t(i(3), s('|'), NONE, NONE, NONE, i(8), i(8), i(63)) + b'b',
            by(struct.pack('<Q', 0x41414141))),
        'numpy object array': call(
            g('numpy.core.multiarray', '_reconstruct'),
            g('numpy', 'ndarray'), t(i(0)), by(b'b')) + t(
                i(1), t(i(1)),
                call(g('numpy', 'dtype'), s('O8'), FALSE, TRUE) + t(
                    i(3), s('|'), NONE, NONE, NONE, i(-1), i(-1), i(63)) +
                b'b', FALSE, b']' + s('x') + b'a') + b'b',
    }


class _Touch:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def build(folder: str, marker: str) -> list:
    """Write the corpus under ``folder``; returns the file names."""
    files: dict = {}
    for name, body in gadgets(marker).items():
        files[f'zip {name}'] = zip_checkpoint(pkl(body))
    for proto in range(6):
        raw = pickle.dumps({'state_dict': _Touch(marker)}, proto)
        files[f'raw pickle protocol {proto}'] = raw
        files[f'zip protocol {proto}'] = zip_checkpoint(raw)
    evil = pickle.dumps(_Touch(marker), 2)
    files['legacy'] = legacy(evil)
    files['legacy honest'] = legacy(pickle.dumps({'a': 1}, 2))
    files['tar'] = tar_checkpoint(evil)
    files['torchscript'] = torchscript()
    # bounds: a storage larger than its record, a compressed record, a
    # stride-0 view passed to set(), overlapping views
    files['record smaller than storage'] = zip_checkpoint(
        pkl(d(w=tensor('0', 10**7, (10**7,), (1,)))), {'0': b'\0' * 8})
    files['compressed record'] = zip_checkpoint(
        pkl(d(w=tensor('0', 2**24, (2**24,), (1,)))),
        {'0': b'\0' * 2**26}, compress=True)
    files['stride 0 into set'] = zip_checkpoint(
        pkl(call(g('builtins', 'set'), tensor('0', 2, (10**8,), (0,)))),
        {'0': b'\0' * 8})
    files['view past its storage'] = zip_checkpoint(
        pkl(d(w=tensor('0', 2, (4,), (1,)))), {'0': b'\0' * 8})
    files['deep tuple hash'] = zip_checkpoint(pkl(_hash_bomb(), 4))
    # work and memory out of proportion to the file
    files['colliding ints in a set'] = zip_checkpoint(pkl(
        b'\x8f(' + b''.join(i(k * (2**61 - 1)) for k in range(1, 100001))
        + b'\x90', 4))
    files['big tuple reused as set items'] = zip_checkpoint(pkl(
        b'\x8f((' + b'K\x00' * 500000 + b't\x94' + b'h\x00' * 250000 +
        b'\x90', 4))
    files['an object per byte'] = zip_checkpoint(pkl(
        b'](' + b'\x8f' * 4500000 + b'e', 4))
    files['shared tuples in a message'] = zip_checkpoint(pkl(
        g('numpy.core.multiarray', '_reconstruct') + b'(' +
        g('numpy', 'ndarray') + _shared_tuples(60) + by(b'b') + b'tR', 4))
    files['shared tuples in a dtype check'] = zip_checkpoint(pkl(
        g('numpy', 'dtype') + b'(' + _shared_tuples(60) + FALSE + TRUE +
        b'tR', 4))
    files['one deflated record listed 20000 times'] = _listed_again()
    files['encrypted record'] = _encrypted()
    files['terminal escapes in a name'] = zip_checkpoint(pkl(
        g('os\x1b[2J', 'system\x1b[31m') + EMPTY_TUPLE + b'R'))
    names = []
    for name, data in files.items():
        path = os.path.join(folder, name.replace(' ', '_').replace(
            '/', '_') + '.pth')
        with open(path, 'wb') as f:
            f.write(data)
        names.append(os.path.basename(path))
    # what the torch.load gadget would load: a pickle that touches the marker
    with open(marker + '.src', 'wb') as f:
        f.write(zip_checkpoint(pickle.dumps(_Touch(marker), 2)))
    return names


def _shared_tuples(levels: int) -> bytes:
    """(x, x) where x is (y, y) ...: 2**levels leaves through memo
    references (protocol 4's MEMOIZE)."""
    body = b')\x94'
    for k in range(levels):
        body += b'0h' + bytes([k]) + b'h' + bytes([k]) + b'\x86\x94'
    return body


def _listed_again() -> bytes:
    """A zip whose central directory lists one deflated 400 MiB record of
    zeros 20000 times (1.6 MB): inflating each entry takes hours."""
    import zlib
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = b''.join(z.compress(b'\0' * 2**24) for _ in range(25)) + \
        z.flush()
    size, crc, name = 25 * 2**24, 0, b'archive/data.pkl'
    for _ in range(25):
        crc = zlib.crc32(b'\0' * 2**24, crc)
    local = struct.pack('<4s5H3I2H', b'PK\x03\x04', 20, 0, 8, 0, 0, crc,
                        len(data), size, len(name), 0) + name
    entry = struct.pack('<4s6H3I5H2I', b'PK\x01\x02', 20, 20, 0, 8, 0, 0,
                        crc, len(data), size, len(name), 0, 0, 0, 0, 0,
                        0) + name
    directory = entry * 20000
    end = struct.pack('<4s4H2IH', b'PK\x05\x06', 0, 0, 20000, 20000,
                      len(directory), len(local) + len(data), 0)
    return local + data + directory + end


def _encrypted() -> bytes:
    """A torch.save zip whose data.pkl has the encrypted flag set."""
    data = bytearray(zip_checkpoint(pickle.dumps({'a': 1}, 2)))
    at = 0
    while True:  # every local header and directory entry of the record
        at = data.find(b'archive/data.pkl', at + 1)
        if at < 0:
            return bytes(data)
        if data[at - 30:at - 26] == b'PK\x03\x04':
            data[at - 24] |= 1
        elif data[at - 46:at - 42] == b'PK\x01\x02':
            data[at - 38] |= 1


def _hash_bomb() -> bytes:
    """A tuple nested 60 deep through shared references, as a set item:
    hashing it would take 2**60 steps."""
    body = b'\x8f(\x88\x94'  # EMPTY_SET, MARK, True (memo 0)
    for k in range(60):  # (x, x) where x is the previous: memo k + 1
        body += b'h' + bytes([k]) + b'h' + bytes([k]) + b'\x86\x94'
    return body + b'\x90'  # ADDITEMS
