"""The article's decoder, computed faster: the same function with the same linear1..linear4.

Exact rearrangements only:
- linear1 is split into its (u, v) columns and its z columns: the z part is computed once per image,
  the (u, v) part once per grid, and their sum broadcast over the grid, so the N*H*W rows of
  concat(u, v, z) are never built.
- The four layers are one Function with a hand-written backward: bias + ReLU and ReLU's gradient run
  in place (fused CuPy kernels on GPU), and bias gradients are matrix products.
- On CPU the elementwise steps run on all cores (row blocks in threads), as the matrix products do.
- The large (points x 256) arrays live in a workspace reused from step to step: a fresh array of that size
  is paid for again in page faults at every step.
- On CPU, training computes the decoder and the article's reconstruction term, the summed Bernoulli NLL,
  in one pass (FusedBernoulliNLL): rows are taken in blocks (at most one image) near a core's cache in size, and
  each block's backward runs right after its forward, while its activations are still in cache; only the
  weight gradients are kept. Each core takes its own blocks with a one-thread BLAS, which multiplies
  them faster than a two-thread BLAS multiplies the whole batch (docs/performance.md).
tests/test_fast_decoder.py checks outputs and every gradient against SamplingDecoder.__call__.
"""
import concurrent.futures
import contextlib
import os

try:  # sets the BLAS to one thread while each core multiplies its own blocks; without it, one worker
    import threadpoolctl
except ImportError:  # pragma: no cover (installed with the project)
    threadpoolctl = None

import svae
import numpy

import chainer
from chainer.backends import cuda

import model


def _bias_relu(a, b):
    """a = max(a + b, 0), in place."""
    if isinstance(a, numpy.ndarray):
        return _split_rows(_cpu_bias_relu, a, b)
    return _gpu_kernels()['bias_relu'](b, a)


def _broadcast_sum_relu(a, b, out):
    """out = max(a + b, 0) with a, b broadcast against each other."""
    if isinstance(out, numpy.ndarray):
        return _split_rows(_cpu_sum_relu, out, a, b)
    return _gpu_kernels()['sum_relu'](a, b, out)


def _relu_grad(g, h, mask):
    """g = g where h > 0 else 0, in place (h is the ReLU's output; mask a bool buffer on CPU)."""
    if isinstance(g, numpy.ndarray):
        return _split_rows(_cpu_relu_grad, g, h, mask)
    return _gpu_kernels()['relu_grad'](h, g)


def _cpu_bias_relu(a, b):
    a += b
    numpy.maximum(a, 0, out=a)


def _cpu_sum_relu(out, a, b):
    numpy.add(a, b, out=out)
    numpy.maximum(out, 0, out=out)


def _cpu_relu_grad(g, h, mask):
    numpy.greater(h, 0, out=mask)
    numpy.multiply(g, mask, out=g)


_threads = None


def _split_rows(fn, out, *args):
    """fn(out, *args) over row blocks of out in parallel threads (NumPy's ufuncs release the GIL and
    run on one core otherwise); args with as many rows as out are split alongside, others are shared."""
    global _threads
    workers = min(4, os.cpu_count() or 1)
    if workers == 1 or len(out) < 2 * workers:
        fn(out, *args)
        return out
    if _threads is None:
        _threads = concurrent.futures.ThreadPoolExecutor(workers)
    bounds = numpy.linspace(0, len(out), workers + 1).astype(int)
    split = lambda a, lo, hi: a[lo:hi] if a.ndim == out.ndim and len(a) == len(out) else a
    jobs = [_threads.submit(fn, out[lo:hi], *(split(a, lo, hi) for a in args)) for lo, hi in zip(bounds, bounds[1:])]
    for job in jobs:
        job.result()
    return out


_kernels = {}


def _gpu_kernels():
    # GPU only: run by tests/test_fast_decoder.py where CuPy finds a GPU
    if not _kernels:
        _kernels['bias_relu'] = cuda.cupy.ElementwiseKernel('T b', 'T a', 'a = max(a + b, (T)0)', 'svae_bias_relu')
        _kernels['sum_relu'] = cuda.cupy.ElementwiseKernel('T a, T b', 'T c', 'c = max(a + b, (T)0)', 'svae_sum_relu')
        _kernels['relu_grad'] = cuda.cupy.ElementwiseKernel('T h', 'T g', 'g = h > 0 ? g : (T)0', 'svae_relu_grad')
    return _kernels


def _column_sum(xp, g):
    """Sum over rows as a matrix product (multi-threaded on CPU, one GEMV on GPU)."""
    return xp.ones(len(g), dtype=g.dtype) @ g


