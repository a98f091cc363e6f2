import numpy
import pytest

import svae
import chainer
import chainer.functions as F
from chainer import gradient_check

from conftest import gpu
from fast_decoder import FastSamplingDecoder
from model import binarize, latent_means, pixel_coordinates, SamplingDecoder, SamplingVAE
from rendering import render


def numpy_decoder(decoder, z, height, width):
    """The article's f(u, v, z) written out in plain NumPy, point by point over a meshgrid."""
    params = [(getattr(decoder, f'linear{i}').W.array.astype(numpy.float64),
               getattr(decoder, f'linear{i}').b.array.astype(numpy.float64)) for i in range(1, 5)]
    u, v = numpy.meshgrid(numpy.linspace(-1, 1, height), numpy.linspace(-1, 1, width), indexing='ij')
    out = numpy.empty((len(z), 1, height, width))
    for n, zn in enumerate(z):
        h = numpy.concatenate([u.reshape(-1, 1), v.reshape(-1, 1), numpy.tile(zn, (height * width, 1))], axis=1)
        for i, (W, b) in enumerate(params):
            h = h @ W.T + b
            if i < 3:
                h = numpy.maximum(h, 0)
        out[n, 0] = h.reshape(height, width)
    return out


def make_decoder(n_latent=3, dtype=numpy.float32, seed=0):
    numpy.random.seed(seed)
    with chainer.using_config('dtype', dtype):
        return SamplingDecoder(n_latent)


@pytest.mark.parametrize('height,width', [(28, 28), (7, 13), (1, 5), (30, 2)])
def test_decoder_matches_plain_numpy(height, width):
    decoder = make_decoder(3)
    z = numpy.random.RandomState(1).randn(2, 3).astype(numpy.float32)
    y = decoder(z, (2, 1, height, width))
    assert y.shape == (2, 1, height, width)
    numpy.testing.assert_allclose(y.array, numpy_decoder(decoder, z, height, width), rtol=1e-4, atol=1e-5)


def test_decoder_layers_are_the_articles():
    decoder = make_decoder(8)
    shapes = [getattr(decoder, f'linear{i}').W.shape for i in range(1, 5)]
    assert shapes == [(256, 10), (256, 256), (256, 256), (1, 256)]
    # HeNormal: std sqrt(2 / fan_in); the 256x256 layers have enough samples to check it
    assert abs(decoder.linear2.W.array.std() - numpy.sqrt(2 / 256)) < 0.005


def test_vae_defaults_and_its_encoder_layers():
    numpy.random.seed(0)
    model = SamplingVAE()
    assert (model.n_latent, model.n_in, model.centers, model.footprint, model.free_bits) == (8, 784, False, 1, 0.0)
    assert type(model.decoder) is SamplingDecoder and model.coordinates == 'u=row,v=column'
    layers = [model.encoder1, model.encoder2, model.encoder_mu, model.encoder_ln_var]
    assert [layer.W.shape for layer in layers] == [(256, 784), (256, 256), (8, 256), (8, 256)]
    for layer in layers:  # HeNormal, like the decoder: std sqrt(2 / fan_in) (LeCun's would be sqrt(1 / fan_in))
        fan_in = layer.W.shape[1]
        assert abs(layer.W.array.std() / numpy.sqrt(2 / fan_in) - 1) < 0.15, layer.name
    with pytest.raises(ValueError) as info:
        SamplingVAE(4, footprint=2)
    assert str(info.value) == 'a footprint needs the pixel-centre grid (centers=True)'
    assert SamplingVAE(4, footprint=2, centers=True).footprint == 2


