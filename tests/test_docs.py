"""The documentation cannot drift from the code.

``README.md``, ``configs/README.md`` and every page under ``docs/`` are read
as a user would read them, and each of these must hold:

* every tool a command invokes (``tools/*.py``, ``tools/*.sh``,
  ``mim <command>``) exists, and a shell tool's sub-command (``run.sh
  demo``, ``setup_env.sh py38``) is one its ``case`` statement handles;
* every ``--flag`` given to one of our Python tools, directly or through
  a shell launcher that forwards to it (``dist_train.sh`` -> ``train.py``),
  is one its argparse parser accepts, with a value among its ``choices``
  and no more values than its ``nargs``. A flag quoted alone in prose
  (``--amp``) is held against the tool last named in the same section, or
  against every tool where the section names none;
* every repository path named in code (``configs/...``, ``tools/...``,
  ``mmhatnet/...``, ...) exists; ``{a,b}`` is expanded and ``*`` must
  match something; ``<placeholders>`` are skipped;
* every relative link and image resolves, down to the heading it names;
* each figure (a time, size or share with its unit, a package's version
  range or bound, a value of the paper's metrics; see ``figures``) is
  stated in one page only, the changelog aside, and the others link there;
* every README section and ``page.md#heading`` that the pins files, the
  tools, the package or a page name (``README, "Weights"``,
  ``docs/get_started.md#supported-stacks``) exists;
* no page but the changelog speaks of the project's own history.

The parsers are the tools' own: each tool is run as ``__main__`` with
``ArgumentParser.parse_args`` replaced by a function that hands back the
parser before anything else happens. The checker functions take text, so
the tests at the end feed them small made-up pages to show that each kind
of drift fails.
"""
from __future__ import annotations

import argparse
import functools
import glob
import itertools
import re
import runpy
import shlex
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / 'README.md', ROOT / 'configs' / 'README.md',
                *(ROOT / 'docs').rglob('*.md')])
README_MAX_LINES = 250

#: Top-level folders and files whose paths, named in code, must exist.
REPO_DIRS = ('configs', 'tools', 'mmhatnet', 'tests', 'docs',
             'requirements', 'resources', '.ci')
REPO_FILES = ('setup.py', 'pytest.ini', 'model-index.yml', 'LICENSE',
              'CITATION.cff', 'README.md')
#: Flags of other programs (pip, mim) that the pages quote alone in prose.
EXTERNAL_FLAGS = {'--no-deps', '--no-index', '--dry-run',
                  '--no-build-isolation', '--gpus'}
MIM_COMMANDS = {'download', 'gridsearch', 'install', 'list', 'run',
                'search', 'test', 'train', 'uninstall'}
MIM_PACKAGES = {'mmdet', 'mmseg', 'mmsegmentation', 'mmpretrain'}
SHELL_LANGS = {'', 'bash', 'sh', 'shell', 'console'}
SEPARATORS = {'|', '||', '&&', ';', '&', '>', '>>', '2>&1'}
#: The project's own history has no place in user documentation: who
#: changed what, what the code did before, and what has not happened "yet"
#: (a clause ending in "yet": "no GPU report exists yet."; the reader's
#: "has no mmcv yet, ..." ends none).
HISTORY = re.compile(
    r'\b(this session|earlier sessions?|at commit|commit [0-9a-f]{7,}|'
    r'issue #\d+|since it moved|no longer|used to be|was renamed|'
    r'before the fix|we (added|fixed|changed|rewrote)|previously|'
    r'originally|formerly|until now|so far|not yet|yet(?=[\s*_]*[.;(])|'
    r'(was|were) [\d.,-]+ ?% off)\b', re.I)


class Item(NamedTuple):
    """A piece of a page: ``kind`` is 'heading', 'code' (inline) or
    'block' (fenced, ``lang`` its info string); ``line`` is 1-based."""
    kind: str
    text: str
    line: int
    lang: str = ''


# --- reading a page ---------------------------------------------------------

