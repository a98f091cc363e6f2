"""The article's repository's second model, affine3x (train.py --model affine3x): a sampling VAE that also
learns, for each digit, an affine map of the coordinate plane (scale, rotation, translation), and evaluates
a smaller f at the mapped points, so that pose is separated from shape.

As its affine_model.py (../docs/differences.md): encoder 784 -> 392 -> 196 -> 98 -> 49, then (mu, ln_var)
and a zero-initialised pose head times a warm-up factor; decoder 2+n -> 32 -> 64 -> 32 -> 1; each grid
point (u, v), u down the rows as in model.py, is mapped to ((u, v) + (tx, ty)) @ [[s cos, s sin],
[-s sin, s cos]] (a row vector times the matrix) with s = exp(log scale) and (tx, ty) = tanh of the raw
values. The same objective and reports as the article's model, and the pose's batch means.
"""
import math

import svae
import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from model import COORDINATES, MLP, report_losses

WARM_UP_EPOCHS = 5  # the pose head reaches full strength after this many epochs


def warm_up_factor(epochs_done):
    """The factor on the pose head after `epochs_done` epochs: (min(e, 5) / 5)^2, 0 during the first."""
    return (min(epochs_done, WARM_UP_EPOCHS) / WARM_UP_EPOCHS) ** 2


def pose_of(affine):
    """(s, theta, tx, ty), each (N, 1), of raw pose parameters (N, 4) = (log scale, theta, tx, ty)."""
    log_scale, theta, tx, ty = F.split_axis(affine, (1, 2, 3), axis=1)
    return F.exp(log_scale), theta, F.tanh(tx), F.tanh(ty)


def map_points(affine, uv):
    """The points uv (P, 2) as each digit's decoder sees them: ((u, v) + t) @ [[s c, s s], [-s s, s c]],
    (N, P, 2) for raw pose parameters affine (N, 4)."""
    s, theta, tx, ty = pose_of(affine)
    cos, sin = F.cos(theta), F.sin(theta)
    matrix = F.reshape(F.concat((s * cos, s * sin, -s * sin, s * cos), axis=1), (-1, 2, 2))
    shift = F.expand_dims(F.concat((tx, ty), axis=1), 1)  # (N, 1, 2)
    points = F.broadcast_to(shift, (len(matrix), len(uv), 2)) + uv[None]
    return F.matmul(points, matrix)


class AffineSamplingDecoder(MLP):
    """f(u', v', z) at the affinely mapped grid points; 2+n -> 32 -> 64 -> 32 -> 1, ReLU, HeNormal."""

    def __init__(self, input_size):
        super().__init__([2 + input_size, 32, 64, 32, 1])

    def __call__(self, z, affine, x0_shape):
        """Logits of shape x0_shape on the article's linspace grid, each digit's pose applied."""
        xp = chainer.backend.get_array_module(z)
        u = xp.linspace(-1.0, 1.0, x0_shape[2], dtype=numpy.float32)
        v = xp.linspace(-1.0, 1.0, x0_shape[3], dtype=numpy.float32)
        return F.reshape(self.sample_points(z, affine, u, v), x0_shape)

    def sample_points(self, z, affine, u, v):
        """Logits (N, 1, len(u), len(v)): the pixel in row i, column j is f at (u_i, v_j) mapped by the
        digit's pose. Reports the batch means of s, theta, tx, ty, as the article's decoder does."""
        xp = chainer.backend.get_array_module(z)
        n, n_latent = z.shape
        uv = xp.stack(xp.broadcast_arrays(u[:, None], v[None, :]), axis=-1).reshape(-1, 2).astype(numpy.float32)
        points = map_points(affine, uv)  # (N, P, 2)
        z = F.broadcast_to(F.expand_dims(z, 1), (n, len(uv), n_latent))
        h = F.reshape(F.concat((points, z), axis=2), (-1, 2 + n_latent))
        s, theta, tx, ty = pose_of(affine)
        chainer.report({'scale': F.mean(s), 'theta': F.mean(theta), 'tx': F.mean(tx), 'ty': F.mean(ty)}, self)
        return F.reshape(self.decode(h), (n, 1, len(u), len(v)))


