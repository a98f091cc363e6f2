"""README's commands as a user pastes them: through a shell, with Python replaced by a stand-in that
records what reaches each step; and every usage line parsed by its script's own parser."""
import json
import os
import re
import shlex
import stat
import subprocess
import sys

import pytest

import compare_article
import convert_model
import superres
import render
import train
from conftest import ROOT

README = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()


def section(title):
    """The text of README's section `## title`."""
    return README[README.index(f'\n## {title}\n'):].split('\n## ')[1]


# python3 -m venv DIR makes DIR/bin/pip and DIR/bin/python that log their argv and PIP_CONSTRAINT, and
# DIR/bin/activate that puts them first on PATH.
STAND_IN = r'''#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  for tool in pip python; do
    printf '#!/bin/sh\nexec "%s" "%s" "$0" "$@"\n' "$RECORDER_PYTHON" "$RECORDER" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
  done
  printf 'PATH="%s/bin:$PATH"\n' "$(cd "$3" && pwd)" > "$3/bin/activate"
  exit 0
fi
echo "unexpected python3 call: $*" >&2
exit 1
'''
RECORDER = '''import json, os, sys
with open(os.environ['STEPS'], 'a') as f:
    f.write(json.dumps({'tool': os.path.basename(sys.argv[1]), 'argv': sys.argv[2:],
                        'PIP_CONSTRAINT': os.environ.get('PIP_CONSTRAINT')}) + '\\n')
'''


def bash_blocks(text):
    return [block.strip() for block in re.findall(r'```bash\n(.*?)```', text, re.S)]


def paste(command, tmp_path):
    """Run one README command line in bash in an empty directory; the steps that reached Python."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'python3').write_text(STAND_IN)
    (bin_dir / 'python3').chmod(stat.S_IRWXU)
    (tmp_path / 'recorder.py').write_text(RECORDER)
    work = tmp_path / 'clone'
    work.mkdir()
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', STEPS=str(tmp_path / 'steps'),
               RECORDER=str(tmp_path / 'recorder.py'), RECORDER_PYTHON=sys.executable)
    env.pop('PIP_CONSTRAINT', None)
    subprocess.run(['bash', '-c', command], cwd=work, env=env, check=True)
    with open(tmp_path / 'steps') as f:
        return [json.loads(line) for line in f]


def test_install_and_tests_are_single_lines():
    assert [len(block.split('\n')) for block in bash_blocks(section('Install'))] == [1]
    assert [len(block.split('\n')) for block in bash_blocks(section('Tests'))] == [1]


@pytest.mark.slow
def test_install_then_the_quick_start_reaches_each_step(tmp_path):
    steps = paste(bash_blocks(section('Install'))[0] + '\n' + bash_blocks(section('Quick start'))[0], tmp_path)
    assert [s['tool'] for s in steps] == ['pip', 'python', 'python']
    pip, training, rendering = steps
    assert pip['argv'] == ['install', '-q', '-e', '.'] and pip['PIP_CONSTRAINT'] == 'constraints.txt'
    assert training['argv'][0] == 'train.py' and rendering['argv'][0] == 'render.py'
    for step, parse_args in ((training, train.parse_args), (rendering, render.parse_args)):
        assert parse_args(step['argv'][1:]).gpu == -1, step
    out = train.parse_args(training['argv'][1:]).out
    assert render.parse_args(rendering['argv'][1:]).model == os.path.join(out, 'model.npz')  # draws what it trained


@pytest.mark.slow
def test_test_line_reaches_pytest(tmp_path):
    steps = paste(bash_blocks(section('Tests'))[0], tmp_path)
    assert [(s['tool'], s['argv']) for s in steps] == [('pip', ['install', '-q', '-e', '.[test]']),
                                                       ('python', ['-m', 'pytest', '-q'])]
    assert steps[0]['PIP_CONSTRAINT'] == 'constraints.txt'


def test_ci_runs_the_readmes_test_line():
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        assert bash_blocks(section('Tests'))[0] in f.read()


def setup_arguments():
    """What setup.py hands to setuptools.setup."""
    import setuptools
    seen = {}
    original, setuptools.setup = setuptools.setup, lambda **kwargs: seen.update(kwargs)
    try:
        with open(os.path.join(ROOT, 'setup.py')) as f:
            exec(compile(f.read(), 'setup.py', 'exec'), {'__name__': '__main__'})
    finally:
        setuptools.setup = original
    return seen


def test_the_gpu_extras_bring_the_cuda_libraries_as_readme_says():
    extras = setup_arguments()['extras_require']
    assert extras['cuda13'] == ['cupy-cuda13x[ctk]'] and extras['cuda12'] == ['cupy-cuda12x[ctk]']
    assert "pip install -e '.[cuda13]'" in README and "'.[cuda12]'" in README


PARSERS = {'train.py': train.parse_args, 'render.py': render.parse_args, 'superres.py': superres.parse_args,
           'convert_model.py': convert_model.parse_args, 'compare_article.py': compare_article.parse_args}
USAGE_LINES = [line for block in bash_blocks(README) for line in block.split('\n') if line.split()[:1] == ['python']]


def script_of(argv):
    return os.path.basename(argv[1])


def test_the_usage_lines_are_those_of_known_scripts():
    assert len(USAGE_LINES) >= 10 and all(script_of(shlex.split(line, comments=True)) in PARSERS for line in USAGE_LINES)


@pytest.mark.parametrize('line', USAGE_LINES)
def test_every_usage_line_parses(line):
    argv = shlex.split(line, comments=True)
    assert os.path.isfile(os.path.join(ROOT, argv[1])), line
    PARSERS[script_of(argv)](argv[2:])


def test_no_usage_line_writes_into_the_checkouts_committed_files():
    tracked = set(subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True)
                  .stdout.split())
    for line in USAGE_LINES:
        argv = shlex.split(line, comments=True)
        args = PARSERS[script_of(argv)](argv[2:])
        if script_of(argv) == 'train.py':
            assert not any(path.startswith(args.out.rstrip('/') + '/') for path in tracked), line
        elif script_of(argv) == 'render.py':
            out = args.out or render.default_output(args, args.model or 'result/model.npz')
            assert out not in tracked and not out.startswith('results/'), line
        elif script_of(argv) == 'compare_article.py':
            out = args.out or compare_article.default_output(args, args.model or 'result/model.npz')
            assert out not in tracked and not out.startswith('results/'), line


def test_readmes_render_lines_write_distinct_files():
    """Each render line pasted in turn keeps the files of the lines before it (a pose is part of the name)."""
    outs = []
    for line in USAGE_LINES:
        argv = shlex.split(line, comments=True)
        if script_of(argv) == 'render.py':
            args = PARSERS['render.py'](argv[2:])
            outs.append(args.out or render.default_output(args, args.model or 'result/model.npz'))
    assert len(outs) >= 8 and len(set(outs)) == len(outs), outs