class Workspace:
    """Large buffers handed out by name and handed back after use; one that is still out (a second
    forward before the first one's backward) is simply allocated anew."""

    def __init__(self):
        self.free = {}

    def take(self, xp, name, shape, dtype):
        buffer = self.free.pop(name, None)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype or chainer.backend.get_array_module(buffer) is not xp:
            buffer = xp.empty(shape, dtype=dtype)
        return buffer

    def give(self, **buffers):
        self.free.update(buffers)


class SampledMLP(chainer.Function):
    """f(u, v, z) at every point of a grid: (z, W1, b1, ..., W4, b4) -> logits (N, P) for P = len(uv)."""

    def __init__(self, uv, workspace):
        self.uv = uv  # (P, 2) grid coordinates: constants, not inputs
        self.workspace = workspace

    def forward(self, inputs):
        z, W1, b1, W2, b2, W3, b3, W4, b4 = inputs
        xp = chainer.backend.get_array_module(z)
        n, p, units = len(z), len(self.uv), len(W1)
        take = lambda name: self.workspace.take(xp, name, (n * p, units), z.dtype)
        h_z = z @ W1[:, 2:].T + b1      # (N, 256): once per image
        h_uv = self.uv @ W1[:, :2].T    # (P, 256): once per grid
        h1 = take('h1')
        _broadcast_sum_relu(h_z[:, None, :], h_uv[None, :, :], h1.reshape(n, p, units))
        h2 = _bias_relu(xp.matmul(h1, W2.T, out=take('h2')), b2)
        h3 = _bias_relu(xp.matmul(h2, W3.T, out=take('h3')), b3)
        y = h3 @ W4.T + b4
        if chainer.config.enable_backprop:
            self.hidden = (h1, h2, h3)
        else:
            self.workspace.give(h1=h1, h2=h2, h3=h3)
        return y.reshape(n, p),

    def backward(self, inputs, grad_outputs):
        z, W1, b1, W2, b2, W3, b3, W4, b4 = inputs
        xp = chainer.backend.get_array_module(z)
        h1, h2, h3 = self.hidden
        del self.hidden
        n, p, units = len(z), len(self.uv), len(W1)
        take = lambda name, dtype=z.dtype: self.workspace.take(xp, name, (n * p, units), dtype)
        ga, gb, mask = take('ga'), take('gb'), take('mask', numpy.bool_)
        g4 = grad_outputs[0].reshape(n * p, 1)
        gW4, gb4 = g4.T @ h3, g4.sum(axis=0)
        g3 = _relu_grad(xp.multiply(g4, W4, out=ga), h3, mask)  # g4 @ W4, an outer product
        gW3, gb3 = g3.T @ h2, _column_sum(xp, g3)
        g2 = _relu_grad(xp.matmul(g3, W3, out=gb), h2, mask)
        gW2, gb2 = g2.T @ h1, _column_sum(xp, g2)
        g1 = _relu_grad(xp.matmul(g2, W2, out=ga), h1, mask).reshape(n, p, units)
        g1_z = g1.sum(axis=1)           # (N, 256): gradient reaching each image's z part
        g1_uv = _column_sum(xp, g1.reshape(n, p * units)).reshape(p, units)  # (P, 256)
        gW1 = xp.concatenate([g1_uv.T @ self.uv, g1_z.T @ z], axis=1)
        gb1 = g1_z.sum(axis=0)
        gz = g1_z @ W1[:, 2:]
        self.workspace.give(h1=h1, h2=h2, h3=h3, ga=ga, gb=gb, mask=mask)
        return gz, gW1, gb1, gW2, gb2, gW3, gb3, gW4, gb4


# ---- CPU training: row blocks through all four layers and back, each core its own blocks ----

BLOCK_ROWS = 784  # a 28x28 image: a worker's three buffers fit its core's share of the cache (smaller blocks: results/bench)

_block_threads = {}
_blas = None


