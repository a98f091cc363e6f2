"""README and docs/ as a reader uses them: every figure they state is in the result file they cite, they
name no commit, time of day or issue, and their commands write only into folders git ignores (the quick
ones run in a clone, whose `git status` stays clean)."""
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

import compare_article
import convert_model
import export_web
import render
import train
from conftest import ROOT

PAGES = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def read(page):
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def paragraphs(page):
    """Blocks of text between blank lines (a table is one), without fenced code."""
    text = re.sub(r'```.*?```', '', read(page), flags=re.S)
    return [block for block in re.split(r'\n\s*\n', text) if block.strip()]


def cited_text(page, block):
    """The text of every result file a block links to (a folder: its .md, .txt and .json files)."""
    texts = []
    for target in re.findall(r'\]\(([^)#\s]+)', block):
        path = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), target))
        if not path.startswith(os.path.join(ROOT, 'results') + os.sep):
            continue
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        files = [path] if os.path.isfile(path) and not path.endswith('.png') else []
        files += [f for ext in ('md', 'txt', 'json') for f in glob.glob(os.path.join(folder, '**', f'*.{ext}'), recursive=True)]
        for name in files:
            with open(name, encoding='utf-8') as f:
                texts.append(f.read())
    return '\n'.join(texts)


UNIT = re.compile(r'(\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?) ?(?:dB|s an epoch)\b|(\d+\.\d+)x\b')
NUMBER = re.compile(r'(?<![\w.\-/])(\d+\.\d\d|\d+(?:\.\d+)?-\d+(?:\.\d+)?)(?![\w.\-/])')


def figures_of(block):
    """PSNRs, speed-ups and epoch times: numbers with dB, x or "s an epoch", and every figure of a table
    that has any."""
    text = re.sub(r'\]\([^)]*\)', ']', re.sub(r'`[^`]*`', '', block))
    figures = [a or b for a, b in UNIT.findall(text)]
    if figures and text.lstrip().startswith('|'):
        figures += NUMBER.findall('\n'.join(text.strip().split('\n')[2:]))  # the rows below the header
    return figures


@pytest.mark.parametrize('page', PAGES)
def test_every_figure_is_found_in_the_result_file_it_cites(page):
    blocks = paragraphs(page)
    for before, block in zip([''] + blocks, blocks):
        figures = figures_of(block)
        if not figures:
            continue
        cited = cited_text(page, block) or cited_text(page, before)  # a table cites in the lines above it
        assert cited, f'{page}: figures without a cited result file: {figures} in\n{block}'
        missing = [f for f in figures if f not in cited]
        assert not missing, f'{page}: {missing} not found in the files cited by\n{block}'


@pytest.mark.parametrize('page', PAGES)
def test_no_commit_time_of_day_or_issue(page):
    text = re.sub(r'\]\([^)]*\)', ']', read(page))
    assert not re.search(r'\b\d\d:\d\d\b|\bUTC\b', text), page
    assert not re.search(r'\bissues?\b', text, re.I), page
    hashes = [word for word in re.findall(r'\b[0-9a-f]{7,40}\b', text) if re.search(r'\d', word) and re.search('[a-f]', word)]
    assert not hashes, (page, hashes)


def commands():
    """Every `python SCRIPT ...` line README and docs/ show, in code blocks and inline, as argument lists."""
    found = []
    for page in PAGES:
        text = read(page)
        lines = [line for block in re.findall(r'```(?:bash)?\n(.*?)```', text, re.S) for line in block.split('\n')]
        lines += [span.replace('\n', ' ') for span in re.findall(r'`(python [^`]+)`', text)]
        for line in lines:
            argv = shlex.split(line, comments=True)
            if argv[:1] == ['python'] and argv[1].endswith('.py') and os.path.isfile(os.path.join(ROOT, argv[1])):
                found.append((page, argv[1:]))
    return found


COMMANDS = commands()
OUTPUT_FLAGS = ('-o', '--out', '--figure', '--runs')


def written_paths(argv):
    """Where a command writes: its output flags, a converter's target, and the scripts' defaults."""
    script, args = os.path.basename(argv[0]), argv[1:]
    if '--help' in args:
        return []
    paths = [args[i + 1] + ('/model.npz' if a == '--runs' else '') for i, a in enumerate(args[:-1]) if a in OUTPUT_FLAGS]
    if script == 'train.py':
        paths = [train.parse_args(args).out + '/model.npz']
    elif script == 'render.py' and not paths:
        parsed = render.parse_args(args)
        paths.append(render.default_output(parsed, parsed.model or 'result/model.npz'))
    elif script == 'compare_article.py' and not paths:
        parsed = compare_article.parse_args(args)
        paths.append(compare_article.default_output(parsed, parsed.model or 'result/model.npz'))
    elif script in ('convert_model.py', 'model_from_snapshot.py'):
        paths.append(args[-1])
    return [p for p in paths if not re.fullmatch(r'[A-Z_]+(\.\w+)?', os.path.basename(p))]  # NEW.npz: the reader's name


def test_the_commands_are_found():
    scripts = {os.path.basename(argv[0]) for _, argv in COMMANDS}
    assert {'train.py', 'render.py', 'compare_article.py', 'export_web.py', 'superres.py'} <= scripts


@pytest.mark.parametrize('page,argv', COMMANDS, ids=[' '.join(argv)[:80] for _, argv in COMMANDS])
def test_every_command_writes_only_where_git_ignores(page, argv):
    tracked = set(subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    for path in written_paths(argv):
        assert os.path.normpath(path) not in tracked and not path.startswith('results/'), (page, argv, path)
        ignored = subprocess.run(['git', 'check-ignore', '-q', '--no-index', path], cwd=ROOT).returncode == 0
        assert ignored, f'{page}: {" ".join(argv)} writes {path}, which git does not ignore'


def is_quick(argv):
    """A render of at most a few million points, a smoke-test training or an export: seconds."""
    script, args = os.path.basename(argv[0]), argv[1:]
    if script == 'train.py':
        return '--test' in args
    if script == 'export_web.py':
        return True
    if script != 'render.py':
        return False
    parsed = render.parse_args(args)
    return render.image_count(parsed, 8) * parsed.resolution[0] * parsed.resolution[1] <= 4_500_000


@pytest.mark.slow
def test_the_quick_commands_leave_a_clone_clean(tmp_path):
    clone = tmp_path / 'clone'
    subprocess.run(['git', 'clone', '-q', ROOT, str(clone)], check=True)
    quick = [argv for _, argv in COMMANDS if is_quick(argv)]
    assert len(quick) >= 10
    for argv in quick:
        model = argv[argv.index('-m') + 1] if '-m' in argv else None
        if model and not (clone / model).exists():  # the model of a training the reader runs first
            continue
        result = subprocess.run([sys.executable] + argv, cwd=clone, capture_output=True, text=True)
        assert result.returncode == 0, (argv, result.stderr)
    status = subprocess.run(['git', 'status', '--porcelain'], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == '', status.stdout
    assert (clone / 'renders').is_dir()  # they did write, where git ignores it
