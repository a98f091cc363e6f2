"""The fast path computes exactly the article's function: outputs and every gradient, same weights."""
import numpy
import pytest

import svae
import chainer
import chainer.functions as F


from fast_decoder import FastSamplingDecoder
from model import SamplingDecoder, SamplingVAE
from rendering import render
import fast_decoder


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
        numpy.random.seed(1)
        fast_loss = float(fast(x).array)
        numpy.random.seed(1)  # the same random binarisation of the encoder's input
        numpy.testing.assert_allclose(fast_loss, float(faithful(x).array), rtol=1e-5)


def test_fast_render_equals_faithful_render():
    faithful, fast = decoder_pair(3, numpy.float32)
    z = numpy.random.RandomState(3).randn(2, 3).astype(numpy.float32)
    numpy.testing.assert_allclose(render(fast, z, 17, 23, max_points=50), render(faithful, z, 17, 23),
                                  rtol=1e-5, atol=1e-6)


# ---- the fused decoder + Bernoulli NLL of training on the CPU ----

def nll_and_gradients(decoder, nll, z, scale):
    """nll(z) * scale, d/dz and d/dparameters of it."""
    decoder.cleargrads()
    z = chainer.Variable(z.copy())
    loss = nll(z) * scale
    loss.backward()
    return float(loss.array), z.grad, {name: param.grad for name, param in decoder.namedparams()}


@pytest.mark.parametrize('workers', [1, 3])
@pytest.mark.parametrize('dtype,rtol', [(numpy.float64, 1e-9), (numpy.float32, 1e-4)])
@pytest.mark.parametrize('shape', [(3, 1, 28, 28), (2, 1, 30, 29), (1, 1, 7, 13), (5, 1, 1, 4)])
def test_fused_nll_equals_the_articles_decoder_and_bernoulli_nll(workers, dtype, rtol, shape):
    """Value and every gradient of the summed Bernoulli NLL, against F.bernoulli_nll of SamplingDecoder's
    logits: non-square grids, 30 x 29 = 870 points in blocks of 392, 392 and 86, grey targets, an upstream
    gradient other than 1, and blocks shared by one worker or by more workers than there are images; the
    gradients in the parameters' dtype."""
    faithful, fast = decoder_pair(5, dtype)
    rng = numpy.random.RandomState(1)
    z = rng.randn(shape[0], 5).astype(dtype)
    x = rng.uniform(size=shape).astype(dtype)
    uv = fast.points(numpy.linspace(-1, 1, shape[2], dtype=dtype), numpy.linspace(-1, 1, shape[3], dtype=dtype))
    fused = lambda z: fast_decoder.FusedBernoulliNLL(uv, x.reshape(len(x), -1), workers=workers, block_rows=392)(
        z, *fast.params_in_order())
    loss0, gz0, grads0 = nll_and_gradients(faithful, lambda z: F.bernoulli_nll(x, faithful(z, shape), reduce='sum'), z, 0.37)
    loss1, gz1, grads1 = nll_and_gradients(fast, fused, z, 0.37)
    numpy.testing.assert_allclose(loss1, loss0, rtol=rtol)
    numpy.testing.assert_allclose(gz1, gz0, rtol=rtol, atol=rtol * abs(gz0).max())
    assert grads1.keys() == grads0.keys() and len(grads0) == 8
    for name in grads0:
        assert grads1[name].shape == grads0[name].shape and grads1[name].dtype == dtype, name
        numpy.testing.assert_allclose(grads1[name], grads0[name], rtol=rtol, atol=rtol * abs(grads0[name]).max(), err_msg=name)


def test_a_nan_or_infinite_logit_gives_a_nan_loss_quietly():
    """train.py's check reports a non-finite loss in one line; NumPy's 'invalid value' warning would come first."""
    import warnings
    _, fast = decoder_pair(3, numpy.float32)
    fast.linear4.b.array[:] = numpy.inf  # every logit infinite
    z, x = numpy.zeros((2, 3), numpy.float32), numpy.full((2, 1, 3, 5), 0.5, numpy.float32)
    u, v = numpy.linspace(-1, 1, 3, dtype=numpy.float32), numpy.linspace(-1, 1, 5, dtype=numpy.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        loss = fast.bernoulli_nll(x, z, u, v)
    assert numpy.isnan(loss.array)


def test_fused_nll_without_backprop_is_the_same_sum():
    faithful, fast = decoder_pair(3, numpy.float64)
    rng = numpy.random.RandomState(2)
    z, x = rng.randn(2, 3), rng.uniform(size=(2, 1, 9, 44))
    u, v = numpy.linspace(-1, 1, 9), numpy.linspace(-1, 1, 44)
    expected = float(F.bernoulli_nll(x, faithful(z, x.shape), reduce='sum').array)
    with chainer.no_backprop_mode():
        function = fast_decoder.FusedBernoulliNLL(fast.points(u, v), x.reshape(2, -1))
        loss = function(z, *fast.params_in_order())
    numpy.testing.assert_allclose(float(loss.array), expected, rtol=1e-12)


@pytest.mark.parametrize('centers', [False, True])
def test_fast_model_trains_with_the_same_loss_and_gradients(centers):
    """SamplingVAE's training loss (its random binarisation and z sample drawn alike) and every parameter's
    gradient, with the fused NLL against the article's decoder; also on the pixel-centre grid."""
    numpy.random.seed(0)
    faithful = SamplingVAE(4, centers=centers)
    fast = SamplingVAE(4, centers=centers, decoder_class=FastSamplingDecoder)
    fast.copyparams(faithful)
    x = numpy.random.RandomState(2).uniform(size=(3, 1, 28, 28)).astype(numpy.float32)
    results = []
    for model in (faithful, fast):
        model.cleargrads()
        numpy.random.seed(1)
        loss = model(x)
        loss.backward()
        results.append((float(loss.array), {name: param.grad for name, param in model.namedparams()}))
    (loss0, grads0), (loss1, grads1) = results
    numpy.testing.assert_allclose(loss1, loss0, rtol=1e-5)
    assert grads1.keys() == grads0.keys()
    for name in grads0:
        numpy.testing.assert_allclose(grads1[name], grads0[name], rtol=1e-4, atol=1e-4 * abs(grads0[name]).max(), err_msg=name)


def test_the_fast_decoder_trains_through_the_fused_nll_and_the_articles_through_its_own_line():
    """The equality above holds either way; this is which way: FastSamplingDecoder's own bernoulli_nll, in one
    Function, and the article's F.bernoulli_nll(..., reduce='sum') for SamplingDecoder."""
    numpy.random.seed(0)
    x = numpy.random.RandomState(2).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    z = chainer.Variable(numpy.random.RandomState(3).randn(2, 4).astype(numpy.float32))
    fast = SamplingVAE(4, decoder_class=FastSamplingDecoder).reconstruction_nll(x, z)
    assert isinstance(fast.creator, fast_decoder.FusedBernoulliNLL)
    faithful = SamplingVAE(4).reconstruction_nll(x, z)
    assert faithful.shape == () and not isinstance(faithful.creator, fast_decoder.FusedBernoulliNLL)
