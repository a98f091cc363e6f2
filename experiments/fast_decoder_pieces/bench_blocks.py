"""The measurements behind the fused training path (docs/performance.md), at batch 64 on the CPU:

    python experiments/fast_decoder_pieces/bench_blocks.py

- the decoder's six 256x256 products of a step: as whole-batch products (the BLAS's own threads), and in
  blocks of fast_decoder.BLOCK_ROWS rows, each core its own blocks with a one-thread BLAS;
- the decoder with its Bernoulli NLL, forward and backward: the whole-grid Function and F.bernoulli_nll,
  against FusedBernoulliNLL;
- a whole training step on the fast path, with and without the BLAS held to one thread;
- the ReLU of a block against the scalar 0 and against a row of zeros.
Each number is the best of several measurements, in milliseconds.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))  # the checkout: model.py, svae/
import svae
import numpy

import chainer
import chainer.functions as F
import threadpoolctl

from svae import cli
from svae import data
import fast_decoder
from model import SamplingVAE

BATCH, POINTS, UNITS = 64, 28 * 28, 256


def best_ms(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def products(repeats):
    rng = numpy.random.RandomState(0)
    a = rng.rand(BATCH * POINTS, UNITS).astype(numpy.float32)
    w = rng.rand(UNITS, UNITS).astype(numpy.float32)
    out = numpy.empty_like(a)
    blocks = fast_decoder._row_blocks(BATCH, POINTS, fast_decoder.BLOCK_ROWS)
    workers = fast_decoder._workers(len(blocks))

    def whole():
        for _ in range(6):
            numpy.matmul(a, w, out=out)

    def in_blocks():
        def step(k, i, lo, hi):
            rows = slice(i * POINTS + lo, i * POINTS + hi)
            for _ in range(6):
                numpy.matmul(a[rows], w, out=out[rows])
        fast_decoder._each_block(blocks, workers, step)
    return best_ms(whole, repeats), best_ms(in_blocks, repeats)


def decoder_with_nll(repeats):
    numpy.random.seed(0)
    decoder = fast_decoder.FastSamplingDecoder(8)
    rng = numpy.random.RandomState(0)
    z = rng.randn(BATCH, 8).astype(numpy.float32)
    x = data.load_mnist('train')[0][:BATCH]
    u = v = numpy.linspace(-1, 1, 28, dtype=numpy.float32)

    def whole_grid():
        F.bernoulli_nll(x, decoder.sample_points(chainer.Variable(z), u, v), reduce='sum').backward()

    def fused():
        decoder.bernoulli_nll(x, chainer.Variable(z), u, v).backward()
    with threadpoolctl.threadpool_limits(1, 'blas'):
        held = best_ms(fused, repeats)
    return best_ms(whole_grid, repeats), held


def training_step(repeats):
    numpy.random.seed(0)
    model = SamplingVAE(8, decoder_class=fast_decoder.FastSamplingDecoder)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    iterator = chainer.iterators.SerialIterator(data.load_mnist('train')[0], BATCH)
    updater = chainer.training.updaters.StandardUpdater(iterator, optimizer)
    free = best_ms(updater.update, repeats)
    with fast_decoder.training_threads(model):
        held = best_ms(updater.update, repeats)
    return free, held


def relu(repeats):
    a = numpy.random.RandomState(0).randn(fast_decoder.BLOCK_ROWS, UNITS).astype(numpy.float32)
    out, zeros = numpy.empty_like(a), numpy.zeros(UNITS, numpy.float32)
    times = [best_ms(lambda: [numpy.maximum(a, against, out=out) for _ in range(100)], repeats) / 100
             for against in (0, zeros)]
    return times


def main(argv=None):
    parser = cli.ArgumentParser(prog='bench_blocks.py', description='Measure what the fused training path is made of')
    parser.add_argument('--repeats', type=cli.positive_int, default=5, help='measurements of each, the best taken (default 5)')
    args = parser.parse_args(argv)
    whole, blocks = products(args.repeats)
    print(f'six 256x256 products of a step: whole batch {whole:.0f} ms; in blocks of {fast_decoder.BLOCK_ROWS} rows, '
          f'one core each {blocks:.0f} ms')
    unfused, fused = decoder_with_nll(args.repeats)
    print(f'decoder + Bernoulli NLL, forward and backward: whole grid {unfused:.0f} ms; fused {fused:.0f} ms')
    free, held = training_step(args.repeats)
    print(f'training step, fast path: BLAS threads free {free:.0f} ms; held to one thread {held:.0f} ms')
    scalar, row = relu(args.repeats)
    print(f'ReLU of {fast_decoder.BLOCK_ROWS} x {UNITS} floats: against 0 {1e3 * scalar:.1f} us; '
          f'against a row of zeros {1e3 * row:.1f} us')


if __name__ == '__main__':
    main()
