"""The article's coordinate convention, checked against a reference written from the article alone.

The article: u = linspace(-1, 1, H) runs down the rows (axis 2), v = linspace(-1, 1, W) across the
columns (axis 3), and the decoder's input for the pixel in row i, column j is (u_i, v_j, z1..zn).
The reference below is plain loops in float64 over that statement; it uses none of our code.
"""
import svae
import numpy
import pytest

import chainer

from fast_decoder import FastSamplingDecoder
from model import SamplingDecoder
from rendering import render

DECODERS = [SamplingDecoder, FastSamplingDecoder]


def random_weights(n_latent, seed):
    """Non-trivial weights: every layer mixes u, v and z, biases off zero."""
    rng = numpy.random.RandomState(seed)
    sizes = [2 + n_latent, 256, 256, 256, 1]
    return [(rng.randn(b, a) * numpy.sqrt(2.0 / a), rng.randn(b) * 0.3) for a, b in zip(sizes[:-1], sizes[1:])]


def mlp(weights, point):
    h = numpy.asarray(point, dtype=numpy.float64)
    for k, (W, b) in enumerate(weights):
        h = W @ h + b
        if k < 3:
            h = numpy.maximum(h, 0.0)
    return h[0]


def reference(weights, z, height, width, u_range=(-1.0, 1.0), v_range=(-1.0, 1.0)):
    """Logits (N, 1, H, W): pixel (i, j) is f(u_i, v_j, z) with u down the rows, v across the columns."""
    u = numpy.linspace(*u_range, height)
    v = numpy.linspace(*v_range, width)
    out = numpy.empty((len(z), 1, height, width))
    for n in range(len(z)):
        for i in range(height):
            for j in range(width):
                out[n, 0, i, j] = mlp(weights, [u[i], v[j], *z[n]])
    return out


def decoder_with(decoder_class, weights, dtype):
    with chainer.using_config('dtype', dtype):
        decoder = decoder_class(len(weights[0][0][0]) - 2)
    for k, (W, b) in enumerate(weights, start=1):
        layer = getattr(decoder, f'linear{k}')
        layer.W.array[...] = W
        layer.b.array[...] = b
    return decoder


@pytest.mark.parametrize('decoder_class', DECODERS)
@pytest.mark.parametrize('height,width', [(5, 9), (11, 4)])
def test_decoder_computes_the_articles_function(decoder_class, height, width):
    weights = random_weights(3, seed=1)
    z = numpy.random.RandomState(2).randn(2, 3)
    expected = reference(weights, z, height, width)
    decoder = decoder_with(decoder_class, weights, numpy.float64)
    got = decoder(z, (2, 1, height, width)).array
    assert got.shape == (2, 1, height, width)
    numpy.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('decoder_class', DECODERS)
def test_render_of_a_region_computes_the_articles_function(decoder_class):
    """--region U0 V0 U1 V1: u (vertical) from U0 to U1 over the rows, v (horizontal) from V0 to V1."""
    weights = random_weights(2, seed=3)
    z = numpy.random.RandomState(4).randn(1, 2)
    region = (-0.5, 0.25, 0.75, 1.5)  # u0, v0, u1, v1: every number differs
    expected = 1 / (1 + numpy.exp(-reference(weights, z, 6, 10, (-0.5, 0.75), (0.25, 1.5))))
    decoder = decoder_with(decoder_class, weights, numpy.float32)
    got = render(decoder, z.astype(numpy.float32), 6, 10, region=region, max_points=7)
    numpy.testing.assert_allclose(got, expected, atol=2e-6)


def centres(lo, hi, size):
    """Pixel centres across [lo, hi], written out: lo + (i + 1/2) (hi - lo) / size."""
    return numpy.array([lo + (i + 0.5) * (hi - lo) / size for i in range(size)])


def reference_at(weights, z, u, v):
    return numpy.array([[[[mlp(weights, [ui, vj, *zn]) for vj in v] for ui in u]] for zn in z])


@pytest.mark.parametrize('decoder_class', DECODERS)
def test_the_pixel_centre_model_decodes_at_pixel_centres(decoder_class):
    """A model trained with --grid center: f at the centres of the pixels of a non-square image."""
    from model import SamplingVAE
    weights = random_weights(3, seed=5)
    z = numpy.random.RandomState(6).randn(2, 3)
    model = SamplingVAE(3, n_in=16, centers=True, decoder_class=decoder_class)
    model.decoder = decoder_with(decoder_class, weights, numpy.float32)
    got = model.decode(z.astype(numpy.float32), (2, 1, 5, 9)).array
    expected = reference_at(weights, z, centres(-1, 1, 5), centres(-1, 1, 9))
    numpy.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('decoder_class', DECODERS)
def test_render_of_a_region_on_pixel_centres(decoder_class):
    weights = random_weights(2, seed=7)
    z = chainer.Variable(numpy.random.RandomState(8).randn(1, 2).astype(numpy.float32))  # a Variable is accepted
    expected = 1 / (1 + numpy.exp(-reference_at(weights, z.array, centres(-0.5, 0.75, 6), centres(0.25, 1.5, 10))))
    decoder = decoder_with(decoder_class, weights, numpy.float32)
    got = render(decoder, z, 6, 10, region=(-0.5, 0.25, 0.75, 1.5), centers=True, max_points=7)
    assert got.dtype == numpy.float32 and got.shape == (1, 1, 6, 10)
    numpy.testing.assert_allclose(got, expected, atol=2e-6)


if __name__ == '__main__':  # python tests/test_article_convention.py: the max difference to the reference
    for height, width in ((28, 28), (20, 33)):
        weights, z = random_weights(8, seed=0), numpy.random.RandomState(1).randn(2, 8)
        expected = reference(weights, z, height, width)
        for decoder_class in DECODERS:
            for dtype in (numpy.float64, numpy.float32):
                got = decoder_with(decoder_class, weights, dtype)(z.astype(dtype), (2, 1, height, width)).array
                print(f'{height}x{width} {decoder_class.__name__} {numpy.dtype(dtype).name}: '
                      f'max |logit - reference| {numpy.abs(got - expected).max():.2e}')
