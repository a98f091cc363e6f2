"""The opt-in loss options of model.py (footprint training, free bits, beta): off, each is exactly the article."""
import numpy
import pytest

import svae
import chainer
import chainer.functions as F
from chainer import gradient_check

import train
from model import binarize, footprint_nll, free_bits_kl, pixel_coordinates, SamplingVAE
from model_files import load_model, save_model
from decoders import FourierSamplingDecoder, LocalSamplingDecoder, opt_in_decoder
from fast_decoder import FastSamplingDecoder


def sigmoid(y):
    return 1 / (1 + numpy.exp(-y))


def test_a_1x1_footprint_is_the_bernoulli_nll():
    rng = numpy.random.RandomState(0)
    x, y = rng.uniform(size=(2, 1, 3, 5)), rng.randn(2, 1, 3, 5) * 4
    numpy.testing.assert_allclose(footprint_nll(x, y, 1).array, F.bernoulli_nll(x, y, reduce='no').array, rtol=1e-10)


def test_a_2x2_footprint_compares_each_pixel_with_its_mean_probability():
    rng = numpy.random.RandomState(1)
    x, y = rng.uniform(size=(2, 1, 3, 4)), rng.randn(2, 1, 6, 8) * 3
    p = sigmoid(y).reshape(2, 1, 3, 2, 4, 2).mean(axis=(3, 5))  # block (i, j) holds rows 2i, 2i+1, columns 2j, 2j+1
    expected = -(x * numpy.log(p) + (1 - x) * numpy.log(1 - p))
    numpy.testing.assert_allclose(footprint_nll(x, y, 2).array, expected, rtol=1e-10)


def test_footprint_nll_gradient():
    rng = numpy.random.RandomState(2)
    x, y = rng.uniform(size=(1, 1, 2, 3)), rng.randn(1, 1, 6, 9)
    gy = rng.randn(1, 1, 2, 3)
    gradient_check.check_backward(lambda y: footprint_nll(x, y, 3), y, gy, dtype=numpy.float64, atol=1e-6, rtol=1e-5)


def test_footprint_model_loss_by_hand():
    """rec: each pixel of a 7x5 image against the mean of f's probabilities at the 2x2 pixel centres of its area."""
    numpy.random.seed(0)
    model = SamplingVAE(3, n_in=35, centers=True, footprint=2)
    x = numpy.random.RandomState(3).uniform(size=(2, 1, 7, 5)).astype(numpy.float32)
    with chainer.using_config('train', False):
        observation = {}
        reporter = chainer.Reporter()
        reporter.add_observer('main', model)
        numpy.random.seed(5)
        with reporter.scope(observation):
            model(x)
        numpy.random.seed(5)  # the same random binarisation of the encoder's input
        mu = model.encode(binarize(x, numpy.random))[0]
        rows, cols = pixel_coordinates(numpy, 14, centers=True), pixel_coordinates(numpy, 10, centers=True)
        assert rows[:2].mean() == pytest.approx(pixel_coordinates(numpy, 7, centers=True)[0])
        logits = model.decoder.sample_points(mu, rows, cols).array.astype(numpy.float64)
    p = sigmoid(logits).reshape(2, 1, 7, 2, 5, 2).mean(axis=(3, 5))
    rec = -(x * numpy.log(p) + (1 - x) * numpy.log(1 - p)).sum() / 2
    numpy.testing.assert_allclose(float(observation['main/rec'].array), rec, rtol=1e-5)


def test_footprint_needs_the_pixel_centre_grid():
    with pytest.raises(ValueError):
        SamplingVAE(3, footprint=2)


def test_free_bits_by_hand():
    rng = numpy.random.RandomState(4)
    mu, ln_var = rng.randn(5, 4) * [0.1, 1, 2, 0.05], rng.randn(5, 4) * 0.1
    kl_per_dim = (0.5 * (mu ** 2 + numpy.exp(ln_var) - ln_var - 1)).mean(axis=0)
    assert (kl_per_dim < 0.25).any() and (kl_per_dim > 0.25).any()  # both sides of the floor
    numpy.testing.assert_allclose(free_bits_kl(mu, ln_var, 0.25).array, numpy.maximum(kl_per_dim, 0.25).sum(), rtol=1e-10)
    mu_var, ln_var_var = chainer.Variable(mu), chainer.Variable(ln_var)
    free_bits_kl(mu_var, ln_var_var, 0.25).backward()
    assert (mu_var.grad[:, kl_per_dim < 0.25] == 0).all()  # no push towards the prior below the floor
    assert (abs(mu_var.grad[:, kl_per_dim > 0.25]) > 0).all()


def training_step(free_bits, beta=1.0):
    """The objective a training step minimises and the loss it reports, from the same random draws."""
    numpy.random.seed(0)
    model = SamplingVAE(4, free_bits=free_bits, beta=beta)
    x = numpy.random.RandomState(5).uniform(size=(3, 1, 28, 28)).astype(numpy.float32)
    observation = {}
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    numpy.random.seed(1)
    with reporter.scope(observation):
        objective = model(x)
    return float(objective.array), {k: float(v.array) for k, v in observation.items()}


