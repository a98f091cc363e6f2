"""experiments/superres.py: its models' names and training, its rows by their definitions, the likelihood
bounds, the report and figure, and small runs end to end."""
import io
import os
import subprocess
import sys

import numpy
import pytest

from svae import data, figures, measure
import rendering
import superres
from conftest import ROOT, says


@pytest.fixture(scope='module')
def tiny_models():
    import svae  # noqa: F401
    from model import SamplingVAE
    numpy.random.seed(3)
    return {2: SamplingVAE(3, n_in=196, centers=True), 4: SamplingVAE(3, n_in=49, centers=True), 28: SamplingVAE(3)}


def save_runs(tiny_models, runs, m28):
    """The tiny x2 and x4 models under the names of the default settings, and the 28x28 model."""
    from model_files import save_model
    for factor in (2, 4):
        (runs / f'x{factor}_z8_point_freebits0').mkdir(parents=True)
        save_model(tiny_models[factor], str(runs / f'x{factor}_z8_point_freebits0' / 'model.npz'))
    save_model(tiny_models[28], str(m28))


def test_area_downsampling_averages_blocks():
    x = numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4)
    numpy.testing.assert_allclose(data.downsample(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_configurations_name_each_setting_and_give_its_training_flags():
    assert [name for name, _ in superres.configurations(superres.parse_args([]), 2)] == ['x2_z8_point_freebits0']
    args = superres.parse_args(['--latents', '8', '32', '--footprints', '1', '4', '--free-bits', '0', '0.5'])
    assert [name for name, _ in superres.configurations(args, 4)] == [
        'x4_z8_point_freebits0', 'x4_z8_point_freebits0.5', 'x4_z8_footprint4_freebits0', 'x4_z8_footprint4_freebits0.5',
        'x4_z32_point_freebits0', 'x4_z32_point_freebits0.5', 'x4_z32_footprint4_freebits0', 'x4_z32_footprint4_freebits0.5']
    assert dict(superres.configurations(args, 4))['x4_z32_footprint4_freebits0.5'] == [
        '--train-size', '7', '-z', '32', '--footprint', '4', '--free-bits', '0.5']


def test_beta_and_fourier_features_are_named_and_flagged_where_not_the_articles():
    args = superres.parse_args(['--latents', '16', '--betas', '1', '0.1', '--fourier', '0', '4'])
    assert dict(superres.configurations(args, 2)) == {
        'x2_z16_point_freebits0': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0'],
        'x2_z16_point_freebits0_fourier4': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0',
                                            '--fourier', '4'],
        'x2_z16_point_freebits0_beta0.1': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0',
                                           '--beta', '0.1'],
        'x2_z16_point_freebits0_beta0.1_fourier4': ['--train-size', '14', '-z', '16', '--footprint', '1',
                                                    '--free-bits', '0', '--beta', '0.1', '--fourier', '4']}


def test_local_grids_are_named_and_flagged_and_only_where_z_splits_into_the_cells():
    args = superres.parse_args(['--latents', '8', '16', '--fourier', '0', '2', '--local-grids', '1', '2', '4'])
    assert dict(superres.configurations(args, 2)) == {
        'x2_z8_point_freebits0': ['--train-size', '14', '-z', '8', '--footprint', '1', '--free-bits', '0'],
        'x2_z8_point_freebits0_local2': ['--train-size', '14', '-z', '8', '--footprint', '1', '--free-bits', '0',
                                         '--local-grid', '2'],
        'x2_z8_point_freebits0_fourier2': ['--train-size', '14', '-z', '8', '--footprint', '1', '--free-bits', '0',
                                           '--fourier', '2'],
        'x2_z16_point_freebits0': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0'],
        'x2_z16_point_freebits0_local2': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0',
                                          '--local-grid', '2'],
        'x2_z16_point_freebits0_local4': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0',
                                          '--local-grid', '4'],
        'x2_z16_point_freebits0_fourier2': ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0',
                                            '--fourier', '2']}


