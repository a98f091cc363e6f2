"""Speed of the article's decoder path against the fast path, on CPU and (with CuPy) GPU.

    python experiments/bench.py                 # table
    python experiments/bench.py --json          # the same numbers as JSON
    python experiments/bench.py --device gpu --tf32

Training: images/s over whole iterations (forward, backward, Adam, host-to-device copy), after warm-up,
in rounds of several iterations with an sgemm measurement between rounds. On CPU each step is timed and
the best step taken, as the best sgemm product is for the ceiling: both the least disturbed sample of
their kind, so that a burst of other load lowers neither; the time of an epoch follows from the median
step. On GPU (which runs ahead of the host) each synchronised round is timed and the best round taken.
Rendering: pixels/s of 16 digits at 168x168 and 1 digit at 1024x1024. Memory: peak bytes allocated by
NumPy (tracemalloc) on CPU, CuPy's memory pool on GPU. Ceiling: this device's sgemm GFLOP/s divided
by the decoder's FLOP per image; sgemm is measured before, between and after the training rounds and
the best taken. On CPU the BLAS
library, its version, kernel and threads are reported (threadpoolctl, pip install threadpoolctl).
"""
import json
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
import svae
import numpy

import chainer

from svae import cli
from svae import data
import fast_decoder
from fast_decoder import FastSamplingDecoder
from model import latent_means, SamplingDecoder, SamplingVAE
from rendering import render

POINTS = 28 * 28
UNITS = (256, 256, 256)


def decoder_flop_per_image(n_latent):
    """Matrix-product FLOP of the decoder per 28x28 training image: forward, then 2 more (gx, gW)."""
    widths = (2 + n_latent,) + UNITS + (1,)
    return 3 * sum(2 * a * b for a, b in zip(widths[:-1], widths[1:])) * POINTS


def synchronize(xp):
    if xp is not numpy:
        xp.cuda.Device().synchronize()


def sgemm_gflops(xp, rows=50176, size=256, repeats=10):
    """float32 matrix product of the decoder's own shape: (rows x 256) @ (256 x 256)."""
    a = xp.asarray(numpy.random.rand(rows, size).astype(numpy.float32))
    b = xp.asarray(numpy.random.rand(size, size).astype(numpy.float32))
    best = float('inf')
    for _ in range(repeats):
        synchronize(xp)
        start = time.perf_counter()
        a @ b
        synchronize(xp)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * size * size / best / 1e9


def blocked_sgemm_gflops(images=64, size=256, repeats=10):
    """sgemm_gflops's product on the CPU as the fast path multiplies: rows in blocks of fast_decoder.BLOCK_ROWS, each
    core its own blocks with a one-thread BLAS (on some CPUs faster than the BLAS's own threads)."""
    a = numpy.random.rand(images * POINTS, size).astype(numpy.float32)
    b = numpy.random.rand(size, size).astype(numpy.float32)
    out = numpy.empty_like(a)
    blocks = fast_decoder._row_blocks(images, POINTS, fast_decoder.BLOCK_ROWS)
    workers = fast_decoder._workers(len(blocks))

    def multiply(k, image, lo, hi):
        rows = slice(image * POINTS + lo, image * POINTS + hi)
        numpy.matmul(a[rows], b, out=out[rows])
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fast_decoder._each_block(blocks, workers, multiply)
        best = min(best, time.perf_counter() - start)
    return 2 * len(a) * size * size / best / 1e9


