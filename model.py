"""The article's model: a VAE whose decoder is a function P(u, v) = f(u, v, z1..zn) of image coordinates.

SamplingDecoder and SamplingVAE are the article's code; beside them the opt-in options of the
experiments (a pixel-centre grid, footprints, free bits, a KL weight beta); decoders.py has the opt-in decoders. Rendering is in rendering.py, model files in
model_files.py, the faster decoder in fast_decoder.py.
"""
import math

import svae  # noqa: F401  (makes Chainer 7.8.1 import on today's Python and NumPy: svae/compat.py)
import numpy

import chainer
import chainer.functions as F
import chainer.links as L


class MLP(chainer.Chain):
    """f's network: linear1..linear4 with ReLU between them, HeNormal (also affine3x's, with fewer units)."""

    def __init__(self, units):
        super().__init__()
        initializer = chainer.initializers.HeNormal()
        with self.init_scope():
            self.linear1 = L.Linear(units[0], units[1], initialW=initializer)
            self.linear2 = L.Linear(units[1], units[2], initialW=initializer)
            self.linear3 = L.Linear(units[2], units[3], initialW=initializer)
            self.linear4 = L.Linear(units[3], units[4], initialW=initializer)

    def decode(self, h):
        h = F.relu(self.linear1(h))
        h = F.relu(self.linear2(h))
        h = F.relu(self.linear3(h))
        return self.linear4(h)


class SamplingDecoder(MLP):
    """f(u, v, z): a 4-layer fully connected net evaluated at every (u, v) point of the image."""

    def __init__(self, input_size):
        super().__init__([2 + input_size, 256, 256, 256, 1])

    def __call__(self, z, x0_shape):
        """Logits of shape x0_shape (N, C, H, W) for latents z (N, n_latent), one per (u, v) point:
        u = linspace(-1, 1, H) runs down the rows, v = linspace(-1, 1, W) across the columns."""
        xp = chainer.backend.get_array_module(z)
        u = xp.linspace(-1.0, 1.0, x0_shape[2], dtype=z.dtype)
        v = xp.linspace(-1.0, 1.0, x0_shape[3], dtype=z.dtype)
        return self.sample_points(z, u, v).reshape(x0_shape)

    def sample_points(self, z, u, v):
        """f at every point of the grid u x v: logits (N, 1, len(u), len(v)); the pixel in row i,
        column j gets the input (u_i, v_j, z1..zn), vertical coordinate first."""
        xp = chainer.backend.get_array_module(z)
        batchsize, n_latent = z.shape
        shape = (batchsize, 1, len(u), len(v))
        u = xp.broadcast_to(u[None, None, :, None], shape)  # u along axis 2 (rows)
        v = xp.broadcast_to(v[None, None, None, :], shape)  # v along axis 3 (columns)
        z = F.broadcast_to(F.reshape(z, (batchsize, n_latent, 1, 1)), (batchsize, n_latent) + shape[2:])
        h = F.concat((u, v, z), axis=1)  # channels (u, v, z1..zn)
        h = F.reshape(F.transpose(h, (0, 2, 3, 1)), (-1, 2 + n_latent))
        return F.reshape(self.decode(h), shape)


COORDINATES = 'u=row,v=column'  # the article's order: f(u_i, v_j, z) for the pixel in row i, column j


