"""The fast path computes exactly the article's function: outputs and every gradient, same weights."""
import numpy
import pytest

import compat  # noqa: F401
import chainer


from fastpath import FastSamplingDecoder
from model import SamplingDecoder, SamplingVAE, render


def decoder_pair(n_latent, dtype, seed=0):
    numpy.random.seed(seed)
    with chainer.using_config('dtype', dtype):
        faithful, fast = SamplingDecoder(n_latent), FastSamplingDecoder(n_latent)
    fast.copyparams(faithful)
    return faithful, fast


def outputs_and_gradients(decoder, z, shape, gy):
    decoder.cleargrads()
    z = chainer.Variable(z.copy())
    y = decoder(z, shape)
    y.grad = gy
    y.backward()
    grads = {name: param.grad for name, param in decoder.namedparams()}
    return y.array, z.grad, grads


@pytest.mark.parametrize('dtype,rtol', [(numpy.float64, 1e-5), (numpy.float32, 1e-4)])
@pytest.mark.parametrize('shape', [(3, 1, 28, 28), (2, 1, 7, 13), (1, 1, 1, 4), (4, 1, 30, 5)])
def test_fast_path_equals_the_articles_decoder(dtype, rtol, shape, xp_devices):
    for device in xp_devices:
        faithful, fast = decoder_pair(5, dtype)
        faithful.to_device(device)
        fast.to_device(device)
        rng = numpy.random.RandomState(1)
        z = device.send(rng.randn(shape[0], 5).astype(dtype))
        gy = device.send(rng.randn(*shape).astype(dtype))
        y0, gz0, grads0 = outputs_and_gradients(faithful, z, shape, gy)
        y1, gz1, grads1 = outputs_and_gradients(fast, z, shape, gy)
        to_cpu = chainer.backend.CpuDevice().send
        atol = 1e-5 * float(abs(to_cpu(y0)).max())
        numpy.testing.assert_allclose(to_cpu(y1), to_cpu(y0), rtol=rtol, atol=atol)
        numpy.testing.assert_allclose(to_cpu(gz1), to_cpu(gz0), rtol=rtol, atol=rtol * float(abs(to_cpu(gz0)).max()))
        assert grads1.keys() == grads0.keys() and len(grads0) == 8
        for name in grads0:
            g0, g1 = to_cpu(grads0[name]), to_cpu(grads1[name])
            numpy.testing.assert_allclose(g1, g0, rtol=rtol, atol=rtol * float(abs(g0).max()), err_msg=name)


def test_fast_model_has_the_same_parameters_and_loss():
    numpy.random.seed(0)
    faithful = SamplingVAE(4)
    fast = SamplingVAE(4, decoder_class=FastSamplingDecoder)
    fast.copyparams(faithful)
    assert [n for n, _ in faithful.namedparams()] == [n for n, _ in fast.namedparams()]
    x = numpy.random.RandomState(2).uniform(size=(5, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', False):
        numpy.testing.assert_allclose(float(fast(x).array), float(faithful(x).array), rtol=1e-5)


def test_fast_render_equals_faithful_render():
    faithful, fast = decoder_pair(3, numpy.float32)
    z = numpy.random.RandomState(3).randn(2, 3).astype(numpy.float32)
    numpy.testing.assert_allclose(render(fast, z, 17, 23, max_points=50), render(faithful, z, 17, 23),
                                  rtol=1e-5, atol=1e-6)