ARTICLE_SCALE = 4 * 784  # the article's objective is nats per image over n_latent * pixels


def test_free_bits_zero_is_the_articles_loss():
    objective, reported = training_step(0.0)
    assert objective == pytest.approx(reported['main/loss'] / ARTICLE_SCALE, rel=1e-6)
    assert training_step(0.0) == (objective, reported)


def test_free_bits_raise_the_objective_not_the_reported_loss():
    objective, reported = training_step(1000.0)  # far above every dimension's KL: each counts 1000 nats
    assert objective == pytest.approx((reported['main/rec'] + 4 * 1000.0) / ARTICLE_SCALE, rel=1e-6)
    assert reported['main/loss'] == pytest.approx(reported['main/rec'] + reported['main/kl'], rel=1e-6)


def test_beta_one_is_the_articles_loss():
    assert training_step(0.0, beta=1.0) == training_step(0.0)
    objective, reported = training_step(0.0, beta=1.0)
    assert objective == pytest.approx(reported['main/loss'] / ARTICLE_SCALE, rel=1e-6)


@pytest.mark.parametrize('beta', [0.0, 0.3])
def test_beta_weighs_the_kl_term_not_the_reported_loss(beta):
    objective, reported = training_step(0.0, beta=beta)
    assert objective == pytest.approx((reported['main/rec'] + beta * reported['main/kl']) / ARTICLE_SCALE, rel=1e-6)
    assert reported == training_step(0.0)[1]  # the same draws, the same negative ELBO reported


def test_beta_weighs_the_free_bits_term():
    objective, reported = training_step(1000.0, beta=0.5)
    assert objective == pytest.approx((reported['main/rec'] + 0.5 * 4 * 1000.0) / ARTICLE_SCALE, rel=1e-6)


def test_settings_are_saved_with_the_model(tmp_path):
    numpy.random.seed(0)
    path = str(tmp_path / 'm.npz')
    save_model(SamplingVAE(3, n_in=196, centers=True, footprint=4, free_bits=0.5, beta=0.25,
                           decoder_class=opt_in_decoder(3)), path)
    model = load_model(path)
    assert (model.footprint, model.free_bits, model.centers, model.n_in) == (4, 0.5, True, 196)
    assert (model.beta, type(model.decoder), model.decoder.frequencies) == (0.25, FourierSamplingDecoder, 3)
    save_model(SamplingVAE(8, decoder_class=opt_in_decoder(0, 2)), path)
    model = load_model(path, decoder_class=FastSamplingDecoder)  # the fast decoder takes (u, v) only: not used
    assert (type(model.decoder), model.decoder.grid, model.n_latent) == (LocalSamplingDecoder, 2, 8)
    save_model(SamplingVAE(8), path)
    assert type(load_model(path, decoder_class=FastSamplingDecoder).decoder) is FastSamplingDecoder


@pytest.mark.parametrize('name,value', [('beta', numpy.array(-1.0)), ('beta', numpy.array([1.0])),
                                        ('fourier', numpy.array(-2)), ('fourier', numpy.array(1.5)),
                                        ('local_grid', numpy.array(0)), ('local_grid', numpy.array(3))])
def test_a_malformed_beta_or_fourier_setting_is_refused(tmp_path, name, value):
    from model_files import ModelFileError
    numpy.random.seed(0)
    path = str(tmp_path / 'm.npz')
    save_model(SamplingVAE(3), path)
    with numpy.load(path) as npz:
        arrays = dict(npz)
    arrays[name] = value
    numpy.savez(path, **arrays)
    with pytest.raises(ModelFileError, match='malformed beta|settings that do not go together'):
        load_model(path)


@pytest.mark.parametrize('argv,message', [(['--footprint', '2'], '--footprint needs --grid center'),
                                          (['--free-bits', '-1'], 'must be a non-negative number'),
                                          (['--footprint', '0'], 'must be a positive integer'),
                                          (['--beta', '-0.5'], 'must be a non-negative number'),
                                          (['--fourier', '2', '--decoder', 'fast'], "--fourier needs the article's decoder"),
                                          (['--local-grid', '2', '--decoder', 'fast'], "--local-grid needs the article's"),
                                          (['--local-grid', '2', '--fourier', '2'], 'are not combined'),
                                          (['--local-grid', '2', '-z', '6'], '-z 6 does not split into 2 x 2 cells'),
                                          (['--model', 'affine3x', '--local-grid', '2'], '--local-grid'),
                                          (['--model', 'affine3x', '--beta', '0'], '--beta'),
                                          (['--model', 'affine3x', '--fourier', '2'], '--fourier')])
def test_flag_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