class SamplingVAE(chainer.Chain):
    """Encoder 784 -> 256 -> 256 -> (mu, ln_var); decoder SamplingDecoder; the article's objective."""
    kind = 'sampling6x'  # the article's train.py --model name; model files record it

    def __init__(self, n_latent=8, n_in=784, n_hidden=256, centers=False, decoder_class=SamplingDecoder,
                 footprint=1, free_bits=0.0, beta=1.0):
        super().__init__()
        self.n_latent, self.n_in = n_latent, n_in
        self.centers = centers  # pixel-centre (u, v) grid instead of the article's linspace (experiments/superres.py)
        # Opt-in training settings (train.py --footprint, --free-bits, --beta); the article's are 1, 0 and 1.
        if footprint > 1 and not centers:
            raise ValueError('a footprint needs the pixel-centre grid (centers=True)')
        self.footprint, self.free_bits, self.beta = footprint, free_bits, beta
        # Saved in model files and snapshots: files of earlier versions, which fed f (column, row), lack it.
        self.add_persistent('coordinates', COORDINATES)
        initializer = chainer.initializers.HeNormal()
        with self.init_scope():
            self.encoder1 = L.Linear(n_in, n_hidden, initialW=initializer)
            self.encoder2 = L.Linear(n_hidden, n_hidden, initialW=initializer)
            self.encoder_mu = L.Linear(n_hidden, n_latent, initialW=initializer)
            self.encoder_ln_var = L.Linear(n_hidden, n_latent, initialW=initializer)
            # SamplingDecoder, fast_decoder.py's equal and faster one, or an opt-in one of decoders.py
            self.decoder = decoder_class(n_latent)

    def encode(self, x):
        """(mu, ln_var) of q(z | x) for the encoder input x as given."""
        h = F.relu(self.encoder1(x))
        h = F.relu(self.encoder2(h))
        return self.encoder_mu(h), self.encoder_ln_var(h)

    def latent(self, x, seen=None):
        """The article's: the encoder sees a random binarisation of x, in training and in evaluation
        (or `seen`, when given); z = mu + exp(ln_var / 2) * eps in training, z = mu in evaluation."""
        mu, ln_var = self.encode(binarize(x, self.xp.random) if seen is None else seen)
        if chainer.config.train:
            return F.gaussian(mu, ln_var), mu, ln_var
        return mu, mu, ln_var

    def decode(self, z, shape):
        """Logits of images of `shape`: the article's decoder call, or the same on pixel centres."""
        if not self.centers:
            return self.decoder(z, shape)
        u = pixel_coordinates(self.xp, shape[2], centers=True)
        v = pixel_coordinates(self.xp, shape[3], centers=True)
        return self.decoder.sample_points(z, u, v)

    def reconstruction_nll(self, x, z):
        """The article's reconstruction term F.bernoulli_nll(x, self.decode(z, x.shape), reduce='sum'); a
        decoder with its own bernoulli_nll (fast_decoder.py's) computes the same sum and gradients in one pass."""
        if not hasattr(self.decoder, 'bernoulli_nll'):
            return F.bernoulli_nll(x, self.decode(z, x.shape), reduce='sum')
        u, v = (pixel_coordinates(self.xp, size, centers=self.centers) for size in x.shape[2:])
        return self.decoder.bernoulli_nll(x, z, u, v)

    def decode_footprints(self, z, shape):
        """Logits at the centres of a k x k subdivision of every pixel of `shape`: (N, 1, H k, W k)."""
        k = self.footprint
        u = pixel_coordinates(self.xp, shape[2] * k, centers=True)
        v = pixel_coordinates(self.xp, shape[3] * k, centers=True)
        return self.decoder.sample_points(z, u, v)

    def __call__(self, x, seen=None):
        """The article's objective: x_loss / n_latent + z_loss / pixels, i.e. the negative ELBO per image
        divided by n_latent * pixels. Reports the article's x_loss (Bernoulli NLL per pixel) and z_loss
        (KL per latent dimension), and in nats per image loss = rec + kl (the negative ELBO), rec and kl.
        With free bits, training minimises rec + sum_d max(free_bits, KL_d) instead, and with beta, rec + beta
        times the KL term, scaled the same way.
        `seen`: the encoder's input, if not the article's random binarisation of x (compare_article.py)."""
        batchsize = len(x)
        z, mu, ln_var = self.latent(x, seen)
        if self.footprint == 1:
            rec = self.reconstruction_nll(x, z) / batchsize
        else:
            rec = F.sum(footprint_nll(x, self.decode_footprints(z, x.shape), self.footprint)) / batchsize
        kl = F.gaussian_kl_divergence(mu, ln_var, reduce='sum') / batchsize
        loss = report_losses(self, rec, kl)
        if (self.free_bits or self.beta != 1) and chainer.config.train:
            kl_term = free_bits_kl(mu, ln_var, self.free_bits) if self.free_bits else kl
            loss = rec + self.beta * kl_term
        return loss / (self.n_latent * self.n_in)

    def settings(self):
        """What a model file records besides the parameters, to build the model again."""
        return {'n_latent': numpy.array(self.n_latent, dtype=numpy.int64),
                'n_in': numpy.array(self.n_in, dtype=numpy.int64),
                'centers': numpy.array(self.centers),
                'footprint': numpy.array(self.footprint, dtype=numpy.int64),  # how it was trained
                'free_bits': numpy.array(self.free_bits, dtype=numpy.float64),
                'beta': numpy.array(self.beta, dtype=numpy.float64),
                **getattr(self.decoder, 'settings', dict)()}  # an opt-in decoder's own (decoders.py)