def scan(text: str) -> list[Item]:
    """Headings, inline code spans and fenced blocks, in page order."""
    items: list[Item] = []
    lines = text.split('\n')
    fence, lang, fence_line = None, '', 0
    block: list[str] = []
    para: list[tuple[int, str]] = []

    def flush() -> None:
        if not para:
            return
        start = para[0][0]
        joined = '\n'.join(t for _, t in para)
        for m in re.finditer(r'(`+)(.+?)\1', joined, re.S):
            if '\n\n' not in m.group(2):
                line = start + joined.count('\n', 0, m.start())
                items.append(Item('code', ' '.join(m.group(2).split()),
                                  line))
        para.clear()

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence):
                items.append(Item('block', '\n'.join(block), fence_line,
                                  lang))
                fence, block = None, []
            else:
                block.append(line)
            continue
        m = re.match(r'(`{3,}|~{3,})\s*([\w+-]*)', stripped)
        if m:
            flush()
            fence, lang, fence_line = m.group(1), m.group(2).lower(), number
            continue
        if stripped.startswith('#'):
            flush()
            items.append(Item('heading', stripped.lstrip('#').strip(),
                              number))
        elif not stripped:
            flush()
        else:
            para.append((number, line))
    flush()
    return items


def prose(text: str) -> str:
    """The page without fenced blocks and inline code (where links are)."""
    text = re.sub(r'^ *(`{3,}|~{3,}).*?^ *\1 *$', '', text,
                  flags=re.M | re.S)
    return re.sub(r'(`+)(.+?)\1', '', text, flags=re.S)


def commands(item: Item) -> list[list[str]]:
    """Shell command lines of a fenced shell block or an inline span, as
    token lists (continuation lines joined, comments dropped)."""
    if item.kind == 'block' and item.lang not in SHELL_LANGS:
        return []
    text = item.text.replace('\\\n', ' ')
    out = []
    for line in text.split('\n'):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote in prose: plain split
            tokens = line.split()
        if tokens:
            out.append(tokens)
    return out


def is_placeholder(token: str) -> bool:
    """CONFIG, H, KEY=VALUE, <version>, ... : stands for a value."""
    return bool(re.fullmatch(r'[A-Z][A-Z0-9_=.-]*', token)) or any(
        c in token for c in '<$') or '...' in token


def unbracket(token: str) -> str:
    return token.lstrip('[').rstrip(']')


# --- the tools' own parsers -------------------------------------------------

class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__()
        self.parser = parser


def _hand_back(self, *args, **kwargs):
    raise _Captured(self)


@functools.lru_cache(maxsize=None)
def tool_options(name: str) -> dict:
    """``tools/<name>``'s option strings -> argparse actions (its
    sub-commands' options included)."""
    path = ROOT / 'tools' / name
    with mock.patch.object(argparse.ArgumentParser, 'parse_args',
                           _hand_back), \
            mock.patch.object(argparse.ArgumentParser, 'parse_known_args',
                              _hand_back):
        try:
            runpy.run_path(str(path), run_name='__main__')
        except _Captured as captured:
            parser = captured.parser
        else:
            raise AssertionError(f'{path} parsed no arguments')
    options: dict = {}
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            for option in action.option_strings:
                options[option] = action
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return options


@functools.lru_cache(maxsize=None)
def shell_tool(name: str) -> tuple[dict, str | None]:
    """A shell tool's sub-commands (the arms of its first ``case``, each
    with the Python tool it runs, or None) and the Python tool it forwards
    its own arguments to (``dist_train.sh`` -> ``train.py``), or None."""
    text = (ROOT / 'tools' / name).read_text()
    arms: dict = {}
    lines = text.split('\n')
    start = next((i for i, line in enumerate(lines)
                  if re.match(r'\s*case\s.*\sin\s*$', line)), None)
    if start is not None:
        indent = None
        body: list[str] = []
        current = None
        for line in lines[start + 1:]:
            m = re.match(r'(\s*)([\w|-]+)\)', line)
            if m and (indent is None or len(m.group(1)) == indent):
                indent = len(m.group(1))
                current = m.group(2)
                body = arms.setdefault(current, [])
            if re.match(r'\s*esac\b', line) and indent is not None and \
                    len(line) - len(line.lstrip()) < indent:
                break
            if current is not None:
                body.append(line)
        arms = {name_: next(iter(re.findall(r'tools/(\w+\.py)',
                                            '\n'.join(body))), None)
                for arm, body in arms.items() for name_ in arm.split('|')}
    forward = re.search(r'(?:dist|slurm)_launch\.sh"?\s+(\w+\.py)', text)
    return arms, forward.group(1) if forward else None


def python_tool(tool: str, args: list[str]) -> str | None:
    """The Python tool whose parser takes ``args`` given to ``tool``."""
    if tool.endswith('.py'):
        return tool
    arms, forward = shell_tool(tool)
    if arms and args and not is_placeholder(args[0]):
        return arms.get(args[0])
    return forward