def test_models_named_are_the_ones_trained_and_scored_each_at_its_scale():
    names = ['x2_z16_point_freebits4_beta0.1', 'x4_z8_footprint2_freebits0.5_fourier3', 'x2_z16_point_freebits0_local2']
    args = superres.parse_args(['--models'] + names)
    assert args.scales == [2, 4]
    assert dict(superres.configurations(args, 2)) == {
        names[0]: ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '4', '--beta', '0.1'],
        names[2]: ['--train-size', '14', '-z', '16', '--footprint', '1', '--free-bits', '0', '--local-grid', '2']}
    assert dict(superres.configurations(args, 4)) == {
        names[1]: ['--train-size', '7', '-z', '8', '--footprint', '2', '--free-bits', '0.5', '--fourier', '3']}


@pytest.mark.parametrize('name', ['x3_z8_point_freebits0', 'x2_z8_point', 'x2_z8_point_freebits0_beta', 'z8_point_freebits0'])
def test_a_malformed_model_name_is_refused(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        superres.parse_args(['--models', name])
    assert exit_info.value.code == 2 and 'is not a model name' in capsys.readouterr().err


def test_the_fitted_row_renders_the_fitted_z(tiny_models):
    from fitting import fit_latents
    from rendering import render
    truth = data.load_mnist('test')[0][:4, 0]
    low = data.downsample(truth[:, None], 14)[:, 0]
    model = tiny_models[2]
    row = superres.model_row(model, low, fit_steps=3, fit_lr=0.1)
    expected = render(model.decoder, fit_latents(model, low[:, None], 3, 0.1), 28, 28, centers=True)[:, 0]
    numpy.testing.assert_array_equal(row['e'], expected)
    assert not numpy.array_equal(row['e'], row['a'])
    assert 'e' not in superres.model_row(model, low)
    table = superres.scale_table(2, {'m': dict(row, epochs=1)}, {}, truth)
    assert table[2].split(' | ')[9] == '(e) PSNR (dB)'
    assert table[4].split(' | ')[9] == f'{measure.psnr(row["e"], truth):.2f}'


def test_the_oracle_row_renders_z_fitted_to_the_truth(tiny_models):
    from fitting import fit_latents
    from rendering import render
    truth = data.load_mnist('test')[0][:4, 0]
    low = data.downsample(truth[:, None], 14)[:, 0]
    model = tiny_models[2]
    row = superres.model_row(model, low, fit_steps=3, fit_lr=0.1, truth=truth, oracle_steps=5)
    z = fit_latents(model, low[:, None], 5, 0.1, target=truth[:, None])
    numpy.testing.assert_array_equal(row['o'], render(model.decoder, z, 28, 28, centers=True)[:, 0])
    assert measure.psnr(row['o'], truth) > measure.psnr(row['a'], truth)  # fitted to the answer
    table = superres.scale_table(2, {'m': dict(row, epochs=1)}, {}, truth)
    assert table[2].split(' | ')[9:12:2] == ['(e) PSNR (dB)', '(o) PSNR (dB)']
    assert table[4].split(' | ')[11] == f'{measure.psnr(row["o"], truth):.2f}'


def test_a_runs_epochs_are_counted_by_its_log(tmp_path):
    assert superres.trained_epochs(str(tmp_path)) == 0  # nothing there
    (tmp_path / 'log').write_text('[{"epoch": 1, "iteration": 938}, {"epoch": 3, "iteration": 2814}]')
    assert superres.trained_epochs(str(tmp_path)) == 0  # a log without its model
    (tmp_path / 'model.npz').write_bytes(b'')  # an interrupted run leaves a model of its last epoch
    assert superres.trained_epochs(str(tmp_path)) == 3
    (tmp_path / 'log').write_text('[]')
    assert superres.trained_epochs(str(tmp_path)) == 0
    (tmp_path / 'log').write_text('[{"epoch": 1, "itera')  # cut off while written
    assert superres.trained_epochs(str(tmp_path)) == 0


def test_train_missing_trains_what_is_absent_or_shorter_and_says_so_before(monkeypatch, tmp_path):
    class Pipe(io.StringIO):  # what a reader of a block-buffered stdout (a pipe, a log file) has been sent: flushed text
        sent = ''

        def flush(self):
            self.sent = self.getvalue()
    pipe, calls = Pipe(), []
    monkeypatch.setattr(sys, 'stdout', pipe)
    monkeypatch.setattr(superres.subprocess, 'run', lambda argv, **kwargs: calls.append((argv, kwargs, pipe.sent)))
    done, short = tmp_path / 'x2_z8_point_freebits0', tmp_path / 'x4_z8_point_freebits0'
    for run, epochs in ((done, 4), (short, 2)):
        run.mkdir()
        (run / 'model.npz').write_bytes(b'')
        (run / 'log').write_text(f'[{{"epoch": {epochs}}}]')
    superres.train_missing(superres.parse_args(['--runs', str(tmp_path), '-e', '4', '-g', '-1', '--n-train', '100',
                                                '--latents', '8', '16']))
    trained = [argv[argv.index('-o') + 1] for argv, _, _ in calls]
    assert trained == [str(tmp_path / 'x2_z16_point_freebits0'), str(short), str(tmp_path / 'x4_z16_point_freebits0')]
    argv, kwargs, sent = calls[1]
    assert argv == [sys.executable, os.path.join(ROOT, 'train.py'), '-g', '-1', '-e', '4', '--n-train', '100', '--grid', 'center',
                    '--resolution', '28', '--no-progress', '-r', 'auto', '-o', str(short),
                    '--train-size', '7', '-z', '8', '--footprint', '1', '--free-bits', '0']
    assert kwargs['check'] is True
    assert sent.splitlines()[-1] == 'training: python ' + ' '.join(argv[1:])  # announced before train.py writes


def test_latent_use_by_hand():
    import chainer
    from model import SamplingVAE
    numpy.random.seed(0)
    model = SamplingVAE(3, n_in=196, centers=True)
    model.encoder_mu.W.array[1] = 0  # dimension 1 ignores the input: E[z_1 | x] is the same for every x
    x = numpy.random.RandomState(6).uniform(size=(40, 1, 14, 14)).astype(numpy.float32)
    kl, active = superres.latent_use(model, x)
    with chainer.using_config('train', False):
        mu, ln_var = (a.array.astype(numpy.float64) for a in model.encode(x))
    assert kl == pytest.approx((0.5 * (mu ** 2 + numpy.exp(ln_var) - ln_var - 1)).sum(axis=1).mean(), rel=1e-5)
    assert active == int((mu.var(axis=0) > 0.01).sum()) and mu[:, 1].var() == 0 and active <= 2


def test_model_render_in_batches_equals_one_render_on_the_models_grid(tiny_models):
    from model import latent_means
    from rendering import render
    x = data.load_mnist('test')[0][:7]
    low = data.downsample(x, 14)
    model = tiny_models[2]
    got = rendering.model_render(model, low, 9, batch=3)
    expected = render(model.decoder, latent_means(model, low), 9, 9, centers=True)[:, 0]
    assert got.shape == (7, 9, 9)
    numpy.testing.assert_allclose(got, expected, rtol=1e-6)
    assert not numpy.allclose(got, render(model.decoder, latent_means(model, low), 9, 9, centers=False)[:, 0])


def test_rows_are_their_definitions(tiny_models):
    truth = data.load_mnist('test')[0][:5, 0]
    model = tiny_models[4].copy(mode='copy')
    model.decoder.linear4.W.array *= 50  # sharp edges: bicubic upsampling overshoots [0, 1], which (c) clips
    low = data.downsample(truth[:, None], 7)[:, 0]
    row = superres.model_row(model, low)
    numpy.testing.assert_array_equal(row['a'], rendering.model_render(model, low[:, None], 28))
    own = measure.RESAMPLERS['bicubic'](rendering.model_render(model, low[:, None], 7), 28)
    assert own.min() < 0 and own.max() > 1
    numpy.testing.assert_array_equal(row['c'], numpy.clip(own, 0, 1))
    assert (row['kl'], row['active']) == superres.latent_use(model, low[:, None]) and row['n_latent'] == 3
    ours28, mean_digit = truth * 0.5, truth.mean(axis=0)
    rows = superres.baseline_rows(low, ours28, mean_digit)
    methods = ('nearest', 'bilinear', 'bicubic', 'bicubic a=-0.75', 'lanczos')
    assert list(rows) == ([f'(b) {method} upsampling of the 7x7 input' for method in methods]
                          + ['(d) model trained at 28x28, rendered at 28x28', 'the mean training digit'])
    for method in methods:
        numpy.testing.assert_array_equal(rows[f'(b) {method} upsampling of the 7x7 input'], measure.resize(low, 28, method))
    assert rows['(d) model trained at 28x28, rendered at 28x28'] is ours28
    assert rows['the mean training digit'].shape == truth.shape and (rows['the mean training digit'] == mean_digit).all()


def test_importance_weights_and_bounds_by_hand():
    """log w = log p(x|z) + log p(z) - log q(z|x) for z = mu + sigma eps, written out in float64."""
    import chainer
    from model import SamplingVAE
    numpy.random.seed(0)
    model = SamplingVAE(3)
    x = numpy.random.RandomState(1).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    k = 4
    got = superres.log_weights(model, x, k, numpy.random.RandomState(7))
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
    elbo, elbo_sub, iwae = superres.bounds(model, x, k, 2, numpy.random.RandomState(7), batch_points=784 * 8)
    rng = numpy.random.RandomState(7)
    w1, wk = superres.log_weights(model, x, 1, rng), superres.log_weights(model, x, k, rng)
    assert elbo == pytest.approx(-w1.mean()) and elbo_sub == pytest.approx(-wk.mean())
    assert iwae == pytest.approx(-numpy.log(numpy.exp(wk - wk.max()).mean(axis=1)).mean() - wk.max())
    assert iwae < elbo_sub  # the importance-weighted bound is the tighter one


def test_bounds_do_not_depend_on_the_batching_and_use_the_first_n_iwae_images(tiny_models):
    model = tiny_models[28]
    x = data.load_mnist('test')[0][:5]
    whole = superres.bounds(model, x, 3, 4, numpy.random.RandomState(5))
    one_by_one = superres.bounds(model, x, 3, 4, numpy.random.RandomState(5), batch_points=784)
    numpy.testing.assert_allclose(whole, one_by_one, rtol=1e-5)
    rng = numpy.random.RandomState(5)
    w1 = superres.log_weights(model, x, 1, rng)[:, 0]
    w3 = superres.log_weights(model, x[:4], 3, rng)
    assert whole[0] == pytest.approx(-w1.mean()) and whole[1] == pytest.approx(-w3.mean(), rel=1e-6)
    assert whole[2] == pytest.approx(-(numpy.logaddexp.reduce(w3, axis=1) - numpy.log(3)).mean(), rel=1e-6)
    more = superres.bounds(model, x, 3, 9, numpy.random.RandomState(5))  # n_iwae beyond the data: all of it
    assert numpy.isfinite(more).all()


def test_figure_rows_are_truth_input_interpolation_then_the_models_shown():
    truth = numpy.random.RandomState(0).uniform(size=(9, 28, 28)).astype(numpy.float32)
    low2, low4 = data.downsample(truth[:, None], 14)[:, 0], data.downsample(truth[:, None], 7)[:, 0]
    panels = [(low2, truth * 0.5, [truth * 0.25]), (low4, truth * 0.75, [1 - truth, truth * 0.125])]
    image = superres.figure(truth, panels)
    assert image.dtype == numpy.float32
    cell = 28 + figures.BORDER
    assert image.shape == ((4 + 5) * cell - 2 * figures.BORDER + 3 * figures.BORDER, 8 * cell - figures.BORDER)
    top = 4 * cell - figures.BORDER + 3 * figures.BORDER  # where the x4 panel starts
    numpy.testing.assert_array_equal(image[:28, cell:cell + 28], truth[1])
    numpy.testing.assert_array_equal(image[cell:cell + 28, :28], figures.upscale_nearest(low2[:1], 28, 28)[0])
    numpy.testing.assert_array_equal(image[2 * cell:2 * cell + 28, :28], truth[0] * 0.5)
    numpy.testing.assert_array_equal(image[3 * cell:3 * cell + 28, 7 * cell:], truth[7] * 0.25)
    numpy.testing.assert_array_equal(image[top + cell:top + cell + 28, :28], figures.upscale_nearest(low4[:1], 28, 28)[0])
    numpy.testing.assert_array_equal(image[top + 3 * cell:top + 3 * cell + 28, :28], 1 - truth[0])
    numpy.testing.assert_array_equal(image[top + 4 * cell:top + 4 * cell + 28, cell:cell + 28], truth[1] * 0.125)
    assert (image[4 * cell - figures.BORDER:top] == 1.0).all()  # a white gap between the panels


def test_a_run_in_process_reports_the_metrics_of_its_rows(tiny_models, tmp_path, capsys, monkeypatch):
    runs, m28 = tmp_path / 'runs', tmp_path / 'm28.npz'
    save_runs(tiny_models, runs, m28)
    argv = ['-m', str(m28), '--runs', str(runs), '-n', '6', '--likelihood', '--iwae-k', '2', '--iwae-images', '3',
            '-o', str(tmp_path / 'sr.md'), '--figure', str(tmp_path / 'sr.png'), '--seed', '4', '--n-train', '50']
    monkeypatch.setattr(sys, 'argv', ['superres.py'] + argv)
    superres.main()  # the command line recorded is the one given
    report = (tmp_path / 'sr.md').read_text()
    assert report + '\n' in capsys.readouterr().out
    lines = report.split('\n')
    assert lines[2].startswith('Produced by `python experiments/superres.py ' + ' '.join(argv) + '` in ')
    assert f' s on CPU ({os.cpu_count()} cores), commit ' in lines[2]
    assert 0 <= int(lines[2].split('` in ')[1].split(' s on ')[0]) < 600  # the run's own seconds
    assert lines[3].startswith('Test digits: 6. ') and 'probabilities clipped to [0.001, 0.999]' in lines[3]
    (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
    truth = x_test[:6, 0]
    ours28 = rendering.model_render(tiny_models[28], truth[:, None], 28)
    for factor in (2, 4):
        low = data.downsample(truth[:, None], 28 // factor)[:, 0]
        row = superres.model_row(tiny_models[factor], low)
        table = lines[lines.index(f'## x{factor} ({28 // factor}x{28 // factor} -> 28x28)') + 4]
        assert table == (f'| x{factor}_z8_point_freebits0 | 3 | 1x1 | 0 | 1 | (u, v) | 0 | {measure.psnr(row["a"], truth):.2f} '
                         f'| {measure.bernoulli_nll(row["a"], truth):.4f} | {measure.psnr(row["c"], truth):.2f} '
                         f'| {measure.bernoulli_nll(row["c"], truth):.4f} | {row["kl"]:.2f} | {row["active"]} '
                         f'| {measure.psnr(rendering.model_render(tiny_models[factor], low[:, None], 28 // factor), low):.2f} |')
        baselines = superres.baseline_rows(low, ours28, x_train[:50, 0].mean(axis=0))
        for name, p in baselines.items():
            assert f'| {name} | {measure.psnr(p, truth):.2f} | {measure.bernoulli_nll(p, truth):.4f} |' in lines
    rng = numpy.random.RandomState(4)
    binary = (truth > rng.uniform(size=truth.shape)).astype(numpy.float32)
    grey = superres.bounds(tiny_models[28], truth[:, None], 2, 3, rng)
    binarised = superres.bounds(tiny_models[28], binary[:, None], 2, 3, rng)
    assert f'| grey levels (the training target) | {grey[0]:.2f} | {grey[1]:.2f} | {grey[2]:.2f} |' in lines
    assert (f'| binarised, fixed seed (x > uniform) | {binarised[0]:.2f} | {binarised[1]:.2f} | {binarised[2]:.2f} |'
            in lines)
    assert '| test set | -ELBO (all, 1 sample) | -ELBO (first 3) | -log p(x) bound, IWAE k=2 (first 3) |' in lines
    assert f'this model has {tiny_models[28].n_latent} latent units' in report  # what was measured, not a fixed sentence
    import matplotlib.image
    # fewer digits than the figure's 8 columns: 6 columns, each still a truth/input/Lanczos/model column
    assert matplotlib.image.imread(str(tmp_path / 'sr.png')).shape[:2] == (2 * (4 * 28 + 3 * 2) + 6, 6 * 28 + 5 * 2)


def test_without_likelihood_the_report_has_no_bounds(tiny_models, tmp_path):
    runs, m28 = tmp_path / 'runs', tmp_path / 'm28.npz'
    save_runs(tiny_models, runs, m28)
    superres.main(['-m', str(m28), '--runs', str(runs), '-n', '2', '--scales', '4', '-o', str(tmp_path / 'sr.md'),
                   '--figure', str(tmp_path / 'sr.png')])
    report = (tmp_path / 'sr.md').read_text()
    assert '## x4 (7x7 -> 28x28)' in report and '## x2' not in report and 'IWAE' not in report


def test_missing_model_message_suggests_train_missing_only_without_it(monkeypatch, tmp_path, capsys):
    missing = str(tmp_path / 'x2_z8_point_freebits0' / 'model.npz')
    argv = ['--runs', str(tmp_path), '-o', str(tmp_path / 'a.md'), '--figure', str(tmp_path / 'a.png')]
    with pytest.raises(SystemExit) as info:
        superres.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and says(err, 'superres.py: error: ', missing, '(or run with --train-missing)')
    trained = []
    monkeypatch.setattr(superres, 'train_missing', lambda args: trained.append((args.runs, args.epoch)))
    with pytest.raises(SystemExit):
        superres.main(argv + ['--train-missing', '-e', '3'])
    err = capsys.readouterr().err
    assert trained == [(str(tmp_path), 3)]
    assert says(err, missing) and '--train-missing' not in err  # nothing appended
    assert not (tmp_path / 'a.md').exists()


def test_a_model_of_another_scale_is_refused_by_name(tiny_models, tmp_path, capsys):
    from model_files import save_model
    runs = tmp_path / 'runs'
    (runs / 'x2_z8_point_freebits0').mkdir(parents=True)
    save_model(tiny_models[4], str(runs / 'x2_z8_point_freebits0' / 'model.npz'))  # a 7x7 model where x2's belongs
    with pytest.raises(SystemExit) as info:
        superres.main(['--runs', str(runs), '--scales', '2', '-n', '2', '-o', str(tmp_path / 'a.md'),
                       '--figure', str(tmp_path / 'a.png')])
    assert info.value.code == 2 and says(capsys.readouterr().err, runs / 'x2_z8_point_freebits0' / 'model.npz', '49', '14x14')


def test_defaults_are_the_committed_models_and_the_articles_settings():
    args = superres.parse_args([])
    from svae import cli
    assert (args.model, args.runs, args.out, args.figure) == (
        cli.PRETRAINED, os.path.join(ROOT, 'results', 'superres'),
        os.path.join('result', 'superres.md'), os.path.join('result', 'superres.png'))
    assert (args.scales, args.latents, args.footprints, args.free_bits, args.epoch, args.n_train) == (
        [2, 4], [8], [1], [0.0], 5, 60000)
    assert (args.likelihood, args.iwae_k, args.iwae_images, args.n, args.seed, args.gpu, args.train_missing) == (
        False, 100, 500, 10000, 0, -1, False)
    for name, _ in (*superres.configurations(args, 2), *superres.configurations(args, 4)):  # committed
        assert superres.trained_epochs(os.path.join(args.runs, name)) == args.epoch


def test_a_gpu_run_is_labelled_with_its_gpu(tiny_models, tmp_path, monkeypatch):
    import svae  # noqa: F401
    import chainer
    from svae import cli
    save_runs(tiny_models, tmp_path, tmp_path / 'm28.npz')
    monkeypatch.setattr(cli, 'device_for', lambda gpu: chainer.get_device('@numpy'))  # stands in for GPU 0
    argv = ['-m', str(tmp_path / 'm28.npz'), '--runs', str(tmp_path), '-n', '2', '-o', str(tmp_path / 'sr.md'),
            '--figure', str(tmp_path / 'sr.png'), '-g', '0']
    superres.main(argv)
    produced = (tmp_path / 'sr.md').read_text().split('\n')[2]
    assert produced.startswith('Produced by `python experiments/superres.py ' + ' '.join(argv) + '` in ')  # as given, not sys.argv
    assert ' s on GPU 0, commit ' in produced


def test_a_failed_write_of_the_report_is_one_line_with_status_1(tiny_models, tmp_path, monkeypatch, capsys):
    from svae.files import WriteError
    save_runs(tiny_models, tmp_path, tmp_path / 'm28.npz')

    def full_disk(path, text):
        raise WriteError(f'cannot write {path}: No space left on device')
    monkeypatch.setattr(superres, 'write_text', full_disk)
    with pytest.raises(SystemExit) as info:
        superres.main(['-m', str(tmp_path / 'm28.npz'), '--runs', str(tmp_path), '-n', '2', '-o', str(tmp_path / 'sr.md'),
                       '--figure', str(tmp_path / 'sr.png')])
    assert info.value.code == 1
    assert says(capsys.readouterr().err, 'superres.py: error: ', tmp_path / 'sr.md', 'No space left on device')
    assert not (tmp_path / 'sr.png').exists()


@pytest.mark.slow
def test_a_tiny_run_trains_what_is_missing_scores_and_draws(tmp_path, monkeypatch):
    """From another directory (superres.py finds train.py), x4 only, one setting with free bits: trained, then
    the table's row and the figure are the model's own rendering."""
    import matplotlib.pyplot as plt
    from model_files import load_model
    subprocess.run([sys.executable, 'train.py', '--test', '-e', '1', '-z', '3', '--no-progress', '-o', str(tmp_path / 'm28')],
                   cwd=ROOT, check=True, capture_output=True)
    runs, table, figure = tmp_path / 'runs', tmp_path / 'x4.md', tmp_path / 'x4.png'
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'superres.py'), '--train-missing', '--scales', '4',
                             '--latents', '3', '--free-bits', '0.5', '-e', '1', '--n-train', '64', '-n', '12',
                             '-m', str(tmp_path / 'm28' / 'model.npz'), '--runs', str(runs), '-o', str(table),
                             '--figure', str(figure)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = table.read_text().splitlines()
    row = next(line for line in lines if line.startswith('| x4_z3_point_freebits0.5 |'))
    assert row.startswith('| x4_z3_point_freebits0.5 | 3 | 1x1 | 0.5 | 1 | (u, v) | 1 |')
    truth = data.load_mnist('test')[0][:12, 0]
    low = data.downsample(truth[:, None], 7)[:, 0]
    model = load_model(str(runs / 'x4_z3_point_freebits0.5' / 'model.npz'))
    assert model.n_in == 49 and model.centers
    ours = rendering.model_render(model, low[:, None], 28)
    assert row.split(' | ')[7] == f'{measure.psnr(ours, truth):.2f}'
    lanczos = measure.resize(low, 28, 'lanczos')
    image = numpy.round(plt.imread(str(figure))[..., 0] * 255)  # rows: truth, 7x7 input, Lanczos, the one model
    expected = figures.tile(numpy.concatenate([truth[:8], figures.upscale_nearest(low[:8], 28, 28), lanczos[:8], ours[:8]]), cols=8)
    assert numpy.array_equal(image, figures.to_rgb(expected)[..., 0])
