"""Summarise repeated runs of `bench.py --json`: per path, each run's training images/s and fraction of the
sgemm ceiling at batch 64, and the range over the runs (the machine's speed varies from run to run).

    python experiments/bench_summary.py results/bench/best_step/after_skylakex_*.json
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: svae/
from svae import cli


def load_runs(paths):
    runs = []
    for path in paths:
        try:
            with open(path) as f:
                found = json.load(f)
            for run in found:  # the keys summary() reads: a KeyError here, not a traceback there
                run['sgemm_gflops'], [row['train_images_per_s_b64'] for row in run['rows']]
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise cli.UsageError(f'{path}: not the JSON of bench.py --json ({e.strerror if isinstance(e, OSError) else e})')
        runs.extend(found)
    return runs


def summary(runs):
    """One line per path: images/s at batch 64 and 100 and the fraction of the ceiling (b64), run by run."""
    lines = [f'{len(runs)} runs; sgemm best per run: ' + ', '.join(f'{r["sgemm_gflops"]:.0f}' for r in runs) + ' GFLOP/s']
    for path in [row['path'] for row in runs[0]['rows']]:
        rows = [next(row for row in r['rows'] if row['path'] == path) for r in runs]
        column = lambda key, scale=1, fmt='.0f': ', '.join(format(row[key] * scale, fmt) for row in rows)
        span = lambda key: f'{min(row[key] for row in rows):.0f}-{max(row[key] for row in rows):.0f}'
        lines.append(f'{path}: b64 {span("train_images_per_s_b64")} images/s ({column("train_images_per_s_b64")}), '
                     f'b100 {span("train_images_per_s_b100")}, of ceiling {column("ceiling_fraction_b64", 100)} %, '
                     f'render 168 {column("render_168_pixels_per_s", 1e-6, ".2f")} Mpx/s, '
                     f'1024 {column("render_1024_pixels_per_s", 1e-6, ".2f")}, '
                     f'peak {rows[0]["peak_train_bytes_b64"] / 2**20:.0f} MiB, '
                     f'{span("epoch_seconds_b64")} s an epoch at batch 64')
    paths = [row['path'] for row in runs[0]['rows']]
    if 'fast' in paths and 'faithful' in paths:
        median = lambda path: statistics.median(next(row for row in r['rows'] if row['path'] == path)
                                                ['train_images_per_s_b64'] for r in runs)
        lines.append(f'fast / faithful, images/s at batch 64, ratio of the medians over the runs: '
                     f'{median("fast") / median("faithful"):.2f}x')
    return '\n'.join(lines)


def main(argv=None):
    parser = cli.ArgumentParser(prog='bench_summary.py', description='Summarise repeated bench.py --json runs')
    parser.add_argument('files', nargs='+', metavar='FILE', help='JSON written by bench.py --json')
    args = parser.parse_args(argv)
    with cli.one_line_errors('bench_summary.py'):
        runs = load_runs(args.files)
    print(summary(runs))


if __name__ == '__main__':
    main()