# --- the checks -------------------------------------------------------------

def check_arguments(tool: str, args: list[str]) -> list[str]:
    """Problems with the arguments ``args`` given to ``tools/<tool>``."""
    problems = []
    if tool.endswith('.sh'):
        arms, _ = shell_tool(tool)
        first = unbracket(args[0]) if args else ''
        if arms and first and not first.startswith('-') \
                and not is_placeholder(first) and first not in arms:
            problems.append(f'tools/{tool} has no sub-command {first!r} '
                            f'(it has {", ".join(sorted(arms))})')
            return problems
    target = python_tool(tool, args)
    if target is None or not (ROOT / 'tools' / target).is_file():
        return problems
    options = tool_options(target)
    tokens = [unbracket(t) for t in args]
    for i, token in enumerate(tokens):
        if not token.startswith('--') or token == '--':
            continue
        flag = token.split('=', 1)[0]
        action = options.get(flag)
        via = '' if target == tool else f' (through tools/{tool})'
        if action is None:
            problems.append(f'tools/{target}{via} has no flag {flag}; it '
                            f'takes {", ".join(sorted(options))}')
            continue
        values = [] if '=' in token else list(itertools.takewhile(
            lambda t: not t.startswith('-'), tokens[i + 1:]))
        if '=' in token:
            values = [token.split('=', 1)[1]]
        problems += _check_values(f'tools/{target} {flag}', action, values)
    return problems


def _check_values(where: str, action: argparse.Action,
                  values: list[str]) -> list[str]:
    nargs = action.nargs
    if nargs == 0:
        return []
    count = {None: 1, '?': 1}.get(nargs, nargs)
    taken = values if nargs in ('+', '*', argparse.REMAINDER) else \
        values[:count]
    problems = []
    if isinstance(count, int) and len(values) > count and (
            values[count] == '...' or
            (action.type in (int, float) and
             re.fullmatch(r'-?[\d.]+', values[count]))):
        problems.append(f'{where} takes {count} value(s); repeat the flag '
                        f'for more ({" ".join(values[:count + 1])})')
    if action.choices is not None:
        for value in taken:
            if is_placeholder(value):
                continue
            brace = re.fullmatch(r'\{(.*)\}', value)
            for choice in (brace.group(1).split(',') if brace
                           else value.split('|')):
                choices = [str(c) for c in action.choices]
                if choice not in choices:
                    problems.append(f'{where} does not take {choice!r} '
                                    f'(choices: {", ".join(choices)})')
    return problems


