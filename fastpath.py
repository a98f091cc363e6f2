"""The article's decoder, computed faster: the same function with the same linear1..linear4.

Exact rearrangements only:
- linear1 is split into its (u, v) columns and its z columns: the z part is computed once per image,
  the (u, v) part once per grid, and their sum broadcast over the grid, so the N*H*W rows of
  concat(u, v, z) are never built.
- The four layers are one Function with a hand-written backward: bias + ReLU and ReLU's gradient run
  in place (fused CuPy kernels on GPU), and bias gradients are matrix products.
tests/test_fastpath.py checks outputs and every gradient against SamplingDecoder.__call__.
"""
import numpy

import compat  # noqa: F401
import chainer
from chainer.backends import cuda

import model


def _bias_relu(a, b):
    """a = max(a + b, 0), in place."""
    if isinstance(a, numpy.ndarray):
        a += b
        return numpy.maximum(a, 0, out=a)
    return _gpu_kernels()['bias_relu'](b, a)


def _broadcast_sum_relu(a, b, out):
    """out = max(a + b, 0) with a, b broadcast against each other."""
    if isinstance(out, numpy.ndarray):
        numpy.add(a, b, out=out)
        return numpy.maximum(out, 0, out=out)
    return _gpu_kernels()['sum_relu'](a, b, out)


def _relu_grad(g, h):
    """g = g where h > 0 else 0, in place (h is the ReLU's output)."""
    if isinstance(g, numpy.ndarray):
        return numpy.multiply(g, h > 0, out=g)
    return _gpu_kernels()['relu_grad'](h, g)


_kernels = {}


def _gpu_kernels():
    if not _kernels:
        _kernels['bias_relu'] = cuda.cupy.ElementwiseKernel('T b', 'T a', 'a = max(a + b, (T)0)', 'svae_bias_relu')
        _kernels['sum_relu'] = cuda.cupy.ElementwiseKernel('T a, T b', 'T c', 'c = max(a + b, (T)0)', 'svae_sum_relu')
        _kernels['relu_grad'] = cuda.cupy.ElementwiseKernel('T h', 'T g', 'g = h > 0 ? g : (T)0', 'svae_relu_grad')
    return _kernels


def _column_sum(xp, g):
    """Sum over rows as a matrix product (multi-threaded on CPU, one GEMV on GPU)."""
    return xp.ones(len(g), dtype=g.dtype) @ g


class SampledMLP(chainer.Function):
    """f(u, v, z) at every point of a grid: (z, W1, b1, ..., W4, b4) -> logits (N, P) for P = len(uv)."""

    def __init__(self, uv):
        self.uv = uv  # (P, 2) grid coordinates: constants, not inputs

    def forward(self, inputs):
        z, W1, b1, W2, b2, W3, b3, W4, b4 = inputs
        xp = chainer.backend.get_array_module(z)
        n, p, units = len(z), len(self.uv), len(W1)
        h_z = z @ W1[:, 2:].T + b1      # (N, 256): once per image
        h_uv = self.uv @ W1[:, :2].T    # (P, 256): once per grid
        h1 = xp.empty((n, p, units), dtype=z.dtype)
        _broadcast_sum_relu(h_z[:, None, :], h_uv[None, :, :], h1)
        h1 = h1.reshape(n * p, units)
        h2 = _bias_relu(h1 @ W2.T, b2)
        h3 = _bias_relu(h2 @ W3.T, b3)
        y = h3 @ W4.T + b4
        self.hidden = (h1, h2, h3)
        return y.reshape(n, p),

    def backward(self, inputs, grad_outputs):
        z, W1, b1, W2, b2, W3, b3, W4, b4 = inputs
        xp = chainer.backend.get_array_module(z)
        h1, h2, h3 = self.hidden
        n, p, units = len(z), len(self.uv), len(W1)
        g4 = grad_outputs[0].reshape(n * p, 1)
        gW4, gb4 = g4.T @ h3, g4.sum(axis=0)
        g3 = _relu_grad(g4 @ W4, h3)
        gW3, gb3 = g3.T @ h2, _column_sum(xp, g3)
        g2 = _relu_grad(g3 @ W3, h2)
        gW2, gb2 = g2.T @ h1, _column_sum(xp, g2)
        g1 = _relu_grad(g2 @ W2, h1).reshape(n, p, units)
        g1_z = g1.sum(axis=1)           # (N, 256): gradient reaching each image's z part
        g1_uv = _column_sum(xp, g1.reshape(n, p * units)).reshape(p, units)  # (P, 256)
        gW1 = xp.concatenate([g1_uv.T @ self.uv, g1_z.T @ z], axis=1)
        gb1 = g1_z.sum(axis=0)
        gz = g1_z @ W1[:, 2:]
        del self.hidden
        return gz, gW1, gb1, gW2, gb2, gW3, gb3, gW4, gb4


class FastSamplingDecoder(model.SamplingDecoder):
    """SamplingDecoder with a faster sample_points; parameters and model files are the same."""

    def sample_points(self, z, u, v):
        xp = chainer.backend.get_array_module(z)
        height, width = len(v), len(u)
        uv = xp.stack(xp.broadcast_arrays(u[None, :], v[:, None]), axis=-1).reshape(-1, 2).astype(self.linear1.W.dtype)
        layers = (self.linear1, self.linear2, self.linear3, self.linear4)
        params = [a for layer in layers for a in (layer.W, layer.b)]
        y = SampledMLP(uv)(z, *params)
        return chainer.functions.reshape(y, (len(z), 1, height, width))
