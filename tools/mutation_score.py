"""Mutation score of the modules that setup.cfg names: the article's model, the fast decoder, the model files.

Runs mutmut (3.8.1, outside the test suite) and counts its verdicts per module:

    pip install mutmut==3.8.1
    python tools/mutation_score.py                  # a markdown table on stdout; mutmut's work in mutants/
    python tools/mutation_score.py --survivors      # and the name of each mutant no test caught

A score is (killed + timeout) / mutants: a mutant stopped for taking too long counts as caught (it made the
tests' tiny runs full-size). `mutmut show NAME` prints a survivor's change.
"""
import argparse
import collections
import importlib.util
import re
import subprocess
import sys

CAUGHT = ('killed', 'timeout')
# a mutant's name: module, then 'x_' (function) or 'xǁ' (class method), then the function and its number
MUTANT = re.compile(r'^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S+): (?P<status>.+)$')


def run_mutmut(max_children):
    command = [sys.executable, '-m', 'mutmut', 'run', '--max-children', str(max_children)]
    subprocess.run(command, check=True, stdout=sys.stderr)  # its progress apart from the table


def verdicts():
    """{mutant name: status} from `mutmut results --all true`."""
    listing = subprocess.run([sys.executable, '-m', 'mutmut', 'results', '--all', 'true'],
                             check=True, capture_output=True, text=True).stdout
    found = {}
    for line in listing.splitlines():
        match = MUTANT.match(line)
        if match:
            found[match['name']] = (match['module'], match['status'].strip())
    return found


def tally(found):
    """{module: Counter of statuses}."""
    counts = collections.defaultdict(collections.Counter)
    for module, status in found.values():
        counts[module][status] += 1
    return counts


def table(counts):
    lines = ['| module | mutants | killed | timeout | survived | other | score |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for module in sorted(counts):
        count = counts[module]
        total = sum(count.values())
        caught = sum(count[status] for status in CAUGHT)
        other = total - caught - count['survived']
        lines.append(f"| {module.replace('.', '/')}.py | {total} | {count['killed']} | {count['timeout']} | "
                     f"{count['survived']} | {other} | {100 * caught / total:.1f}% |")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--max-children', type=int, default=2, help='mutants run at once')
    parser.add_argument('--no-run', action='store_true', help='count the verdicts already in mutants/')
    parser.add_argument('--survivors', action='store_true', help='list the mutants that no test caught')
    args = parser.parse_args(argv)
    if importlib.util.find_spec('mutmut') is None:
        sys.exit('mutation_score.py: mutmut is not installed (pip install mutmut==3.8.1)')
    try:
        if not args.no_run:
            run_mutmut(args.max_children)
        found = verdicts()
    except FileNotFoundError as error:
        sys.exit(f'mutation_score.py: {error}')
    except subprocess.CalledProcessError as error:
        sys.exit(f'mutation_score.py: mutmut stopped with exit status {error.returncode} (its output is above)')
    if not found:
        sys.exit('mutation_score.py: mutmut reports no mutants (run without --no-run)')
    print(table(tally(found)))
    if args.survivors:
        print()
        for name, (_, status) in sorted(found.items()):
            if status not in CAUGHT:
                print(f'{name}: {status}')


if __name__ == '__main__':
    main()