def tool_calls(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """(tool, arguments) for each ``tools/...`` in a command line."""
    calls = []
    for i, token in enumerate(tokens):
        m = re.fullmatch(r'(?:\./)?tools/([\w/.-]+\.(?:py|sh))', token)
        if m:
            args = list(itertools.takewhile(
                lambda t: t not in SEPARATORS, tokens[i + 1:]))
            calls.append((m.group(1), args))
    return calls


def check_mim(tokens: list[str]) -> list[str]:
    if 'mim' not in tokens:
        return []
    i = tokens.index('mim')
    rest = tokens[i + 1:]
    if not rest or rest[0] in ('...', '-h', '--help'):
        return []
    if rest[0] not in MIM_COMMANDS:
        return [f'mim has no command {rest[0]!r} '
                f'(it has {", ".join(sorted(MIM_COMMANDS))})']
    if rest[0] in ('train', 'test') and len(rest) > 1 and \
            not is_placeholder(rest[1]) and not rest[1].startswith('-') \
            and rest[1] not in MIM_PACKAGES:
        return [f'mim {rest[0]} {rest[1]}: not an OpenMMLab toolbox '
                f'({", ".join(sorted(MIM_PACKAGES))})']
    return []


@functools.lru_cache(maxsize=None)
def all_flags() -> frozenset:
    """Every flag of every Python tool (those that parse arguments), and
    the external ones the pages quote."""
    flags = set(EXTERNAL_FLAGS)
    for path in sorted((ROOT / 'tools').rglob('*.py')):
        try:
            flags |= set(tool_options(str(path.relative_to(ROOT / 'tools'))))
        except AssertionError:  # a helper module, not a command
            continue
    return frozenset(flags)


def check_commands(items: list[Item]) -> list[str]:
    """Tools, sub-commands and flags of every command and quoted flag."""
    problems = []
    context = None  # the Python tool last named in this section
    for item in items:
        if item.kind == 'heading':
            context = None
            continue
        where = f'line {item.line}'
        lines = commands(item)
        named = False
        for tokens in lines:
            for tool, args in tool_calls(tokens):
                named = True
                if not (ROOT / 'tools' / tool).is_file():
                    problems.append(f'{where}: tools/{tool} does not exist')
                    continue
                problems += [f'{where}: {p}'
                             for p in check_arguments(tool, args)]
                target = python_tool(tool, args)
                if target is not None or tool.endswith('.sh'):
                    context = target or tool
            problems += [f'{where}: {p}' for p in check_mim(tokens)]
        if item.kind == 'code' and not named and lines and \
                lines[0][0].startswith('--') and 'mim' not in lines[0]:
            flag = lines[0][0].split('=', 1)[0]
            if context is None:
                if flag not in all_flags():
                    problems.append(f'{where}: no tool takes {flag}')
            elif context.endswith('.py'):
                problems += [
                    f'{where}: {p} (quoted after tools/{context} in this '
                    f'section; name the tool in the same code span if it is '
                    f'another)' for p in check_arguments(context, lines[0])]
    return problems


_PATH = re.compile(
    r'(?<![\w./$~-])((?:' + '|'.join(re.escape(d) for d in REPO_DIRS) +
    r')(?:/(?:[\w.*<>-]|\{[\w.,-]*\})*)+|(?:' +
    '|'.join(re.escape(f) for f in REPO_FILES) + r')(?![\w.-]))')


def expand_braces(path: str) -> list[str]:
    m = re.search(r'\{([^{}]*)\}', path)
    if not m:
        return [path]
    return [expanded for choice in m.group(1).split(',')
            for expanded in expand_braces(
                path[:m.start()] + choice + path[m.end():])]


def check_paths(items: list[Item]) -> list[str]:
    """Every repository path named in code exists."""
    problems = []
    for item in items:
        if item.kind == 'heading':
            continue
        for m in _PATH.finditer(item.text):
            path = m.group(1).rstrip('.')
            if '<' in path or '>' in path:
                continue
            for candidate in expand_braces(path):
                if '*' in candidate:
                    if not glob.glob(str(ROOT / candidate)):
                        problems.append(f'line {item.line}: nothing matches '
                                        f'{candidate}')
                elif not (ROOT / candidate).exists():
                    problems.append(f'line {item.line}: {candidate} does '
                                    f'not exist')
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    heading = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    heading = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return heading.replace(' ', '-')


def anchors(text: str) -> set:
    seen: dict = {}
    for item in scan(text):
        if item.kind == 'heading':
            base = slug(item.text)
            n = seen.get(base, 0)
            seen[base] = n + 1
    found = set()
    for base, n in seen.items():
        found.add(base)
        found |= {f'{base}-{k}' for k in range(1, n)}
    return found


def check_links(text: str, page: Path) -> list[str]:
    """Every relative link and image resolves, with its heading."""
    body = prose(text)
    targets = re.findall(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\)',
                         body)
    targets += re.findall(r'<(?:img|a)\s[^>]*?(?:src|href)="([^"]+)"',
                          body)
    problems = []
    for target in targets:
        if re.match(r'[a-z][a-z0-9+.-]*:', target, re.I):
            continue  # https:, mailto:
        path, _, anchor = target.partition('#')
        if not path:  # this page
            if anchor not in anchors(text):
                problems.append(f'{target}: this page has no heading '
                                f'#{anchor}')
            continue
        file = (page.parent / path).resolve()
        if not file.exists():
            problems.append(f'{target}: {file} does not exist')
        elif anchor and file.suffix == '.md' and \
                anchor not in anchors(file.read_text()):
            problems.append(f'{target}: {file.name} has no heading '
                            f'#{anchor}')
    return problems


def check_page(text: str, page: Path) -> list[str]:
    items = scan(text)
    return (check_commands(items) + check_paths(items) +
            check_links(text, page))


# --- one copy of each figure -------------------------------------------------

#: A figure's units, each with the spelling two copies are compared in.
UNITS = {'minutes': 'min', 'minute': 'min', 'mins': 'min', 'min': 'min',
         'seconds': 's', 'sec': 's', 's': 's', 'ms': 'ms',
         'GB': 'GB', 'MB': 'MB', 'GiB': 'GiB', 'MiB': 'MiB', 'KiB': 'KiB',
         '%': '%'}
