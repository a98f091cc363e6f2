"""Two versions of svae/fast_decoder.py compared in paired training steps, on the CPU, at batch 64:

    git show e860046:svae/fastpath.py > /tmp/fastpath_before.py
    python experiments/fast_decoder_pieces/bench_pair.py /tmp/fastpath_before.py fast_decoder.py

Both models (the same weights) train in one process, one step of A and one of B in turn (the order swapped
every pair), so that both see the same phases of other load; the median of B's step time over A's, pair by
pair, resolves differences of a few percent where separate runs of bench.py (minutes apart) do not.
The same file given twice shows this machine's resolution (a ratio of 1 within the quartiles).
"""
import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))  # the checkout: model.py, svae/
import svae
import numpy

import chainer

from svae import cli
from svae import data
from model import SamplingVAE
import fast_decoder


def load_fastpath(path, name):
    """A copy of svae/fast_decoder.py from any file, as a module of its own."""
    if not os.path.isfile(path):
        raise cli.UsageError(f'{path}: no such file (a copy of svae/fast_decoder.py)')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (SyntaxError, ImportError) as e:
        raise cli.UsageError(f'{path}: cannot be loaded ({e})')
    if not hasattr(module, 'FastSamplingDecoder'):
        raise cli.UsageError(f'{path}: not a copy of svae/fast_decoder.py (no FastSamplingDecoder)')
    return module


def make_updater(fastpath, x_train, batchsize):
    numpy.random.seed(0)
    model = SamplingVAE(8, decoder_class=fast_decoder.FastSamplingDecoder)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    return chainer.training.updaters.StandardUpdater(chainer.iterators.SerialIterator(x_train, batchsize), optimizer)


def paired_step_ms(updaters, threads, pairs, warmup=3):
    """Milliseconds of each timed step of each updater, in pairs, the order swapped every pair."""
    times = [[] for _ in updaters]
    with threads:
        for updater in updaters:
            for _ in range(warmup):
                updater.update()
        for pair in range(pairs):
            for k in (0, 1) if pair % 2 == 0 else (1, 0):
                start = time.perf_counter()
                updaters[k].update()
                times[k].append(1e3 * (time.perf_counter() - start))
    return times


def report(names, times):
    lines = [f'{name}: step min {min(t):.1f} ms, median {statistics.median(t):.1f} ms' for name, t in zip(names, times)]
    ratios = [b / a for a, b in zip(*times)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    lines.append(f'B / A, pair by pair: median {statistics.median(ratios):.3f}, '
                 f'quartiles {quartiles[0]:.3f} {quartiles[2]:.3f} ({len(ratios)} pairs)')
    return '\n'.join(lines)


def main(argv=None):
    parser = cli.ArgumentParser(prog='bench_pair.py', description='Paired training steps of two fast_decoder.py files')
    parser.add_argument('a', metavar='A', help='a copy of svae/fast_decoder.py (the reference)')
    parser.add_argument('b', metavar='B', help='another copy of svae/fast_decoder.py')
    parser.add_argument('--pairs', type=cli.positive_int, default=40, help='timed pairs of steps')
    parser.add_argument('--batchsize', '-b', type=cli.positive_int, default=64, help='images per step')
    args = parser.parse_args(argv)
    with cli.one_line_errors('bench_pair.py'):
        modules = [load_fastpath(args.a, 'fastpath_a'), load_fastpath(args.b, 'fastpath_b')]
    x_train = data.load_mnist('train')[0]
    updaters = [make_updater(m, x_train, args.batchsize) for m in modules]
    threads = modules[0].training_threads(updaters[0].get_optimizer('main').target)  # as train.py trains
    print(report(['A ' + args.a, 'B ' + args.b], paired_step_ms(updaters, threads, args.pairs)))


if __name__ == '__main__':
    main()