def _workers(blocks):
    """One worker per core (at most one per block), where the BLAS can be held to one thread (threadpoolctl)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return max(1, min(cores, blocks)) if threadpoolctl is not None else 1


def _one_blas_thread():
    """The BLAS held to one thread until the returned context exits (threadpoolctl's libraries found once)."""
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController()
    return _blas.limit(limits=1, user_api='blas')


def _each_worker(work, workers):
    """work(k) for k < workers, in threads with a one-thread BLAS (two BLAS threads per worker would
    fight over the cores)."""
    if workers == 1:
        work(0)
        return
    if workers not in _block_threads:
        _block_threads[workers] = concurrent.futures.ThreadPoolExecutor(workers)
    with _one_blas_thread() if threadpoolctl is not None else contextlib.nullcontext():
        list(_block_threads[workers].map(work, range(workers)))


def training_threads(model):
    """Around a CPU training run of a model with FastSamplingDecoder: the BLAS held to one thread throughout.
    After a two-thread BLAS call (the encoder's), OpenBLAS's helper thread spins on a core for a while and
    slows the workers that follow (measured with experiments/fast_decoder_pieces/bench_blocks.py); the
    encoder's small products lose little on one core."""
    fast_cpu = isinstance(getattr(model, 'decoder', None), FastSamplingDecoder) and model.xp is numpy
    if not fast_cpu or threadpoolctl is None:
        return contextlib.nullcontext()
    return _one_blas_thread()


class _Blocks:
    """One worker's buffers for a block of rows, and its sums of the weight gradients over its blocks."""

    def __init__(self, images, rows, units, dtype, backprop):
        self.h1, self.h2, self.h3 = (numpy.empty((rows, units), dtype) for _ in range(3))
        self.zeros = numpy.zeros(units, dtype)
        if backprop:
            self.mask = numpy.empty((rows, units), numpy.bool_)
            self.gW_product = numpy.empty((units, units), dtype)
            self.ones = numpy.ones(rows, dtype)
            self.gW2, self.gW3 = numpy.zeros((units, units), dtype), numpy.zeros((units, units), dtype)
            self.gb2, self.gb3, self.gW4 = (numpy.zeros(units, dtype) for _ in range(3))
            self.gb4 = 0.0
            self.gW1_uv = numpy.zeros((units, 2), dtype)  # the first layer's (u, v) columns' gradient
            self.g1_z = numpy.zeros((images, units), dtype)  # the first layer's gradient summed over each image's points
        self.nll = 0.0

    def forward(self, h_uv, h_z, layers):
        """Logits of the rows whose first-layer (u, v) and z parts are h_uv (rows, 256) and h_z (256,)."""
        W2T, b2, W3T, b3, w4, b4 = layers
        rows = len(h_uv)
        h1, h2, h3 = self.h1[:rows], self.h2[:rows], self.h3[:rows]
        numpy.add(h_uv, h_z, out=h1)
        numpy.maximum(h1, self.zeros, out=h1)  # against a row of zeros: twice as fast as against the scalar 0
        for h_in, WT, b, h_out in ((h1, W2T, b2, h2), (h2, W3T, b3, h3)):
            numpy.matmul(h_in, WT, out=h_out)
            h_out += b
            numpy.maximum(h_out, self.zeros, out=h_out)
        return h3 @ w4 + b4

    def add_nll(self, y, x):
        with numpy.errstate(invalid='ignore'):  # a NaN logit gives a NaN loss quietly: train.py's check reports it
            self.nll += float((numpy.logaddexp(0, y) - x * y).sum())  # softplus(y) - x y: F.bernoulli_nll

    def nll_backward(self, y, x, W2, W3, w4, image, uv1):
        """Add the block's Bernoulli NLL and its gradients (for an upstream gradient of 1) to the sums."""
        rows = len(y)
        h1, h2, h3, mask, ones = (a[:rows] for a in (self.h1, self.h2, self.h3, self.mask, self.ones))
        self.add_nll(y, x)
        gy = numpy.tanh(y * 0.5) * 0.5 + 0.5 - x  # sigmoid(y) - x
        self.gW4 += gy @ h3
        self.gb4 += float(gy.sum())
        # each layer's gradient takes the buffer of an activation that is no longer needed once its mask is taken
        numpy.greater(h3, 0, out=mask)
        g3 = numpy.outer(gy, w4, out=h3)  # gy @ W4, an outer product
        g3 *= mask
        self.gW3 += numpy.matmul(g3.T, h2, out=self.gW_product)
        self.gb3 += ones @ g3
        numpy.greater(h2, 0, out=mask)
        g2 = numpy.matmul(g3, W3, out=h2)
        g2 *= mask
        self.gW2 += numpy.matmul(g2.T, h1, out=self.gW_product)
        self.gb2 += ones @ g2
        numpy.greater(h1, 0, out=mask)
        g1 = numpy.matmul(g2, W2, out=h1)
        g1 *= mask
        g1_uv1 = g1.T @ uv1  # the (u, v) gradient and the sum over rows, one pass
        self.gW1_uv += g1_uv1[:, :2]
        self.g1_z[image] += g1_uv1[:, 2]


def _row_blocks(images, points, rows):
    """(image, lo, hi) for every block of at most `rows` rows lo:hi of every image."""
    return [(i, lo, min(lo + rows, points)) for i in range(images) for lo in range(0, points, rows)]


def _each_block(blocks, workers, step):
    """step(k, image, lo, hi) for every block; worker k takes blocks k, k + workers, ..."""
    _each_worker(lambda k: [step(k, *block) for block in blocks[k::workers]], workers)


def _first_layer(z, W1, b1, uv):
    """linear1 split: its z columns and bias once per image (N, 256), its (u, v) columns once per point (P, 256)."""
    return z @ W1[:, 2:].T + b1, uv @ W1[:, :2].T


def _layers(W2, b2, W3, b3, W4, b4):
    return numpy.ascontiguousarray(W2.T), b2, numpy.ascontiguousarray(W3.T), b3, W4[0], b4


class FusedBernoulliNLL(chainer.Function):
    """sum(F.bernoulli_nll(x, f(u, v, z))) over the grid uv and the images: (z, W1, b1, ..., W4, b4) -> the sum,
    on the CPU. With backprop on, the gradients (for an upstream gradient of 1) are summed during the forward
    pass, block by block; backward scales them by the upstream gradient.

    workers: threads that take the blocks in turn (None: one per core); block_rows: rows of a block at most.
    Neither changes the result beyond float rounding."""

    def __init__(self, uv, x, workers=None, block_rows=BLOCK_ROWS):
        self.uv = uv  # (P, 2) grid coordinates: constants, not inputs
        self.x = x  # (N, P) targets in [0, 1]: data, not inputs
        self.workers, self.block_rows = workers, block_rows

    def forward(self, inputs):
        z, W1, b1, W2, b2, W3, b3, W4, b4 = inputs
        n, p, units = len(z), len(self.uv), len(W1)
        backprop = chainer.config.enable_backprop
        h_z, h_uv = _first_layer(z, W1, b1, self.uv)
        layers = _layers(W2, b2, W3, b3, W4, b4)
        blocks = _row_blocks(n, p, self.block_rows)
        uv1 = numpy.concatenate([self.uv, numpy.ones((p, 1), z.dtype)], axis=1)  # (u, v, 1) for every point
        workers = min(self.workers or _workers(len(blocks)), len(blocks))
        scratch = [_Blocks(n, min(p, self.block_rows), units, z.dtype, backprop) for _ in range(workers)]

        def step(k, i, lo, hi):
            y = scratch[k].forward(h_uv[lo:hi], h_z[i], layers)
            if backprop:
                scratch[k].nll_backward(y, self.x[i, lo:hi], W2, W3, layers[4], i, uv1[lo:hi])
            else:
                scratch[k].add_nll(y, self.x[i, lo:hi])
        _each_block(blocks, workers, step)
        if backprop:
            self.grads = self._gradients(z, W1, scratch)
        return numpy.asarray(sum(s.nll for s in scratch), dtype=z.dtype),

    def _gradients(self, z, W1, scratch):
        total = lambda name: sum(getattr(s, name) for s in scratch)
        g1_z = total('g1_z')
        gW1 = numpy.concatenate([total('gW1_uv'), g1_z.T @ z], axis=1)
        gb4 = numpy.asarray([total('gb4')], dtype=z.dtype)
        return (g1_z @ W1[:, 2:], gW1, g1_z.sum(axis=0), total('gW2'), total('gb2'), total('gW3'), total('gb3'),
                total('gW4')[None], gb4)

    def backward(self, inputs, grad_outputs):
        scale = grad_outputs[0]
        grads = self.grads
        del self.grads
        return tuple(g * scale for g in grads)


class FastSamplingDecoder(model.SamplingDecoder):
    """SamplingDecoder with a faster sample_points; parameters and model files are the same."""

    def __init__(self, input_size):
        super().__init__(input_size)
        self.workspace = Workspace()

    def sample_points(self, z, u, v):
        y = SampledMLP(self.points(u, v), self.workspace)(z, *self.params_in_order())
        return chainer.functions.reshape(y, (len(z), 1, len(u), len(v)))

    def bernoulli_nll(self, x, z, u, v):
        """F.bernoulli_nll(x, self.sample_points(z, u, v), reduce='sum'), the article's reconstruction term:
        on the CPU in one pass (FusedBernoulliNLL); on a GPU as written (not yet measured there)."""
        if self.xp is not numpy:
            return chainer.functions.bernoulli_nll(x, self.sample_points(z, u, v).reshape(x.shape), reduce='sum')
        x = chainer.as_array(x).reshape(len(x), -1)  # data, not a variable to differentiate
        return FusedBernoulliNLL(self.points(u, v), x)(z, *self.params_in_order())

    def points(self, u, v):
        """(u_i, v_j) for row i, column j, row-major: the article's order, as in SamplingDecoder."""
        xp = chainer.backend.get_array_module(u)
        return xp.stack(xp.broadcast_arrays(u[:, None], v[None, :]), axis=-1).reshape(-1, 2).astype(self.linear1.W.dtype)

    def params_in_order(self):
        layers = (self.linear1, self.linear2, self.linear3, self.linear4)
        return [a for layer in layers for a in (layer.W, layer.b)]


def decoder_class(choice, device):
    """The decoder for --decoder: the fast one on the CPU by default (where tests/test_fast_decoder.py runs), the
    article's code as written on a GPU until that test has run on one."""
    if choice == 'fast' or (choice is None and device.xp is numpy):
        return FastSamplingDecoder
    return model.SamplingDecoder