#: Packages whose version ranges and bounds are figures.
PACKAGES = {'Python': 'Python', 'torch': 'torch', 'torchvision':
            'torchvision', 'numpy': 'numpy', 'mmengine': 'mmengine',
            'mmcv': 'mmcv', 'mmdet': 'mmdet', 'mmsegmentation': 'mmseg',
            'mmseg': 'mmseg', 'mmpretrain': 'mmpretrain'}
#: The paper's metrics, whose values are figures.
METRICS = ('top-1', 'mIoU', 'box AP', 'mask AP')
#: Figures that may stand in two pages, each with the reason it is
#: restated rather than linked to. Empty: the tables that restate the
#: paper's parameter counts (the README's arch table for picking a neck,
#: the weights guide's for picking a file, the model zoo's against the
#: measured ones) give them without a unit, so they are not figures here.
RESTATED: dict = {}
#: Pages that are a record, not a reference: they may restate.
RECORDS = {'docs/changelog.md'}

_NUMBER = r'\d+(?:\.\d+)?'
_UNIT = '|'.join(sorted(map(re.escape, UNITS), key=len, reverse=True))
#: ``s`` only after a space (``1990s`` is no time); ``3 min 13 s`` is one.
_QUANTITY = re.compile(
    r'(?<![\w.^/-])(' + _NUMBER + r')(?:\s*(?:to|-)\s*(' + _NUMBER +
    r'))?(?:\s?(?!s\b)|\s)(' + _UNIT +
    r')(?![\w])(?:(?<=min)\s+(\d+)\s?s(?![\w]))?')
_VERSION = r'\d+(?:\.\d+)+'
_VERSIONS = re.compile(
    r'\b(' + '|'.join(PACKAGES) + r')[ (]*(?:(' + _VERSION + r')\s+to\s+(' +
    _VERSION + r')\b|(>=|<=|<|>)\s*(' + _VERSION + r')\b)')
_METRIC = re.compile(r'\b(' + '|'.join(map(re.escape, METRICS)) +
                     r')\s+(\d+\.\d+(?:\s*/\s*\d+\.\d+)*)')


def unquoted(text: str) -> str:
    """The page with fenced blocks and inline code blanked (their line
    breaks kept), and link targets dropped: the text a reader reads."""
    def blank(m: re.Match) -> str:
        return '\n' * m.group(0).count('\n')
    text = re.sub(r'^ *(`{3,}|~{3,}).*?^ *\1 *$', blank, text,
                  flags=re.M | re.S)
    text = re.sub(r'(`+)(.+?)\1', blank, text, flags=re.S)
    return re.sub(r'\]\([^)]*\)', ']', text)


def figures(text: str) -> dict:
    """The figures a page states, each with the line it is first on.

    A figure is, outside code: a number or a range of two with a unit of
    time, size or share (``15 min``, ``10 to 15 minutes``, ``3 min 13 s``,
    ``5.5 GB``, ``64 MiB``, ``7-8%``); a package's version range or bound
    (``mmcv 2.0.1 to 2.1``, ``numpy (1.24 to 2.3)``, ``torch >= 2.0.1``);
    or a value of one of the paper's metrics (``top-1 79.8``, each value
    of ``mIoU 43.6 / 46.6``). Units and package names are compared in one
    spelling (``minutes`` is ``min``, ``mmsegmentation`` is ``mmseg``).
    """
    text = unquoted(text)
    found: dict = {}

    def add(key: str, at: int) -> None:
        found.setdefault(key, text.count('\n', 0, at) + 1)

    for m in _QUANTITY.finditer(text):
        low, high, unit, seconds = m.groups()
        key = f'{low} to {high} {UNITS[unit]}' if high else \
            f'{low} {UNITS[unit]}'
        add(f'{key} {seconds} s' if seconds else key, m.start())
    for m in _VERSIONS.finditer(text):
        package, low, high, op, bound = m.groups()
        add(f'{PACKAGES[package]} {low} to {high}' if low else
            f'{PACKAGES[package]} {op} {bound}', m.start())
    for m in _METRIC.finditer(text):
        for value in re.findall(r'\d+\.\d+', m.group(2)):
            add(f'{m.group(1)} {value}', m.start())
    return found