def report_losses(model, rec, kl):
    """Report the article's x_loss (NLL per pixel) and z_loss (KL per latent dimension), and loss = rec + kl,
    rec and kl in nats per image; returns loss, the negative ELBO."""
    loss = rec + kl
    chainer.report({'x_loss': rec / model.n_in, 'z_loss': kl / model.n_latent, 'loss': loss, 'rec': rec, 'kl': kl},
                   model)
    return loss


def footprint_nll(x, logits, k):
    """Per-pixel Bernoulli NLL of x (N, C, H, W) against p = the mean of sigmoid(logits) over each
    pixel's k x k sub-points (logits (N, C, H k, W k)): the low-resolution pixel as the area average
    of f. Computed in log space; for k = 1 it is F.bernoulli_nll's softplus(y) - x y."""
    n, c, height, width = x.shape

    def log_mean(log_values):  # log of the mean over each k x k block
        blocks = F.transpose(F.reshape(log_values, (n, c, height, k, width, k)), (0, 1, 2, 4, 3, 5))
        return F.logsumexp(F.reshape(blocks, (n, c, height, width, k * k)), axis=4) - math.log(k * k)
    log_p = log_mean(-F.softplus(-logits))  # log sigmoid(y)
    log_not_p = log_mean(-F.softplus(logits))  # log (1 - sigmoid(y))
    return -(x * log_p + (1 - x) * log_not_p)


def free_bits_kl(mu, ln_var, free_bits):
    """sum_d max(free_bits, KL_d), KL_d the batch mean of dimension d's KL: dimensions below free_bits
    nats get no push towards the prior (Kingma et al. 2016), so the encoder can start using them."""
    kl_per_dim = F.sum(F.gaussian_kl_divergence(mu, ln_var, reduce='no'), axis=0) / len(mu)
    floor = chainer.backend.get_array_module(kl_per_dim).full(kl_per_dim.shape, free_bits, dtype=kl_per_dim.dtype)
    return F.sum(F.maximum(kl_per_dim, floor))


def binarize(x, random):
    """The article's encoder input: each pixel is 1 with probability its grey level (x > U, U uniform
    on [0, 1) drawn by `random`, numpy.random or cupy.random or a RandomState), else 0."""
    return (x > random.uniform(size=x.shape)).astype(x.dtype)


def latent_means(model, x, seed=None):
    """z = mu for images x, as a NumPy array: of the grey images, or with a seed of the article's
    random binarisation of them (drawn on the CPU, so a seed gives the same z on any device)."""
    if seed is not None:
        x = binarize(numpy.asarray(x), numpy.random.RandomState(seed))
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mu, _ = model.encode(model.xp.asarray(x))
    return chainer.backend.CpuDevice().send(mu.array)


def pixel_coordinates(xp, size, lo=-1.0, hi=1.0, centers=False):
    """`size` sample positions across [lo, hi]: the article's linspace (first and last on the border),
    or pixel centres lo + (2i + 1) (hi - lo) / (2 size), which line up across resolutions."""
    if not centers:
        return xp.linspace(lo, hi, size, dtype=numpy.float32)
    step = (hi - lo) / size
    return (lo + step * (xp.arange(size, dtype=numpy.float64) + 0.5)).astype(numpy.float32)
