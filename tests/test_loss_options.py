"""The opt-in loss options of model.py (footprint training, free bits): off, each is exactly the article; and the sweep that trains with them."""
import numpy
import pytest

import svae
from conftest import says
import chainer
import chainer.functions as F
from chainer import gradient_check

import train
from model import binarize, footprint_nll, free_bits_kl, pixel_coordinates, SamplingVAE
from model_files import load_model, save_model


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


def training_step(free_bits):
    """The objective a training step minimises and the loss it reports, from the same random draws."""
    numpy.random.seed(0)
    model = SamplingVAE(4, free_bits=free_bits)
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


def test_settings_are_saved_with_the_model(tmp_path):
    numpy.random.seed(0)
    path = str(tmp_path / 'm.npz')
    save_model(SamplingVAE(3, n_in=196, centers=True, footprint=4, free_bits=0.5), path)
    model = load_model(path)
    assert (model.footprint, model.free_bits, model.centers, model.n_in) == (4, 0.5, True, 196)


@pytest.mark.parametrize('argv,message', [(['--footprint', '2'], '--footprint needs --grid center'),
                                          (['--free-bits', '-1'], 'must be a non-negative number'),
                                          (['--footprint', '0'], 'must be a positive integer')])
def test_flag_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sweep_configurations_and_latent_use_by_hand():
    import sweep
    assert [name for name, _ in sweep.configurations(sweep.parse_args([]))] == [
        f'z{z}_{kind}_freebits{bits}' for z in (8, 16, 32) for kind in ('point', 'footprint2') for bits in ('0', '0.25')]
    one = sweep.parse_args(['--latents', '16', '--footprints', '1', '--free-bits', '0.25'])
    assert list(sweep.configurations(one)) == [('z16_point_freebits0.25', ['-z', '16', '--footprint', '1', '--free-bits', '0.25'])]
    args = sweep.parse_args(['--latents', '8', '32', '--footprints', '1', '4', '--free-bits', '0', '0.5'])
    assert [name for name, _ in sweep.configurations(args)] == [
        'z8_point_freebits0', 'z8_point_freebits0.5', 'z8_footprint4_freebits0', 'z8_footprint4_freebits0.5',
        'z32_point_freebits0', 'z32_point_freebits0.5', 'z32_footprint4_freebits0', 'z32_footprint4_freebits0.5']
    assert dict(sweep.configurations(args))['z32_footprint4_freebits0.5'] == [
        '-z', '32', '--footprint', '4', '--free-bits', '0.5']
    numpy.random.seed(0)
    model = SamplingVAE(3, n_in=196, centers=True)
    model.encoder_mu.W.array[1] = 0  # dimension 1 ignores the input: E[z_1 | x] is the same for every x
    x = numpy.random.RandomState(6).uniform(size=(40, 1, 14, 14)).astype(numpy.float32)
    kl, active = sweep.latent_use(model, x)
    with chainer.using_config('train', False):
        mu, ln_var = (a.array.astype(numpy.float64) for a in model.encode(x))
    assert kl == pytest.approx((0.5 * (mu ** 2 + numpy.exp(ln_var) - ln_var - 1)).sum(axis=1).mean(), rel=1e-5)
    assert active == int((mu.var(axis=0) > 0.01).sum()) and mu[:, 1].var() == 0 and active <= 2


def test_sweep_counts_a_runs_epochs_by_its_log(tmp_path):
    import sweep
    assert sweep.trained_epochs(str(tmp_path)) == 0  # nothing there
    (tmp_path / 'log').write_text('[{"epoch": 1, "iteration": 938}, {"epoch": 3, "iteration": 2814}]')
    assert sweep.trained_epochs(str(tmp_path)) == 0  # a log without its model
    (tmp_path / 'model.npz').write_bytes(b'')  # an interrupted run leaves a model of its last epoch
    assert sweep.trained_epochs(str(tmp_path)) == 3
    (tmp_path / 'log').write_text('[]')
    assert sweep.trained_epochs(str(tmp_path)) == 0
    (tmp_path / 'log').write_text('[{"epoch": 1, "itera')  # cut off while written
    assert sweep.trained_epochs(str(tmp_path)) == 0


@pytest.mark.slow
def test_sweep_at_x4_trains_scores_and_draws_at_7x7(tmp_path, monkeypatch, capsys):
    import os
    import matplotlib.pyplot as plt
    from svae import data, figures, measure
    import rendering
    import sweep
    monkeypatch.chdir(tmp_path)  # sweep.py finds train.py from anywhere
    runs, table, figure = tmp_path / 'runs', tmp_path / 'x4.md', tmp_path / 'x4.png'
    argv = ['--train-missing', '--train-size', '7', '--latents', '3', '--footprints', '1', '--free-bits', '0.5',
            '-e', '1', '--n-train', '64', '-n', '12', '--runs', str(runs), '-o', str(table), '--figure', str(figure)]
    sweep.main(argv)
    lines = table.read_text().splitlines()
    assert lines[0] == '# Sweep at x4: what would it take for f(u, v, z) to beat interpolation?'
    assert '--train-size 7 --grid center' in lines[3] and lines[7].startswith('| z3_point_freebits0.5 | 3 | 1x1 | 0.5 | 1 |')
    truth = data.load_mnist('test')[0][:12, 0]
    low = data.downsample(truth[:, None], 7)[:, 0]
    model = load_model(str(runs / 'z3_point_freebits0.5' / 'model.npz'))
    assert model.n_in == 49 and model.centers
    ours = rendering.model_render(model, low[:, None], 28)
    assert lines[7].split(' | ')[5] == f'{measure.psnr(ours, truth):.2f}'
    lanczos = measure.resize(low, 28, 'lanczos')
    assert f'| (b) lanczos upsampling of the 7x7 input | {measure.psnr(lanczos, truth):.2f} |' in '\n'.join(lines)
    image = numpy.round(plt.imread(str(figure))[..., 0] * 255)  # rows: truth, 7x7 input, Lanczos, best, first (here the same model)
    expected = figures.tile(numpy.concatenate([truth[:8], figures.upscale_nearest(low[:8], 28, 28), lanczos[:8], ours[:8],
                                               ours[:8]]), cols=8)
    assert numpy.array_equal(image, figures.to_rgb(expected)[..., 0])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # the same runs scored as x2: the 7x7 model is refused, not crashed into
        sweep.main(argv[:1] + ['--train-size', '14'] + argv[3:])
    assert info.value.code == 2 and says(capsys.readouterr().err, f'{runs}/z3_point_freebits0.5/model.npz', '49',
                                         '--train-size 14')