def check_figures(pages: dict) -> list:
    """Each figure stated in one page only: ``pages`` maps a page's name
    to its text; the problems name each figure and every page it is in."""
    where: dict = {}
    for name, text in sorted(pages.items()):
        if name in RECORDS:
            continue
        for key, line in figures(text).items():
            where.setdefault(key, []).append(f'{name}:{line}')
    return [f'{key!r} is stated in {" and ".join(at)}: keep it in one '
            f'page and link there from the others'
            for key, at in sorted(where.items())
            if len(at) > 1 and key not in RESTATED]


# --- sections named from elsewhere -------------------------------------------

#: Files other than the pages that may point at a README section.
SOURCES = ('requirements/*.txt', 'tools/**/*.sh', 'tools/**/*.py',
           'mmhatnet/**/*.py', 'configs/**/*.py', 'setup.py', '.ci/*')
#: "README, "Environment"", "the README's 'Weights' section", "README
#: section "Usage"", "README.md, Deployment": the quoted name, or one
#: capitalised phrase after a comma.
_SECTION_NAME = re.compile(
    r'((?:configs/)?README)(?:\.md)?(?:\'s|,| section)\s+(?:section\s+)?'
    r'(?:["\u201c\']([^"\u201d\'\n]+)["\u201d\']|([A-Z][\w -]*?)'
    r'(?=\s*[;:),.]|\s+section))')
#: ``docs/get_started.md#supported-stacks``, in a comment or a link.
_MD_ANCHOR = re.compile(r'(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)')


def check_sections(text: str, file: Path) -> list[str]:
    """Every README section that ``file`` names, by its heading or by a
    ``page.md#anchor``, exists; a path is taken from ``file``'s folder or,
    failing that, from the repository's root."""
    problems = []
    for m in _SECTION_NAME.finditer(text):
        readme, name = m.group(1) + '.md', m.group(2) or m.group(3)
        headings = {item.text.lower() for item in
                    scan((ROOT / readme).read_text())
                    if item.kind == 'heading'}
        if name.strip().lower() not in headings:
            line = text.count('\n', 0, m.start()) + 1
            problems.append(f'line {line}: {readme} has no section '
                            f'{name!r}')
    for m in _MD_ANCHOR.finditer(text):
        path, anchor = m.groups()
        line = text.count('\n', 0, m.start()) + 1
        target = next((c for c in (file.parent / path, ROOT / path)
                       if c.is_file()), None)
        if target is None:
            problems.append(f'line {line}: {path} does not exist')
        elif anchor not in anchors(target.read_text()):
            problems.append(f'line {line}: {path} has no heading '
                            f'#{anchor}')
    return problems


def sources() -> list[Path]:
    return sorted({path for pattern in SOURCES
                   for path in ROOT.glob(pattern) if path.is_file()})


# --- the documentation as it is ---------------------------------------------

def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_pages_are_there():
    names = {_name(p) for p in PAGES}
    assert {'README.md', 'configs/README.md', 'docs/get_started.md',
            'docs/contributing.md', 'docs/changelog.md'} <= names
    assert (ROOT / 'LICENSE').read_text().count('Apache License') >= 1
    assert len((ROOT / 'README.md').read_text().split('\n')) <= \
        README_MAX_LINES


@pytest.mark.parametrize('page', PAGES, ids=_name)
def test_commands_name_real_tools_and_flags(page):
    problems = check_commands(scan(page.read_text()))
    assert not problems, f'{_name(page)}:\n' + '\n'.join(problems)


@pytest.mark.parametrize('page', PAGES, ids=_name)
def test_named_paths_exist(page):
    problems = check_paths(scan(page.read_text()))
    assert not problems, f'{_name(page)}:\n' + '\n'.join(problems)


@pytest.mark.parametrize('page', PAGES, ids=_name)
def test_links_resolve(page):
    problems = check_links(page.read_text(), page)
    assert not problems, f'{_name(page)}:\n' + '\n'.join(problems)


def check_history(text: str) -> list[str]:
    """Where the page speaks of the project's history (a phrase may run
    over a line break)."""
    flat = text.replace('\n', ' ')
    return [f'line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}'
            for m in HISTORY.finditer(flat)]


@pytest.mark.parametrize(
    'page', [p for p in PAGES if p.name != 'changelog.md'], ids=_name)
def test_no_project_history(page):
    found = check_history(page.read_text())
    assert not found, f'{_name(page)} speaks of the project\'s history: ' \
        f'{found}'


