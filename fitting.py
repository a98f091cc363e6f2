"""Test-time fitting of z (opt-in: experiments/superres.py --fit-steps): instead of the encoder's mu, the z that
makes an image most probable under the model, found by gradient steps that start from mu. The encoder is one
network for all images; its mu is not the best z of each (the amortisation gap)."""
import svae  # noqa: F401  (Chainer on today's Python: svae/compat.py)
import numpy

import chainer
import chainer.functions as F

from model import footprint_nll, latent_means


class Latents(chainer.Link):
    """The z being fitted, one row per image, as the only parameter an optimizer sees."""

    def __init__(self, z):
        super().__init__()
        with self.init_scope():
            self.z = chainer.Parameter(z)


def fit_objective(model, x, z):
    """Per image (N,): the Bernoulli NLL of x (N, 1, H, W) under the model's drawing from z on its own grid (the
    mean over a footprint for models trained so) plus |z|^2 / 2, the negative log prior up to a constant; so
    the negative log posterior of z up to a constant."""
    if model.footprint == 1:
        nll = F.bernoulli_nll(x, model.decode(z, x.shape), reduce='no')
    else:
        nll = footprint_nll(x, model.decode_footprints(z, x.shape), model.footprint)
    return F.sum(F.reshape(nll, (len(x), -1)), axis=1) + 0.5 * F.sum(z * z, axis=1)


def summed_objective(model, x, z):
    """fit_objective summed over the images, through the model's own reconstruction term (the fused one of
    fast_decoder.py where the model has it): the same sum, faster."""
    if model.footprint > 1:
        return F.sum(fit_objective(model, x, z))
    return model.reconstruction_nll(x, z) + 0.5 * F.sum(z * z)


def fit_batch(model, x, steps, lr, target):
    latents = Latents(model.xp.asarray(latent_means(model, model.xp.asarray(x))))
    x = model.xp.asarray(target)
    optimizer = chainer.optimizers.Adam(alpha=lr)
    optimizer.setup(latents)
    with chainer.using_config('train', False), chainer.force_backprop_mode():  # also when called under no_backprop_mode
        for _ in range(steps):
            loss = summed_objective(model, x, latents.z)  # images are independent: Adam steps each z alone
            latents.cleargrads()
            model.cleargrads()
            loss.backward()
            optimizer.update()
    return chainer.backend.CpuDevice().send(latents.z.array)


def fit_latents(model, x, steps, lr=0.05, batch=500, target=None):
    """z (N, n_latent) for images x (N, 1, H, W), as a NumPy array: `steps` Adam steps (step size lr) on
    fit_objective from the encoder's mu of the grey images (model_render's z); 0 steps gives mu itself.
    With target (N, 1, H', W'), z is fitted to the targets instead, drawn at their size, still starting from
    the mu of x: fitted to the 28x28 truth, the best z there is for a model's drawing of it."""
    target = x if target is None else target
    return numpy.concatenate([fit_batch(model, x[i:i + batch], steps, lr, target[i:i + batch])
                              for i in range(0, len(x), batch)])