def two_sample_binarisation(x, random):
    """The training input of affine3x: the mean of two independent random binarisations (0, 0.5 or 1)."""
    return ((x > random.uniform(size=x.shape)).astype(x.dtype) + (x > random.uniform(size=x.shape)).astype(x.dtype)) / 2


class AffineSamplingVAE(chainer.Chain):
    """Encoder 784 -> 392 -> 196 -> 98 -> 49 -> (mu, ln_var) and the pose head; AffineSamplingDecoder."""
    kind = 'affine3x'
    n_in = 784
    centers = False  # the article's linspace grid

    def __init__(self, n_latent=8):
        super().__init__()
        self.n_latent = n_latent
        self.add_persistent('coordinates', COORDINATES)  # u = rows, v = columns, as model.py
        self.add_persistent('warm_up', 0.0)  # the factor on the pose head; train.py sets it after each epoch
        units = [784, 392, 196, 98, 49]
        initializer = chainer.initializers.HeNormal()
        with self.init_scope():
            self.e1 = L.Linear(units[0], units[1], initialW=initializer)
            self.e2 = L.Linear(units[1], units[2], initialW=initializer)
            self.e3 = L.Linear(units[2], units[3], initialW=initializer)
            self.e4 = L.Linear(units[3], units[4], initialW=initializer)
            self.e5 = L.Linear(units[4], 2 * n_latent, initialW=initializer)
            self.e5_affine = L.Linear(units[4], 4, initialW=chainer.initializers.Zero())  # the identity pose at first
            self.decoder = AffineSamplingDecoder(n_latent)

    def encode(self, x):
        """(mu, ln_var, raw pose (log scale, theta, tx, ty) times the warm-up factor) for input x."""
        h = F.relu(self.e1(x))
        h = F.relu(self.e2(h))
        h = F.relu(self.e3(h))
        h = F.relu(self.e4(h))
        mu, ln_var = F.split_axis(self.e5(h), 2, axis=1)
        return mu, ln_var, self.e5_affine(h) * numpy.float32(self.warm_up)

    def __call__(self, x):
        """The article's objective, as SamplingVAE; the encoder sees the mean of two random binarisations in
        training and the grey digits in evaluation."""
        batchsize = len(x)
        seen = two_sample_binarisation(x, self.xp.random) if chainer.config.train else x
        mu, ln_var, affine = self.encode(seen)
        z = F.gaussian(mu, ln_var) if chainer.config.train else mu
        rec = F.bernoulli_nll(x, self.decoder(z, affine, x.shape), reduce='sum') / batchsize
        kl = F.gaussian_kl_divergence(mu, ln_var, reduce='sum') / batchsize
        return report_losses(self, rec, kl) / (self.n_latent * self.n_in)

    def settings(self):
        return {'n_latent': numpy.array(self.n_latent, dtype=numpy.int64)}


def latents_and_poses(model, x):
    """(z = mu, raw pose) of grey images x as NumPy arrays (evaluation mode)."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mu, _, affine = model.encode(model.xp.asarray(x))
    cpu = chainer.backend.CpuDevice()
    return cpu.send(mu.array), cpu.send(affine.array)


def pose_removed(affine):
    """The article's normalised figure: every digit with the batch's mean log scale, no rotation, no shift."""
    removed = numpy.zeros_like(affine)
    removed[:, 0] = affine[:, 0].mean()
    return removed


def given_pose(scale, degrees, tx, ty):
    """Raw pose parameters (1, 4) of a pose given as scale, rotation in degrees and translation in (-1, 1)."""
    return numpy.array([[math.log(scale), math.radians(degrees), math.atanh(tx), math.atanh(ty)]], numpy.float32)