def test_each_figure_is_stated_once():
    problems = check_figures({_name(p): p.read_text() for p in PAGES})
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('file', [*sources(), *PAGES], ids=_name)
def test_named_readme_sections_exist(file):
    problems = check_sections(file.read_text(), file)
    assert not problems, f'{_name(file)}:\n' + '\n'.join(problems)


def test_mim_commands_are_mims():
    """MIM_COMMANDS, which the checker holds mim commands against, is
    what the installed mim offers."""
    click = pytest.importorskip('click')
    cli = pytest.importorskip('mim.cli').cli
    assert set(cli.list_commands(click.Context(cli))) == MIM_COMMANDS


def test_citation_matches_the_readme():
    yaml = pytest.importorskip('yaml')
    cff = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    readme = (ROOT / 'README.md').read_text()
    paper = cff['preferred-citation']
    assert paper['doi'] in readme and paper['title'] in readme
    assert cff['license'] == 'Apache-2.0'


# --- the checker fails where it should --------------------------------------

FAKE = ROOT / 'docs' / 'fake.md'


def _problems(markdown: str) -> list[str]:
    return check_page(markdown, FAKE)


def test_a_true_page_passes():
    page = '''# Title

```bash
python tools/train.py configs/fpn_hatnet_small.py --resume --amp
bash tools/dist_train.sh configs/fpn_hatnet_small.py 8 --auto-scale-lr
bash tools/run.sh demo --task imagenet
python tools/export_onnx.py CONFIG --out X.onnx [--dynamic [--check-shape H W]]
mim train mmdet configs/retinanet_hatnet_{tiny,small}.py --gpus 8
```

`tools/test.py` takes `--work-dir`; see
[train](user_guides/train_test.md#resume),
![demo](../resources/demo_mask_rcnn.png) and
`configs/mask-rcnn_hatnet_small_g1-*_g2-*.py`.
'''
    assert _problems(page) == []


@pytest.mark.parametrize('command, message', [
    ('python tools/train.py configs/fpn_hatnet_small.py --made-up',
     'tools/train.py has no flag --made-up'),
    ('python tools/test.py configs/fpn_hatnet_small.py CKPT --resume',
     'tools/test.py has no flag --resume'),
    ('bash tools/dist_test.sh CONFIG CKPT 8 --amp',
     'tools/test.py (through tools/dist_test.sh) has no flag --amp'),
    ('python tools/export_onnx.py CONFIG --out F --check-shape H W ...',
     'takes 2 value(s)'),
    ('python tools/export_onnx.py CONFIG --out F --check-shape 3 5 7 9',
     'takes 2 value(s)'),
    ('python tools/export_onnx.py CONFIG --out F --exporter onnx',
     "does not take 'onnx'"),
    ('bash tools/run.sh install', "tools/run.sh has no sub-command"),
    ('python tools/nope.py', 'tools/nope.py does not exist'),
    ('mim fly mmdet CONFIG', "mim has no command 'fly'"),
])
def test_a_made_up_command_fails(command, message):
    problems = _problems(f'```bash\n{command}\n```\n')
    assert any(message in p for p in problems), problems


def test_a_flag_quoted_in_prose_is_held_against_its_tool():
    page = ('`tools/test.py CONFIG CKPT` takes `--work-dir` and `--amp`.\n\n'
            '## Elsewhere\n\n`--no-such-flag` and `--amp`\n')
    problems = _problems(page)
    assert len(problems) == 2, problems
    assert 'tools/test.py has no flag --amp' in problems[0]
    assert 'no tool takes --no-such-flag' in problems[1]


@pytest.mark.parametrize('markdown, message', [
    ('`configs/nope_hatnet_small.py`', 'configs/nope_hatnet_small.py does'),
    ('```python\nmodel = "configs/{fpn,nope}_hatnet_small.py"\n```',
     'configs/nope_hatnet_small.py does not exist'),
    ('`tools/nope_*.sh`', 'nothing matches tools/nope_*.sh'),
])
def test_a_missing_path_fails(markdown, message):
    problems = _problems(markdown + '\n')
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize('markdown, message', [
    ('[train](user_guides/nope.md)', 'does not exist'),
    ('[train](user_guides/train_test.md#nope)', 'has no heading #nope'),
    ('[here](#nope)\n\n# Only heading\n', 'this page has no heading #nope'),
    ('<img src="../resources/nope.png">', 'does not exist'),
])
def test_a_broken_link_fails(markdown, message):
    problems = _problems(markdown + '\n')
    assert any(message in p for p in problems), problems