@pytest.mark.parametrize('decoder_class', [SamplingDecoder, FastSamplingDecoder])
def test_decoder_layers_are_the_articles_with_he_normal_weights(decoder_class):
    """2+z -> 256 -> 256 -> 256 -> 1, weights drawn by HeNormal (std sqrt(2 / fan_in)) in layer order, biases 0."""
    numpy.random.seed(3)
    decoder = decoder_class(8)
    numpy.random.seed(3)
    for layer, (n_out, n_in) in zip((decoder.linear1, decoder.linear2, decoder.linear3, decoder.linear4),
                                    [(256, 10), (256, 256), (256, 256), (1, 256)]):
        expected = numpy.random.normal(0, numpy.sqrt(2 / n_in), (n_out, n_in)).astype(numpy.float32)
        numpy.testing.assert_allclose(layer.W.array, expected, rtol=1e-6, atol=1e-7)
        numpy.testing.assert_array_equal(layer.b.array, numpy.zeros(n_out, numpy.float32))


def test_render_takes_z_of_any_float_type():
    decoder = make_decoder(3)
    z = numpy.random.RandomState(2).randn(2, 3)  # float64, as a user's NumPy code makes it
    numpy.testing.assert_array_equal(render(decoder, z, 5, 7), render(decoder, z.astype(numpy.float32), 5, 7))


def test_u_runs_down_the_rows_and_v_across_the_columns():
    """Row index follows u, column index follows v: a decoder that outputs u (or v) shows it."""
    decoder = make_decoder(1)
    for layer in (decoder.linear1, decoder.linear2, decoder.linear3, decoder.linear4):
        layer.W.array[...] = 0
        layer.b.array[...] = 0
    for axis in (0, 1):  # pass u (axis 0 of the input) or v through one ReLU path, shifted positive
        decoder.linear1.W.array[0, :] = 0
        decoder.linear1.W.array[0, axis] = 1
        decoder.linear1.b.array[0] = 1
        decoder.linear2.W.array[0, 0] = decoder.linear3.W.array[0, 0] = decoder.linear4.W.array[0, 0] = 1
        y = decoder(numpy.zeros((1, 1), numpy.float32), (1, 1, 3, 5)).array[0, 0] - 1
        expected = numpy.linspace(-1, 1, 3)[:, None] if axis == 0 else numpy.linspace(-1, 1, 5)[None, :]
        numpy.testing.assert_allclose(y, numpy.broadcast_to(expected, (3, 5)), atol=1e-6)


def test_decoder_gradients():
    decoder = make_decoder(2, dtype=numpy.float64)
    z = numpy.random.RandomState(2).randn(2, 2)
    gy = numpy.random.RandomState(3).randn(2, 1, 3, 4)
    params = [getattr(decoder, f'linear{i}').W for i in (1, 4)] + [decoder.linear2.b]
    gradient_check.check_backward(lambda z: decoder(z, (2, 1, 3, 4)), z, gy, params=params,
                                  dtype=numpy.float64, atol=1e-5, rtol=1e-4)


def observe(model, x, seed):
    """model(x) with numpy's global random numbers seeded: (returned objective, reported values)."""
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observation = {}
    numpy.random.seed(seed)
    with reporter.scope(observation):
        objective = model(x)
    return objective, observation


