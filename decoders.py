"""Opt-in decoders for the super-resolution experiments (experiments/superres.py), each f(u, v, z) with another
input than the article's (u, v, z1..zn). They take the article's path (the fast decoder takes (u, v) and one z
per image only); model files record their settings (`settings`), and model_files.py builds them again."""
import functools
import math

import svae  # noqa: F401  (Chainer on today's Python: svae/compat.py)
import numpy

import chainer
import chainer.functions as F

from model import MLP, SamplingDecoder


class FourierSamplingDecoder(SamplingDecoder):
    """train.py --fourier K: f(u, v, sin/cos(2^k pi u), sin/cos(2^k pi v) for k < K, z): Fourier-feature coordinates
    (Tancik et al. 2020), with which a ReLU network can draw sharper edges than with raw (u, v)."""

    def __init__(self, input_size, frequencies):
        MLP.__init__(self, [2 + 4 * frequencies + input_size, 256, 256, 256, 1])
        self.frequencies = frequencies

    def features(self, xp, t):
        """(len(t), 1 + 2 K): t, then sin(2^k pi t) for k = 0..K-1, then cos(2^k pi t)."""
        angles = t[:, None] * (math.pi * 2.0 ** xp.arange(self.frequencies, dtype=t.dtype))
        return xp.concatenate((t[:, None], xp.sin(angles), xp.cos(angles)), axis=1)

    def sample_points(self, z, u, v):
        """As SamplingDecoder.sample_points, f's input for pixel (i, j) (u_i, v_j, u_i's features, v_j's, z)."""
        xp = chainer.backend.get_array_module(z)
        batchsize, n_latent = z.shape
        fu, fv = self.features(xp, u), self.features(xp, v)
        shape = (batchsize, fu.shape[1], len(u), len(v))
        fu = xp.broadcast_to(fu.T[None, :, :, None], shape)  # u's features along axis 2 (rows)
        fv = xp.broadcast_to(fv.T[None, :, None, :], shape)  # v's features along axis 3 (columns)
        z = F.broadcast_to(F.reshape(z, (batchsize, n_latent, 1, 1)), (batchsize, n_latent) + shape[2:])
        h = F.concat((fu[:, :1], fv[:, :1], fu[:, 1:], fv[:, 1:], z), axis=1)
        h = F.reshape(F.transpose(h, (0, 2, 3, 1)), (-1, h.shape[1]))
        return F.reshape(self.decode(h), (batchsize, 1, len(u), len(v)))

    def settings(self):
        return {'fourier': numpy.array(self.frequencies, dtype=numpy.int64)}


def blend_weights(t, grid):
    """(len(t), grid) weights of the grid's cells at positions t in [-1, 1]: bilinear between the two nearest
    cell centres -1 + (2a + 1) / grid, the nearest cell alone beyond the outer centres; each row sums to 1."""
    position = numpy.clip((t + 1) * grid / 2 - 0.5, 0, grid - 1)  # in units of cells, 0 at the first centre
    lower = numpy.minimum(numpy.floor(position), max(grid - 2, 0)).astype(numpy.int64)
    weights = numpy.zeros((len(t), grid), dtype=t.dtype)
    weights[numpy.arange(len(t)), lower] = 1 - (position - lower)
    if grid > 1:
        weights[numpy.arange(len(t)), lower + 1] = position - lower
    return weights


class LocalSamplingDecoder(MLP):
    """train.py --local-grid G: z is a G x G grid of latent vectors (cell by cell, rows first, each of n / G^2
    numbers), and f(u, v, z(u, v)) sees the bilinear blend of the cells' vectors at (u, v): local latents, as in
    LIIF (Chen et al. 2021), so that each part of the digit has numbers of its own."""

    def __init__(self, input_size, grid):
        if input_size % (grid * grid):
            raise ValueError(f'a latent size of {input_size} does not split into {grid} x {grid} cells')
        super().__init__([2 + input_size // (grid * grid), 256, 256, 256, 1])
        self.grid = grid

    def sample_points(self, z, u, v):
        """f at every point of the grid u x v: logits (N, 1, len(u), len(v)), f's input for pixel (i, j)
        (u_i, v_j, z(u_i, v_j))."""
        xp = chainer.backend.get_array_module(z)
        n, g, height, width = len(z), self.grid, len(u), len(v)
        cpu = chainer.backend.CpuDevice()
        wu, wv = (xp.asarray(blend_weights(cpu.send(t), g)) for t in (u, v))
        cells = F.transpose(F.reshape(z, (n, g, g, -1)), (0, 3, 1, 2))  # (N, d, cell row, cell column)
        d = cells.shape[1]
        across = F.reshape(F.matmul(F.reshape(cells, (n * d * g, g)), wv.T), (n, d, g, width))  # blended along v
        down = F.matmul(F.reshape(F.transpose(across, (0, 1, 3, 2)), (n * d * width, g)), wu.T)  # then along u
        z_map = F.transpose(F.reshape(down, (n, d, width, height)), (0, 1, 3, 2))  # (N, d, rows, columns)
        shape = (n, 1, height, width)
        u = xp.broadcast_to(u[None, None, :, None], shape)
        v = xp.broadcast_to(v[None, None, None, :], shape)
        h = F.concat((u, v, z_map), axis=1)
        h = F.reshape(F.transpose(h, (0, 2, 3, 1)), (-1, 2 + d))
        return F.reshape(self.decode(h), shape)

    def settings(self):
        return {'local_grid': numpy.array(self.grid, dtype=numpy.int64)}


def opt_in_decoder(fourier=0, local_grid=1):
    """The decoder class for train.py --fourier K or --local-grid G (one of them), or None: the article's."""
    if fourier and local_grid > 1:
        raise ValueError('Fourier features and local latents are not combined')
    if fourier:
        return functools.partial(FourierSamplingDecoder, frequencies=fourier)
    if local_grid > 1:
        return functools.partial(LocalSamplingDecoder, grid=local_grid)
    return None
