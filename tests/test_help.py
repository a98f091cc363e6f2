"""Every script's --help renders (argparse fails on a stray '%' only when help is asked for), and each
flag's names, help text, default and choices are those in tests/help.txt: what a flag means or defaults
to changes only together with that file. Compared flag by flag, not as argparse's layout, which differs
between Python versions.

    python tests/test_help.py      # rewrites tests/help.txt from the scripts, after a deliberate change
"""
import argparse
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import compat  # noqa: E402,F401

SCRIPTS = ('train', 'render', 'evaluate', 'export_web', 'convert_model', 'sweep', 'bench_web')
GOLDEN = os.path.join(HERE, 'help.txt')


def parser_of(script):
    """The parser script.parse_args builds, taken when it prints --help (which must not fail)."""
    module, seen = __import__(script), []
    original = argparse.ArgumentParser.print_help
    argparse.ArgumentParser.print_help = lambda self, file=None: seen.append((self, self.format_help()))
    try:
        module.parse_args(['--help'])
    except SystemExit as e:
        assert e.code == 0
    finally:
        argparse.ArgumentParser.print_help = original
    return seen[0][0]


def described(script):
    parser = parser_of(script)
    lines = [f'{parser.prog}: {parser.description}']
    for action in parser._actions:
        names = ', '.join(action.option_strings) or action.dest
        lines.append(f'  {names} | {action.help} | default {action.default!r} | choices {action.choices!r}')
    return lines


def golden():
    with open(GOLDEN) as f:
        text = f.read()
    return {block.split(':')[0]: block.split('\n') for block in text.strip().split('\n\n')}


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_says_what_it_documents(script):
    assert described(script) == golden()[f'{script}.py'], f'{script}.py --help changed: python tests/test_help.py'


if __name__ == '__main__':
    with open(GOLDEN, 'w') as f:
        f.write('\n\n'.join('\n'.join(described(script)) for script in SCRIPTS) + '\n')
    print(GOLDEN)