def test_objective_and_reports_equal_hand_computation():
    """The article's objective x_loss / n_latent + z_loss / 784, and both its and our reports, from the
    encoder's view of x: its random binarisation in evaluation too (numpy's global stream)."""
    numpy.random.seed(0)
    model = SamplingVAE(4)
    x = numpy.random.RandomState(4).uniform(size=(3, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', False):
        objective, observation = observe(model, x, seed=7)
        numpy.random.seed(7)
        seen = (x > numpy.random.uniform(size=x.shape)).astype(numpy.float32)  # the article's x0 > uniform
        mu, ln_var = (a.array.astype(numpy.float64) for a in model.encode(seen))
        logits = model.decoder(mu.astype(numpy.float32), x.shape).array.astype(numpy.float64)
    p = 1 / (1 + numpy.exp(-logits))
    xd = x.astype(numpy.float64)  # the target is the grey image
    rec = -(xd * numpy.log(p) + (1 - xd) * numpy.log(1 - p)).sum() / 3
    kl = 0.5 * (mu ** 2 + numpy.exp(ln_var) - ln_var - 1).sum() / 3
    x_loss, z_loss = rec / 784, kl / 4  # per pixel, per latent dimension
    numpy.testing.assert_allclose(float(objective.array), x_loss / 4 + z_loss / 784, rtol=1e-4)
    numpy.testing.assert_allclose(float(objective.array), (rec + kl) / (4 * 784), rtol=1e-4)
    expected = {'x_loss': x_loss, 'z_loss': z_loss, 'loss': rec + kl, 'rec': rec, 'kl': kl}
    assert sorted(observation) == sorted(f'main/{k}' for k in expected)
    for key, value in expected.items():
        numpy.testing.assert_allclose(float(observation[f'main/{key}'].array), value, rtol=1e-4)


def test_gradients_are_the_negative_elbos_over_n_latent_times_pixels():
    numpy.random.seed(0)
    model = SamplingVAE(3)
    x = numpy.random.RandomState(5).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    objective, _ = observe(model, x, seed=9)  # training: binarisation and z noise
    model.cleargrads()  # a new link's gradients are NaN until cleared, as the optimizer does
    objective.backward()
    grads = {name: param.grad.copy() for name, param in model.namedparams()}
    model.cleargrads()
    with chainer.using_config('keep_graph_on_report', True):
        _, observation = observe(model, x, seed=9)  # the same random draws
    observation['main/loss'].backward()  # the negative ELBO in nats per image
    for name, param in model.namedparams():
        expected = param.grad / (3 * 784)
        numpy.testing.assert_allclose(grads[name], expected, rtol=1e-4, atol=1e-5 * abs(expected).max())
    assert any(abs(g).max() > 0 for g in grads.values())


def test_binarize_is_one_with_probability_the_grey_level():
    grey = numpy.repeat(numpy.array([0.0, 0.1, 0.7, 1.0], numpy.float32)[:, None], 100000, axis=1)
    ones = binarize(grey, numpy.random.RandomState(0))
    assert ones.dtype == numpy.float32 and set(numpy.unique(ones)) == {0.0, 1.0}
    numpy.testing.assert_allclose(ones.mean(axis=1), [0.0, 0.1, 0.7, 1.0], atol=0.005)


def test_binarize_is_one_only_strictly_above_the_draw():
    """x > U: a black pixel stays black even where U draws exactly 0, and a grey level equal to its draw gives 0."""
    draws = type('Draws', (), {'uniform': lambda self, size: numpy.full(size, 0.25)})()
    x = numpy.array([[0.0, 0.25, 0.2500001, 1.0]], numpy.float32)
    numpy.testing.assert_array_equal(binarize(x, draws), [[0.0, 0.0, 1.0, 1.0]])
    zeros = type('Zeros', (), {'uniform': lambda self, size: numpy.zeros(size)})()
    assert not binarize(numpy.zeros((2, 5), numpy.float32), zeros).any()


@pytest.mark.parametrize('train', [True, False])
def test_the_encoder_sees_a_random_binarisation_in_training_and_evaluation(train):
    numpy.random.seed(0)
    model = SamplingVAE(4)
    x = numpy.random.RandomState(6).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', train):
        numpy.random.seed(3)
        z1, mu1, ln_var1 = model.latent(x)
        z2, mu2, _ = model.latent(x)  # the next random draws
        numpy.random.seed(3)
        mu, ln_var = model.encode(binarize(x, numpy.random))
    numpy.testing.assert_array_equal(mu1.array, mu.array)
    numpy.testing.assert_array_equal(ln_var1.array, ln_var.array)
    assert not numpy.allclose(mu1.array, mu2.array)
    if train:
        assert not numpy.allclose(z1.array, mu1.array)  # z sampled
    else:
        numpy.testing.assert_array_equal(z1.array, mu1.array)  # z = mu


def test_pixel_centre_grid_lines_up_across_resolutions():
    """Each point of the 14-grid is the centre of the 2x2 block of 28-grid points it averages."""
    fine = pixel_coordinates(numpy, 28, centers=True)
    coarse = pixel_coordinates(numpy, 14, centers=True)
    numpy.testing.assert_allclose(coarse, fine.reshape(14, 2).mean(axis=1), atol=1e-6)
    numpy.testing.assert_allclose(pixel_coordinates(numpy, 28), numpy.linspace(-1, 1, 28))


@pytest.mark.parametrize('max_points', [7, 100, 1 << 16])
def test_chunked_render_equals_the_articles_call(max_points):
    decoder = make_decoder(3)
    z = numpy.random.RandomState(5).randn(2, 3).astype(numpy.float32)
    with chainer.using_config('train', False):
        whole = F.sigmoid(decoder(z, (2, 1, 9, 11))).array
    numpy.testing.assert_allclose(render(decoder, z, 9, 11, max_points=max_points), whole, rtol=1e-6, atol=1e-7)


def test_render_passes_a_pose_as_float32_and_draws_one_row_at_a_time_where_a_row_exceeds_max_points():
    """An affine3x decoder gets each digit's pose beside z; where one row of the batch holds more points than
    max_points, each call still draws a single row (memory bounded by one row)."""
    calls = []

    class Recorder:
        xp = numpy

        def sample_points(self, *args):
            calls.append(args)
            z, u, v = args[0], args[-2], args[-1]
            return numpy.zeros((len(z), 1, len(u), len(v)), numpy.float32)
    z = numpy.zeros((2, 3), numpy.float32)
    pose = [[0.5, 0.1, 0.0, -0.2], [1.0, 0.0, 0.3, 0.0]]
    out = render(Recorder(), z, 3, 5, max_points=4, pose=pose)
    assert out.shape == (2, 1, 3, 5) and (out == 0.5).all()
    assert [len(args) for args in calls] == [4, 4, 4] and [len(args[2]) for args in calls] == [1, 1, 1]
    for args in calls:
        assert args[1].dtype == numpy.float32 and numpy.array_equal(args[1], numpy.float32(pose))
    calls.clear()
    render(Recorder(), z, 3, 5, max_points=4)
    assert [len(args) for args in calls] == [3, 3, 3]  # without a pose: z, u, v


@gpu
def test_decoder_on_gpu_matches_cpu():
    decoder = make_decoder(3)
    z = numpy.random.RandomState(6).randn(2, 3).astype(numpy.float32)
    expected = decoder(z, (2, 1, 20, 30)).array
    decoder.to_device('@cupy:0')
    import cupy
    got = decoder(cupy.asarray(z), (2, 1, 20, 30)).array
    numpy.testing.assert_allclose(cupy.asnumpy(got), expected, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(render(decoder, z, 20, 30), 1 / (1 + numpy.exp(-expected)), rtol=1e-4, atol=1e-5)


def test_latent_means_are_mu_of_the_grey_input_or_of_a_seeded_binarisation_as_numpy():
    """Evaluation mode whatever the global config says: z = mu, no noise; without a seed the encoder
    sees the grey digits, with one the article's binarisation drawn from RandomState(seed)."""
    numpy.random.seed(0)
    model = SamplingVAE(3)
    x = numpy.random.RandomState(8).uniform(size=(4, 1, 28, 28)).astype(numpy.float32)

    def mu_of(seen):
        h = numpy.maximum(seen.reshape(4, -1) @ model.encoder1.W.array.T + model.encoder1.b.array, 0)
        h = numpy.maximum(h @ model.encoder2.W.array.T + model.encoder2.b.array, 0)
        return h @ model.encoder_mu.W.array.T + model.encoder_mu.b.array
    with chainer.using_config('train', True), chainer.using_config('enable_backprop', True):
        got = latent_means(model, x)
        binary = latent_means(model, x, seed=[2, 5])
    assert type(got) is numpy.ndarray and got.shape == (4, 3)
    numpy.testing.assert_allclose(got, mu_of(x), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(latent_means(model, x), got)  # no noise, no random binarisation
    seen = (x > numpy.random.RandomState([2, 5]).uniform(size=x.shape)).astype(numpy.float32)
    numpy.testing.assert_allclose(binary, mu_of(seen), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(latent_means(model, x, seed=[2, 5]), binary)  # seeded: the same twice
    assert not numpy.allclose(latent_means(model, x, seed=[2, 6]), binary)
