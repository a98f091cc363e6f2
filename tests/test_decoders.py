"""The opt-in decoders (decoders.py), each with the article's convention (u down the rows, v across the columns):
Fourier-feature coordinates (train.py --fourier K: f sees (u, v), then sin and cos of 2^k pi u and 2^k pi v, then
z) and local latents (--local-grid G: f sees (u, v) and the bilinear blend of a G x G grid of latent vectors)."""
import math

import numpy
import pytest

import svae  # noqa: F401
import chainer
from chainer import gradient_check

from decoders import blend_weights, FourierSamplingDecoder, LocalSamplingDecoder, opt_in_decoder
from model import SamplingDecoder, SamplingVAE


def decoder(frequencies, n_latent=3, seed=0, kind=FourierSamplingDecoder):
    numpy.random.seed(seed)
    d = kind(n_latent, frequencies)
    d.to_device(chainer.get_device('@numpy'))
    for link in d.children():
        link.W.array = link.W.array.astype(numpy.float64)
        link.b.array = numpy.random.RandomState(seed).randn(*link.b.shape) * 0.1
    return d


def test_the_input_of_each_point_by_hand():
    """Pixel (i, j) of a 3x5 grid gets (u_i, v_j, sin(pi u_i), sin(2 pi u_i), cos(pi u_i), cos(2 pi u_i), the same of
    v_j, z): checked through linear1 made the identity on its first inputs."""
    d = decoder(2, n_latent=2)
    n_in = 2 + 4 * 2 + 2
    u, v = numpy.linspace(-1, 0.5, 3), numpy.array([-0.9, -0.2, 0.1, 0.4, 0.95])
    z = numpy.array([[0.3, -0.7]])
    seen = []
    d.decode = lambda h: seen.append(h.array) or chainer.Variable(h.array[:, :1])
    d.sample_points(z, u, v)
    inputs = seen[0].reshape(3, 5, n_in)
    for i in range(3):
        for j in range(5):
            f = lambda t: [math.sin(math.pi * t), math.sin(2 * math.pi * t), math.cos(math.pi * t), math.cos(2 * math.pi * t)]
            expected = [u[i], v[j]] + f(u[i]) + f(v[j]) + [0.3, -0.7]
            numpy.testing.assert_allclose(inputs[i, j], expected, rtol=1e-12, atol=1e-12)


def test_without_the_feature_weights_it_is_the_articles_decoder():
    d = decoder(3)
    article = SamplingDecoder(3)
    W = d.linear1.W.array.copy()
    W[:, 2:2 + 12] = 0  # the twelve feature columns
    d.linear1.W.array = W
    article.linear1.W.array = numpy.concatenate([W[:, :2], W[:, 14:]], axis=1)
    for name in ('linear1', 'linear2', 'linear3', 'linear4'):
        if name != 'linear1':
            getattr(article, name).W.array = getattr(d, name).W.array
        getattr(article, name).b.array = getattr(d, name).b.array
    z = numpy.random.RandomState(1).randn(2, 3)
    u, v = numpy.linspace(-1, 1, 4), numpy.linspace(-1, 1, 6)
    numpy.testing.assert_allclose(d.sample_points(z, u, v).array, article.sample_points(z, u, v).array, rtol=1e-12)


def test_the_opt_in_decoders_by_their_settings():
    assert type(SamplingVAE(8, decoder_class=opt_in_decoder(2)).decoder) is FourierSamplingDecoder
    assert type(SamplingVAE(8, decoder_class=opt_in_decoder(0, 2)).decoder) is LocalSamplingDecoder
    assert opt_in_decoder(0, 1) is None  # the article's
    with pytest.raises(ValueError):
        opt_in_decoder(2, 2)
    with pytest.raises(ValueError):
        LocalSamplingDecoder(12, 4)  # 12 numbers do not split into 16 cells


def test_blend_weights_by_hand():
    """Cell centres of a 4-cell grid at -0.75, -0.25, 0.25, 0.75; beyond the outer ones the outer cell alone."""
    t = numpy.array([-1.0, -0.75, -0.5, 0.0, 0.1, 0.75, 0.9])
    expected = [[1, 0, 0, 0], [1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0], [0, 0.3, 0.7, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    numpy.testing.assert_allclose(blend_weights(t, 4), expected, atol=1e-12)
    numpy.testing.assert_allclose(blend_weights(t, 1), numpy.ones((7, 1)))


def test_local_latents_by_hand():
    """A 2x2 grid of 2-number cells (cell by cell, rows first) on a 3x4 grid of points: f's input for pixel (i, j)
    is (u_i, v_j, the cells' vectors blended at (u_i, v_j)); the top-left cell's alone at its centre."""
    d = decoder(2, n_latent=8, kind=LocalSamplingDecoder)
    u, v = numpy.array([-0.5, 0.0, 0.9]), numpy.array([-1.0, -0.5, 0.25, 0.5])
    z = numpy.arange(8, dtype=numpy.float64)[None] * [[1, -1, 2, 3, 0.5, 4, -2, 1]]
    cells = z.reshape(2, 2, 2)  # [cell row, cell column, number]
    seen = []
    d.decode = lambda h: seen.append(h.array) or chainer.Variable(h.array[:, :1])
    d.sample_points(z, u, v)
    inputs = seen[0].reshape(3, 4, 4)
    for i in range(3):
        for j in range(4):
            wu, wv = blend_weights(u[i:i + 1], 2)[0], blend_weights(v[j:j + 1], 2)[0]
            blended = numpy.einsum('a,b,abk->k', wu, wv, cells)
            numpy.testing.assert_allclose(inputs[i, j], [u[i], v[j], *blended], rtol=1e-12)
    numpy.testing.assert_allclose(inputs[0, 1, 2:], cells[0, 0])  # (-0.5, -0.5): the top-left cell's centre


def test_a_one_cell_grid_is_the_articles_decoder():
    d = decoder(1, n_latent=3, kind=LocalSamplingDecoder)
    article = SamplingDecoder(3)
    for name in ('linear1', 'linear2', 'linear3', 'linear4'):
        getattr(article, name).W.array = getattr(d, name).W.array
        getattr(article, name).b.array = getattr(d, name).b.array
    z = numpy.random.RandomState(1).randn(2, 3)
    u, v = numpy.linspace(-1, 1, 4), numpy.linspace(-1, 1, 6)
    numpy.testing.assert_allclose(d.sample_points(z, u, v).array, article.sample_points(z, u, v).array, rtol=1e-12)


@pytest.mark.parametrize('kind,setting,n_latent,width', [(FourierSamplingDecoder, 2, 3, 4),
                                                        (LocalSamplingDecoder, 2, 4, 5)])
def test_gradient(kind, setting, n_latent, width):
    """Every gradient of both opt-in decoders (z and parameters), on a non-square grid."""
    d = decoder(setting, n_latent=n_latent, kind=kind)
    rng = numpy.random.RandomState(2)
    z = rng.randn(2, n_latent)
    u, v = numpy.linspace(-1, 1, 3), numpy.linspace(-0.5, 1, width)
    gy = rng.randn(2, 1, 3, width)
    params = [link.W for link in d.children()] + [link.b for link in d.children()]
    gradient_check.check_backward(lambda z: d.sample_points(z, u, v), z, gy, params=params, dtype=numpy.float64,
                                  atol=1e-5, rtol=1e-4)