def blas_description():
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel (OpenBLAS's architecture), threads."""
    try:
        import threadpoolctl
    except ImportError:
        return 'BLAS unknown (pip install threadpoolctl to report it)'
    found = [f'{info.get("internal_api")} {info.get("version")}, kernel {info.get("architecture")}, '
             f'{info.get("num_threads")} threads' for info in threadpoolctl.threadpool_info() if info.get('user_api') == 'blas']
    where = {key: os.environ[key] for key in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE') if key in os.environ}
    settings = ' (' + ', '.join(f'{k}={v}' for k, v in where.items()) + ')' if where else ''
    return ('; '.join(found) or 'no BLAS found by threadpoolctl') + settings


def make_model(device, fast, n_latent=8):
    numpy.random.seed(0)
    model = SamplingVAE(n_latent, decoder_class=FastSamplingDecoder if fast else SamplingDecoder)
    model.to_device(device)
    return model


def make_updater(x_train, device, batchsize, fast):
    model = make_model(device, fast)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    iterator = chainer.iterators.SerialIterator(x_train, batchsize)
    return chainer.training.updaters.StandardUpdater(iterator, optimizer, device=device)


def train_throughput(x_train, device, batchsize, fast, warmup, rounds, iterations, between_rounds, each_step=False):
    """images/s of each timed sample: each training step where each_step, else each round of `iterations` steps;
    between_rounds() after each round measures the ceiling (interleaved, so that both see the same phases of
    other load)."""
    updater = make_updater(x_train, device, batchsize, fast)
    steps_per_sample = 1 if each_step else iterations
    throughputs = []
    for round_ in range(rounds):
        with fast_decoder.training_threads(updater.get_optimizer('main').target):  # as train.py runs its trainer
            for _ in range(warmup if round_ == 0 else 1):  # untimed: the first steps, then one after the sgemm
                updater.update()
            for _ in range(iterations // steps_per_sample):
                synchronize(device.xp)
                start = time.perf_counter()
                for _ in range(steps_per_sample):
                    updater.update()
                synchronize(device.xp)
                throughputs.append(batchsize * steps_per_sample / (time.perf_counter() - start))
        between_rounds()
    return throughputs


def peak_train_memory(x_train, device, batchsize, fast):
    """Peak bytes for two training steps: NumPy allocations on CPU, CuPy pool on GPU."""
    updater = make_updater(x_train, device, batchsize, fast)
    if device.xp is numpy:
        tracemalloc.start()
        for _ in range(2):
            updater.update()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak
    pool = device.xp.get_default_memory_pool()
    pool.free_all_blocks()
    for _ in range(2):
        updater.update()
    synchronize(device.xp)
    return pool.total_bytes()


def render_throughput(x_test, device, fast, count, size, repeats):
    model = make_model(device, fast)
    z = latent_means(model, x_test[:count])
    render(model.decoder, z, size, size)  # warm-up (kernel compilation on GPU)
    start = time.perf_counter()
    for _ in range(repeats):
        render(model.decoder, z, size, size)  # ends with a copy to the host: synchronised
    return count * size * size * repeats / (time.perf_counter() - start)


def bench_device(device, quick):
    xp = device.xp
    gpu = xp is not numpy
    (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
    warmup, rounds, iterations = (20, 3, 70) if gpu else (2, 3, 3 if quick else 6)
    sgemm, blocked = [], []

    def measure_ceiling():
        sgemm.append(sgemm_gflops(xp))
        if not gpu:
            blocked.append(blocked_sgemm_gflops())
    measure_ceiling()
    rows = []
    for path, fast in (('faithful', False), ('fast', True)):
        row = {'device': 'gpu' if gpu else 'cpu', 'path': path}
        for batchsize in (64, 100):
            each = train_throughput(x_train, device, batchsize, fast, warmup, rounds, iterations, measure_ceiling,
                                    each_step=not gpu)
            row[f'train_images_per_s_b{batchsize}'] = max(each)
            row[f'train_images_per_s_b{batchsize}_samples'] = each
        row['epoch_seconds_b64'] = len(x_train) / statistics.median(row['train_images_per_s_b64_samples'])
        row['render_168_pixels_per_s'] = render_throughput(x_test, device, fast, 16, 168, 5 if gpu else 1)
        row['render_1024_pixels_per_s'] = render_throughput(x_test, device, fast, 1, 1024, 5 if gpu else 1)
        row['peak_train_bytes_b64'] = peak_train_memory(x_train, device, 64, fast)
        rows.append(row)
    return with_ceiling({'sgemm_gflops_measured': sgemm, 'blocked_sgemm_gflops_measured': blocked, 'rows': rows})


def with_ceiling(result):
    """The result with the best sgemm measured (whole-batch or in blocks), the ceiling it gives, and each path's
    fraction of it."""
    gflops = max(result['sgemm_gflops_measured'] + result.get('blocked_sgemm_gflops_measured', []))
    ceiling = gflops * 1e9 / decoder_flop_per_image(8)
    for row in result['rows']:
        for batchsize in (64, 100):
            row[f'ceiling_fraction_b{batchsize}'] = row[f'train_images_per_s_b{batchsize}'] / ceiling
    return dict(result, sgemm_gflops=gflops, ceiling_images_per_s=ceiling)


def describe(device):
    if device.xp is numpy:
        return f'CPU ({os.cpu_count()} cores), NumPy {numpy.__version__}, {blas_description()}'
    props = device.xp.cuda.runtime.getDeviceProperties(device.device.id)
    tf32 = ' TF32' if os.environ.get('CUPY_TF32') == '1' else ''
    return f'{props["name"].decode()}, CuPy {device.xp.__version__}{tf32}'


def table(result):
    measured = lambda key: ', '.join(f'{g:.0f}' for g in result.get(key, []))
    blocked = f'; in blocks, a core each: {measured("blocked_sgemm_gflops_measured")}' if result.get('blocked_sgemm_gflops_measured') else ''
    lines = [f'{result["device"]}: sgemm {result["sgemm_gflops"]:.0f} GFLOP/s (best of: whole batch '
             f'{measured("sgemm_gflops_measured")}{blocked}), '
             f'ceiling {result["ceiling_images_per_s"]:.0f} images/s for the decoder\'s '
             f'{decoder_flop_per_image(8) / 1e9:.2f} GFLOP per image (forward + backward)']
    best = 'best round' if result['rows'][0]['device'] == 'gpu' else 'best step'
    header = ('path', f'train img/s b64 ({best})', 'b100', 'of ceiling', 's/epoch b64 (median)', 'render 168 Mpx/s',
              'render 1024 Mpx/s', 'peak MiB b64')
    lines.append(' | '.join(header))
    rows = result['rows']
    for row in rows:
        lines.append(' | '.join([
            row['path'], f'{row["train_images_per_s_b64"]:.0f}', f'{row["train_images_per_s_b100"]:.0f}',
            f'{100 * row["ceiling_fraction_b64"]:.0f}%', f'{row["epoch_seconds_b64"]:.1f}',
            f'{row["render_168_pixels_per_s"] / 1e6:.2f}', f'{row["render_1024_pixels_per_s"] / 1e6:.2f}',
            f'{row["peak_train_bytes_b64"] / 2**20:.0f}']))
    faithful, fast = rows
    ratio = lambda key: fast[key] / faithful[key]
    lines.append(f'fast / faithful: train b64 {ratio("train_images_per_s_b64"):.2f}x, '
                 f'b100 {ratio("train_images_per_s_b100"):.2f}x, render 168 {ratio("render_168_pixels_per_s"):.2f}x, '
                 f'render 1024 {ratio("render_1024_pixels_per_s"):.2f}x')
    return '\n'.join(lines)


def main(argv=None):
    parser = cli.ArgumentParser(prog='bench.py', description='Benchmark the faithful and fast decoder paths')
    parser.add_argument('--device', choices=('cpu', 'gpu', 'all'), default='all',
                        help='all: the CPU, and GPU 0 where CuPy finds one')
    parser.add_argument('--tf32', action='store_true', help='GPU: let cuBLAS use TF32 (changes numerics)')
    parser.add_argument('--quick', action='store_true', help='fewer CPU iterations')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    args = parser.parse_args(argv)
    if args.tf32:
        os.environ['CUPY_TF32'] = '1'  # read by CuPy when it first calls cuBLAS
    devices = []
    if args.device in ('cpu', 'all'):
        devices.append(chainer.get_device('@numpy'))
    if args.device in ('gpu', 'all'):
        if args.device == 'gpu':
            with cli.one_line_errors('bench.py'):
                devices.append(cli.device_for(0))
        else:
            try:
                devices.append(cli.device_for(0))
            except cli.UsageError:
                pass  # all: the CPU only where no GPU is usable
    results = []
    for device in devices:
        result = bench_device(device, args.quick)
        result['device'] = describe(device)
        results.append(result)
        if not args.json:
            print(table(result), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
