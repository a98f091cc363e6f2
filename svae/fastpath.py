"""The article's decoder, computed faster: the same function with the same linear1..linear4.

Exact rearrangements only:
- linear1 is split into its (u, v) columns and its z columns: the z part is computed once per image,
  the (u, v) part once per grid, and their sum broadcast over the grid, so the N*H*W rows of
  concat(u, v, z) are never built.
- The four layers are one Function with a hand-written backward: bias + ReLU and ReLU's gradient run
  in place (fused CuPy kernels on GPU), and bias gradients are matrix products.
- On CPU the elementwise steps run on all cores (row blocks in threads), as the matrix products do.
- The large (points x 256) arrays live in a workspace reused from step to step: on CPU a fresh 50 MB
  array costs about 20 ms of page faults, a third of a matrix product of the same size.
tests/test_fastpath.py checks outputs and every gradient against SamplingDecoder.__call__.
"""
import concurrent.futures
import os

from svae import compat  # noqa: F401  (before numpy and chainer: see svae/compat.py)
import numpy

import chainer
from chainer.backends import cuda

import model


def _bias_relu(a, b):
    """a = max(a + b, 0), in place."""
    if isinstance(a, numpy.ndarray):
        return _split_rows(_cpu_bias_relu, a, b)
    return _gpu_kernels()['bias_relu'](b, a)  # pragma: no mutate (GPU only)


def _broadcast_sum_relu(a, b, out):
    """out = max(a + b, 0) with a, b broadcast against each other."""
    if isinstance(out, numpy.ndarray):
        return _split_rows(_cpu_sum_relu, out, a, b)
    return _gpu_kernels()['sum_relu'](a, b, out)  # pragma: no mutate (GPU only)


def _relu_grad(g, h, mask):
    """g = g where h > 0 else 0, in place (h is the ReLU's output; mask a bool buffer on CPU)."""
    if isinstance(g, numpy.ndarray):
        return _split_rows(_cpu_relu_grad, g, h, mask)
    return _gpu_kernels()['relu_grad'](h, g)  # pragma: no mutate (GPU only)


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
    # pragma: no mutate block (GPU only: run by tests/test_fastpath.py where CuPy finds a GPU, never in CI)
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


class FastSamplingDecoder(model.SamplingDecoder):
    """SamplingDecoder with a faster sample_points; parameters and model files are the same."""

    def __init__(self, input_size):
        super().__init__(input_size)
        self.workspace = Workspace()

    def sample_points(self, z, u, v):
        xp = chainer.backend.get_array_module(z)
        height, width = len(u), len(v)
        # (u_i, v_j) for row i, column j, row-major: the article's order, as in SamplingDecoder
        uv = xp.stack(xp.broadcast_arrays(u[:, None], v[None, :]), axis=-1).reshape(-1, 2).astype(self.linear1.W.dtype)
        layers = (self.linear1, self.linear2, self.linear3, self.linear4)
        params = [a for layer in layers for a in (layer.W, layer.b)]
        y = SampledMLP(uv, self.workspace)(z, *params)
        return chainer.functions.reshape(y, (len(z), 1, height, width))