def test_links_in_code_are_not_links():
    assert _problems('`[x](nope.md)`\n\n```md\n[x](nope.md)\n```\n') == []


@pytest.mark.parametrize('figure, copy', [
    ('A cold set-up takes about 15 min.', 'set-up: 15\nminutes'),
    ('The compile takes 10 to 15 minutes.', '(10 to 15 min on 2 cores)'),
    ('The self-check takes 3 min 13 s.', '| check | 3 min 13 s |'),
    ('The venv holds 5.5 GB.', 'about 5.5 GB'),
    ('At most 64 MiB.', 'plus 64 MiB'),
    ('It was 7-8% off.', 'a 7 to 8 % gap'),
    ('mmengine 0.8.5 to 0.10', 'mmengine (0.8.5 to 0.10)'),
    ('mmsegmentation 1.0 to 1.2', 'mmseg 1.0 to 1.2'),
    ('with torch >= 2.0.1', 'torch>=2.0.1'),
    ('top-1 79.8 / 82.6 / 84.0', '| Small | top-1 82.6 |'),
    ('mIoU 43.6', 'the paper: mIoU 43.6'),
])
def test_a_figure_in_two_pages_fails(figure, copy):
    problems = check_figures({'README.md': f'{figure}\n',
                              'docs/fake.md': f'# Fake\n\n{copy}\n'})
    assert len(problems) == 1, problems
    assert 'README.md:1 and docs/fake.md:3' in problems[0], problems


def test_one_copy_of_each_figure_passes():
    pages = {
        'README.md': 'Times: [measured](docs/fake.md#times), mmcv '
                     '[in range](docs/fake.md#stacks), the 1990s.\n',
        'docs/fake.md': '# Times\n\nA set-up takes 15 min, and 15 min '
                        'again on the same page; mmcv 2.0.1 to 2.1.\n',
        # not figures: code, link targets, counts without a unit, bare
        # versions, decades
        'docs/other.md': '`15 min`\n\n```\nmmcv 2.0.1 to 2.1\n```\n\n'
                         '[here](a_15 min.md), 8 GPUs, 2 cores, 12.7 M '
                         'parameters, 1.4e-4, Python 3.8, mmcv 2.1.0, '
                         'top-1 of 79.8, the 1990s\n',
        'docs/changelog.md': 'Set-up: 15 min (a record, not a page).\n'}
    assert check_figures(pages) == []
    with mock.patch.dict(RESTATED, {'15 min': 'a made-up reason'}):
        assert check_figures({'README.md': '15 min\n',
                              'docs/fake.md': '15 min\n'}) == []


@pytest.mark.parametrize('text, message', [
    ('# torch 2.0 (see README, "Environment")\n',
     "README.md has no section 'Environment'"),
    ("the README's 'Deployment' section\n",
     "README.md has no section 'Deployment'"),
    ('# deployment (README, Deployment; the [deploy] extra)\n',
     "README.md has no section 'Deployment'"),
    ('# see README.md#environment\n', 'README.md has no heading #environment'),
    ('configs/README.md#nope', 'configs/README.md has no heading #nope'),
    ('docs/nope.md#stacks', 'docs/nope.md does not exist'),
])
def test_a_missing_readme_section_fails(text, message):
    problems = check_sections(text, ROOT / 'requirements' / 'fake.txt')
    assert any(message in p for p in problems), problems


def test_named_sections_that_exist_pass():
    text = ('# see README, "Model zoo"; the README\'s "weights" section;\n'
            '# README.md#citation, docs/get_started.md#supported-stacks and\n'
            '# configs/README.md#results-and-models;\n'
            '"""The README\'s main job: the demo."""\n')
    assert check_sections(text, ROOT / 'tools' / 'fake.py') == []


@pytest.mark.parametrize('markdown', [
    '**No part of this page has run on a GPU yet.**',
    'There are no GPU figures yet\n([GPU](gpu.md)).',
    'a graph exported at 256x320\nwas 7-8% off at 193x241',
    'The check is not yet run on a GPU.',
    'It previously padded with zeros.',
    'The flag was renamed.',
])
def test_project_history_fails(markdown):
    assert check_history(markdown), markdown


def test_the_readers_yet_is_not_history():
    assert check_history('Where the environment has no mmcv yet, install '
                         'it; small yet exact.') == []
