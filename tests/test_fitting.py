"""Test-time fitting of z (fitting.py): the objective by hand, no steps is the encoder's mu, steps lower it."""
import numpy
import pytest

import svae  # noqa: F401
import chainer

from fitting import fit_latents, fit_objective
from model import latent_means, pixel_coordinates, SamplingVAE


def model_and_images(footprint=1):
    numpy.random.seed(0)
    model = SamplingVAE(3, n_in=4 * 6, centers=True, footprint=footprint)
    x = numpy.random.RandomState(1).uniform(size=(5, 1, 4, 6)).astype(numpy.float32)
    return model, x


def test_the_objective_by_hand():
    model, x = model_and_images()
    z = numpy.random.RandomState(2).randn(5, 3).astype(numpy.float32)
    with chainer.using_config('train', False):
        got = fit_objective(model, x, z).array
        logits = model.decoder.sample_points(z, pixel_coordinates(numpy, 4, centers=True),
                                             pixel_coordinates(numpy, 6, centers=True)).array.astype(numpy.float64)
    p = 1 / (1 + numpy.exp(-logits))
    nll = -(x * numpy.log(p) + (1 - x) * numpy.log(1 - p)).sum(axis=(1, 2, 3))
    numpy.testing.assert_allclose(got, nll + 0.5 * (z.astype(numpy.float64) ** 2).sum(axis=1), rtol=1e-5)


def test_no_steps_is_the_encoders_mu():
    model, x = model_and_images()
    numpy.testing.assert_array_equal(fit_latents(model, x, 0), latent_means(model, x))


@pytest.mark.parametrize('footprint', [1, 2])
def test_steps_lower_each_images_objective(footprint):
    model, x = model_and_images(footprint)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        before = fit_objective(model, x, latent_means(model, x)).array
        after = fit_objective(model, x, fit_latents(model, x, 20, lr=0.05, batch=2)).array
    assert (after < before - 1e-3).all()


def test_the_fast_decoder_fits_the_same_z():
    from fast_decoder import FastSamplingDecoder
    model, x = model_and_images()
    fast = SamplingVAE(3, n_in=4 * 6, centers=True, decoder_class=FastSamplingDecoder)
    fast.copyparams(model)
    numpy.testing.assert_allclose(fit_latents(fast, x, 10), fit_latents(model, x, 10), rtol=1e-4, atol=1e-5)


def test_a_target_of_another_size_is_fitted_from_the_inputs_mu():
    """The oracle of experiments/superres.py: z starts at the mu of the low-resolution input and is fitted to
    the finer truth, drawn at the truth's own size (a non-square one here)."""
    model, x = model_and_images()
    target = numpy.random.RandomState(3).uniform(size=(5, 1, 8, 12)).astype(numpy.float32)
    numpy.testing.assert_array_equal(fit_latents(model, x, 0, target=target), latent_means(model, x))
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mu = latent_means(model, x)
        fitted = fit_latents(model, x, 20, lr=0.05, batch=2, target=target)
        assert (fit_objective(model, target, fitted).array < fit_objective(model, target, mu).array - 1e-3).all()
        # fitted to the target, not to the input: the input's own objective is not what went down
        assert not numpy.allclose(fitted, fit_latents(model, x, 20, lr=0.05, batch=2))
