"""evaluate.py: its metrics by hand, its baselines' pixel-centre convention, and a tiny run end to end."""
import subprocess
import sys

import numpy
import pytest

import data
import evaluate
from conftest import ROOT


def test_psnr_and_nll_by_hand():
    truth = numpy.full((2, 4, 4), 0.5, numpy.float32)
    assert evaluate.psnr(truth + 0.1, truth) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    p = numpy.full_like(truth, 0.25)
    assert evaluate.bernoulli_nll(p, truth) == pytest.approx(-(0.5 * numpy.log(0.25) + 0.5 * numpy.log(0.75)))
    assert numpy.isfinite(evaluate.bernoulli_nll(numpy.zeros_like(truth), truth))  # clipped, not infinite


def test_baselines_use_pixel_centres():
    ramp = numpy.tile(numpy.arange(14, dtype=numpy.float32), (1, 14, 1))  # value = column index
    nearest = evaluate.resize(ramp, 28, 'nearest')[0]
    numpy.testing.assert_array_equal(nearest, numpy.repeat(numpy.repeat(ramp[0], 2, axis=0), 2, axis=1))
    # output column j has its centre at input coordinate (j + 0.5) / 2 - 0.5
    bilinear = evaluate.resize(ramp, 28, 'bilinear')[0]
    j = numpy.arange(2, 26)
    numpy.testing.assert_allclose(bilinear[5, j], (j + 0.5) / 2 - 0.5, atol=1e-4)


def test_area_downsampling_averages_blocks():
    x = numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4)
    numpy.testing.assert_allclose(data.downsample(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_tiny_evaluation_end_to_end(tmp_path):
    for size, out in ((14, 'runs/size14'), (7, 'runs/size7'), (28, 'm28')):
        grid = ['--grid', 'center'] if size != 28 else []
        subprocess.run([sys.executable, 'train.py', '--test', '-e', '1', '-z', '3', '--train-size', str(size),
                        '--resolution', '28', '--no-progress', '-o', str(tmp_path / out)] + grid,
                       cwd=ROOT, check=True, capture_output=True)
    report, figure = tmp_path / 'sr.md', tmp_path / 'sr.png'
    result = subprocess.run([sys.executable, 'evaluate.py', '-m', str(tmp_path / 'm28' / 'model.npz'),
                             '--runs', str(tmp_path / 'runs'), '-n', '40', '--iwae-k', '4', '--iwae-images', '8',
                             '-o', str(report), '--figure', str(figure)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    for row in ('(a) model trained at 14x14', '(b) bicubic upsampling of the 7x7 input',
                "(c) bicubic upsampling of the model's own 7x7", '(d) model trained at 28x28', 'IWAE k=4'):
        assert row in text
    import matplotlib.image
    assert matplotlib.image.imread(str(figure)).shape[:2] == (2 * (4 * 28 + 3 * 2) + 6, 8 * 28 + 7 * 2)


def test_missing_models_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, 'evaluate.py', '--runs', str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count('\n') == 1 and '--train-missing' in result.stderr


def test_importance_weights_and_bounds_by_hand():
    """log w = log p(x|z) + log p(z) - log q(z|x) for z = mu + sigma eps, written out in float64."""
    import chainer
    from model import SamplingVAE
    numpy.random.seed(0)
    model = SamplingVAE(3)
    x = numpy.random.RandomState(1).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    k = 4
    got = evaluate.log_weights(model, x, k, numpy.random.RandomState(7))
    eps = numpy.random.RandomState(7).standard_normal((2, k, 3)).astype(numpy.float32)
    with chainer.using_config('train', False):
        mu, ln_var = (a.array.astype(numpy.float64) for a in model.encode(x))
    z = mu[:, None] + numpy.exp(ln_var / 2)[:, None] * eps
    expected = numpy.empty((2, k))
    for n in range(2):
        for j in range(k):
            y = model.decoder(z[n, j][None].astype(numpy.float32), (1, 1, 28, 28)).array.astype(numpy.float64)[0, 0]
            log_px = (x[n, 0] * -numpy.logaddexp(0, -y) + (1 - x[n, 0]) * -numpy.logaddexp(0, y)).sum()
            log_pz = -0.5 * (z[n, j] ** 2 + numpy.log(2 * numpy.pi)).sum()
            log_qz = (-0.5 * ((z[n, j] - mu[n]) ** 2 / numpy.exp(ln_var[n]) + ln_var[n] + numpy.log(2 * numpy.pi))).sum()
            expected[n, j] = log_px + log_pz - log_qz
    numpy.testing.assert_allclose(got, expected, rtol=1e-4)
    # bounds(): one sample per image for the ELBO, then k per image; the same draws, reduced by hand
    elbo, elbo_sub, iwae = evaluate.bounds(model, x, k, 2, numpy.random.RandomState(7), batch_points=784 * 8)
    rng = numpy.random.RandomState(7)
    w1, wk = evaluate.log_weights(model, x, 1, rng), evaluate.log_weights(model, x, k, rng)
    assert elbo == pytest.approx(-w1.mean()) and elbo_sub == pytest.approx(-wk.mean())
    assert iwae == pytest.approx(-numpy.log(numpy.exp(wk - wk.max()).mean(axis=1)).mean() - wk.max())
    assert iwae < elbo_sub  # the importance-weighted bound is the tighter one
