"""experiments/evaluate.py: its table's rows, the likelihood bounds, the report and a tiny run end to end."""
import io
import os
import subprocess
import sys

import numpy
import pytest

from svae import data, measure
import rendering
import evaluate
from conftest import ROOT, says


def test_area_downsampling_averages_blocks():
    x = numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4)
    numpy.testing.assert_allclose(data.downsample(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.slow
def test_tiny_evaluation_end_to_end(tmp_path):
    for size, out in ((14, 'runs/size14'), (7, 'runs/size7'), (28, 'm28')):
        grid = ['--grid', 'center'] if size != 28 else []
        subprocess.run([sys.executable, 'train.py', '--test', '-e', '1', '-z', '3', '--train-size', str(size),
                        '--resolution', '28', '--no-progress', '-o', str(tmp_path / out)] + grid,
                       cwd=ROOT, check=True, capture_output=True)
    report, figure = tmp_path / 'sr.md', tmp_path / 'sr.png'
    result = subprocess.run([sys.executable, os.path.join('experiments', 'evaluate.py'), '-m', str(tmp_path / 'm28' / 'model.npz'),
                             '--runs', str(tmp_path / 'runs'), '-n', '40', '--iwae-k', '4', '--iwae-images', '8',
                             '-o', str(report), '--figure', str(figure)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    for row in ('(a) model trained at 14x14', '(b) bicubic upsampling of the 7x7 input',
                "(c) bicubic upsampling of the model's own 7x7", '(d) model trained at 28x28', 'IWAE k=4'):
        assert row in text
    import matplotlib.image
    assert matplotlib.image.imread(str(figure)).shape[:2] == (2 * (4 * 28 + 3 * 2) + 6, 8 * 28 + 7 * 2)


@pytest.mark.slow
def test_missing_models_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, os.path.join('experiments', 'evaluate.py'), '--runs', str(tmp_path)], cwd=ROOT,
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


@pytest.fixture(scope='module')
def tiny_models():
    import svae  # noqa: F401
    from model import SamplingVAE
    numpy.random.seed(3)
    return {2: SamplingVAE(3, n_in=196, centers=True), 4: SamplingVAE(3, n_in=49, centers=True), 28: SamplingVAE(3)}


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


def test_superres_rows_are_their_definitions(tiny_models):
    truth = data.load_mnist('test')[0][:5, 0]
    model = tiny_models[4].copy(mode='copy')
    model.decoder.linear4.W.array *= 50  # sharp edges: bicubic upsampling overshoots [0, 1], which (c) clips
    rows, (low, lanczos, ours) = evaluate.superres_rows(model, truth, 4)
    numpy.testing.assert_array_equal(low, data.downsample(truth[:, None], 7)[:, 0])
    methods = ('nearest', 'bilinear', 'bicubic', 'bicubic a=-0.75', 'lanczos')
    assert list(rows) == (['(a) model trained at 7x7, rendered at 28x28']
                          + [f'(b) {method} upsampling of the 7x7 input' for method in methods]
                          + ["(c) bicubic upsampling of the model's own 7x7 rendering"])
    numpy.testing.assert_array_equal(rows['(a) model trained at 7x7, rendered at 28x28'],
                                     rendering.model_render(model, low[:, None], 28))
    for method in methods:
        numpy.testing.assert_array_equal(rows[f'(b) {method} upsampling of the 7x7 input'],
                                         measure.resize(low, 28, method))
    own = measure.RESAMPLERS['bicubic'](rendering.model_render(model, low[:, None], 7), 28)
    assert lanczos is rows['(b) lanczos upsampling of the 7x7 input']  # the figure shows the table's rows
    assert ours is rows['(a) model trained at 7x7, rendered at 28x28']
    assert own.min() < 0 and own.max() > 1
    numpy.testing.assert_array_equal(rows["(c) bicubic upsampling of the model's own 7x7 rendering"],
                                     numpy.clip(own, 0, 1))
    rows, (low, _, _) = evaluate.superres_rows(tiny_models[28], truth[:2], 1)  # x1: the 28x28 digits themselves
    numpy.testing.assert_array_equal(low, truth[:2])
    assert list(rows)[0] == '(a) model trained at 28x28, rendered at 28x28'


def test_bounds_do_not_depend_on_the_batching_and_use_the_first_n_iwae_images(tiny_models):
    model = tiny_models[28]
    x = data.load_mnist('test')[0][:5]
    whole = evaluate.bounds(model, x, 3, 4, numpy.random.RandomState(5))
    one_by_one = evaluate.bounds(model, x, 3, 4, numpy.random.RandomState(5), batch_points=784)
    numpy.testing.assert_allclose(whole, one_by_one, rtol=1e-5)
    rng = numpy.random.RandomState(5)
    w1 = evaluate.log_weights(model, x, 1, rng)[:, 0]
    w3 = evaluate.log_weights(model, x[:4], 3, rng)
    assert whole[0] == pytest.approx(-w1.mean()) and whole[1] == pytest.approx(-w3.mean(), rel=1e-6)
    assert whole[2] == pytest.approx(-(numpy.logaddexp.reduce(w3, axis=1) - numpy.log(3)).mean(), rel=1e-6)
    more = evaluate.bounds(model, x, 3, 9, numpy.random.RandomState(5))  # n_iwae beyond the data: all of it
    assert numpy.isfinite(more).all()


def test_train_missing_trains_only_the_absent_models(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(evaluate.subprocess, 'run', lambda argv, **kwargs: calls.append((argv, kwargs)))
    (tmp_path / 'size14').mkdir()
    (tmp_path / 'size14' / 'model.npz').write_bytes(b'')
    args = evaluate.parse_args(['--runs', str(tmp_path), '--train-missing', '-e', '4', '-g', '-1'])
    evaluate.train_missing(args)
    out = str(tmp_path / 'size7')
    assert calls == [([sys.executable, os.path.join(ROOT, 'train.py'), '-g', '-1', '-e', '4', '--train-size', '7', '--grid', 'center',
                       '--resolution', '28', '--no-progress', '-r', 'auto', '-o', out], {'check': True})]
    assert capsys.readouterr().out == f'training the 7x7 model (4 epochs) into {out}\n'


def test_train_missing_announces_each_model_before_its_training_writes(monkeypatch, tmp_path):
    class Pipe(io.StringIO):  # what a reader of a block-buffered stdout (a pipe, a log file) has been sent: flushed text
        sent = ''

        def flush(self):
            self.sent = self.getvalue()
    pipe = Pipe()
    monkeypatch.setattr(sys, 'stdout', pipe)
    sent_before_training = []
    monkeypatch.setattr(evaluate.subprocess, 'run', lambda argv, **kwargs: sent_before_training.append(pipe.sent))
    evaluate.train_missing(evaluate.parse_args(['--runs', str(tmp_path), '--train-missing', '-e', '4', '-g', '-1']))
    announce = lambda size: f'training the {size}x{size} model (4 epochs) into {tmp_path / f"size{size}"}\n'
    assert sent_before_training == [announce(14), announce(14) + announce(7)]


def test_figure_rows_are_truth_input_interpolation_model():
    from svae import figures
    truth = numpy.random.RandomState(0).uniform(size=(9, 28, 28)).astype(numpy.float32)
    low2, low4 = data.downsample(truth[:, None], 14)[:, 0], data.downsample(truth[:, None], 7)[:, 0]
    cases = [(low2, truth * 0.5, truth * 0.25), (low4, truth * 0.75, 1 - truth)]
    image = evaluate.figure(truth, cases)
    assert image.dtype == numpy.float32
    cell = 28 + figures.BORDER
    assert image.shape == (2 * (4 * cell - figures.BORDER) + 3 * figures.BORDER, 8 * cell - figures.BORDER)
    top = 4 * cell - figures.BORDER + 3 * figures.BORDER  # where the x4 panel starts
    numpy.testing.assert_array_equal(image[:28, cell:cell + 28], truth[1])
    numpy.testing.assert_array_equal(image[cell:cell + 28, :28], figures.upscale_nearest(low2[:1], 28, 28)[0])
    numpy.testing.assert_array_equal(image[2 * cell:2 * cell + 28, :28], truth[0] * 0.5)
    numpy.testing.assert_array_equal(image[3 * cell:3 * cell + 28, 7 * cell:], truth[7] * 0.25)
    numpy.testing.assert_array_equal(image[top + cell:top + cell + 28, :28], figures.upscale_nearest(low4[:1], 28, 28)[0])
    numpy.testing.assert_array_equal(image[top + 3 * cell:top + 3 * cell + 28, :28], 1 - truth[0])
    assert (image[4 * cell - figures.BORDER:top] == 1.0).all()  # a white gap between the panels


def test_evaluation_in_process_reports_the_metrics_of_its_rows(tiny_models, tmp_path, capsys, monkeypatch):
    import svae  # noqa: F401
    from model_files import save_model
    runs = tmp_path / 'runs'
    for factor, size in ((2, 14), (4, 7)):
        (runs / f'size{size}').mkdir(parents=True)
        save_model(tiny_models[factor], str(runs / f'size{size}' / 'model.npz'))
    save_model(tiny_models[28], str(tmp_path / 'm28.npz'))
    argv = ['-m', str(tmp_path / 'm28.npz'), '--runs', str(runs), '-n', '6', '--iwae-k', '2', '--iwae-images', '3',
            '-o', str(tmp_path / 'sr.md'), '--figure', str(tmp_path / 'sr.png'), '--seed', '4']
    monkeypatch.setattr(sys, 'argv', ['evaluate.py'] + argv)
    evaluate.main()  # the command line recorded is the one given
    report = (tmp_path / 'sr.md').read_text()
    assert capsys.readouterr().out == report + '\n' + f'wrote {tmp_path / "sr.md"} and {tmp_path / "sr.png"}\n'
    lines = report.split('\n')
    assert lines[0] == '# Is f(u, v, z) better than interpolation?'
    assert lines[2].startswith('Produced by `python experiments/evaluate.py ' + ' '.join(argv) + '` in ')
    assert f' s on CPU ({os.cpu_count()} cores), commit ' in lines[2]
    assert 0 <= int(lines[2].split('` in ')[1].split(' s on ')[0]) < 600  # the run's own seconds
    assert lines[3].startswith('Test digits: 6. ')
    assert lines[3].endswith('probabilities clipped to [0.001, 0.999].')  # as measure.bernoulli_nll clips them
    assert measure.bernoulli_nll(numpy.array([0.0, 1.0]), numpy.array([1.0, 0.0])) == pytest.approx(-numpy.log(0.001))
    truth = data.load_mnist('test')[0][:6, 0]
    rows, _ = evaluate.superres_rows(tiny_models[2], truth, 2)
    rows['(d) model trained at 28x28, rendered at 28x28'] = rendering.model_render(tiny_models[28], truth[:, None], 28)
    table = lines[lines.index('## x2 (14x14 -> 28x28)') + 4:]
    for (name, p), line in zip(rows.items(), table):
        assert line == f'| {name} | {measure.psnr(p, truth):.2f} | {measure.bernoulli_nll(p, truth):.4f} |'
    rng = numpy.random.RandomState(4)
    binary = (truth > rng.uniform(size=truth.shape)).astype(numpy.float32)
    grey = evaluate.bounds(tiny_models[28], truth[:, None], 2, 3, rng)
    binarised = evaluate.bounds(tiny_models[28], binary[:, None], 2, 3, rng)
    assert f'| grey levels (the training target) | {grey[0]:.2f} | {grey[1]:.2f} | {grey[2]:.2f} |' in lines
    assert (f'| binarised, fixed seed (x > uniform) | {binarised[0]:.2f} | {binarised[1]:.2f} | {binarised[2]:.2f} |'
            in lines)
    assert '| test set | -ELBO (all, 1 sample) | -ELBO (first 3) | -log p(x) bound, IWAE k=2 (first 3) |' in lines
    import matplotlib.image
    # fewer digits than the figure's 8 columns: 6 columns, each still a truth/input/bicubic/model column
    assert matplotlib.image.imread(str(tmp_path / 'sr.png')).shape[:2] == (2 * (4 * 28 + 3 * 2) + 6, 6 * 28 + 5 * 2)


def test_missing_model_message_suggests_train_missing_only_without_it(monkeypatch, tmp_path, capsys):
    missing = str(tmp_path / 'size14' / 'model.npz')
    argv = ['--runs', str(tmp_path), '-o', str(tmp_path / 'a.md'), '--figure', str(tmp_path / 'a.png')]
    with pytest.raises(SystemExit) as info:
        evaluate.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and says(err, 'evaluate.py: error: ', missing, '(or run with --train-missing)')
    trained = []
    monkeypatch.setattr(evaluate, 'train_missing', lambda args: trained.append((args.runs, args.epoch)))
    with pytest.raises(SystemExit):
        evaluate.main(argv + ['--train-missing', '-e', '3'])
    err = capsys.readouterr().err
    assert trained == [(str(tmp_path), 3)]
    assert says(err, missing) and '--train-missing' not in err  # nothing appended
    assert not (tmp_path / 'a.md').exists()


def test_evaluate_defaults():
    args = evaluate.parse_args([])
    from svae import cli
    assert (args.model, args.runs, args.out, args.figure) == (
        cli.PRETRAINED, os.path.join(ROOT, 'results', 'superres'),
        os.path.join('result', 'superres.md'), os.path.join('result', 'superres.png'))
    assert (args.epoch, args.iwae_k, args.iwae_images, args.n, args.seed, args.gpu, args.train_missing) == (
        10, 100, 500, 10000, 0, -1, False)


def test_a_gpu_run_is_labelled_with_its_gpu(tiny_models, tmp_path, monkeypatch, capsys):
    import svae  # noqa: F401
    import chainer
    from svae import cli
    from model_files import save_model
    for factor, size in ((2, 14), (4, 7)):
        (tmp_path / f'size{size}').mkdir()
        save_model(tiny_models[factor], str(tmp_path / f'size{size}' / 'model.npz'))
    save_model(tiny_models[28], str(tmp_path / 'm28.npz'))
    monkeypatch.setattr(cli, 'device_for', lambda gpu: chainer.get_device('@numpy'))  # stands in for GPU 0
    argv = ['-m', str(tmp_path / 'm28.npz'), '--runs', str(tmp_path), '-n', '2', '--iwae-k', '2', '--iwae-images', '2',
            '-o', str(tmp_path / 'sr.md'), '--figure', str(tmp_path / 'sr.png'), '-g', '0']
    evaluate.main(argv)
    produced = (tmp_path / 'sr.md').read_text().split('\n')[2]
    assert produced.startswith('Produced by `python experiments/evaluate.py ' + ' '.join(argv) + '` in ')  # as given, not sys.argv
    assert ' s on GPU 0, commit ' in produced


def test_a_failed_write_of_the_report_is_one_line_with_status_1(tiny_models, tmp_path, monkeypatch, capsys):
    from model_files import save_model
    from svae.files import WriteError
    for factor, size in ((2, 14), (4, 7)):
        (tmp_path / f'size{size}').mkdir()
        save_model(tiny_models[factor], str(tmp_path / f'size{size}' / 'model.npz'))
    save_model(tiny_models[28], str(tmp_path / 'm28.npz'))

    def full_disk(path, text):
        raise WriteError(f'cannot write {path}: No space left on device')
    monkeypatch.setattr(evaluate, 'write_text', full_disk)
    with pytest.raises(SystemExit) as info:
        evaluate.main(['-m', str(tmp_path / 'm28.npz'), '--runs', str(tmp_path), '-n', '2', '--iwae-k', '2',
                       '--iwae-images', '2', '-o', str(tmp_path / 'sr.md'), '--figure', str(tmp_path / 'sr.png')])
    assert info.value.code == 1
    assert says(capsys.readouterr().err, 'evaluate.py: error: ', tmp_path / 'sr.md', 'No space left on device')
    assert not (tmp_path / 'sr.png').exists()


def test_the_report_names_the_evaluated_models_latent_size(tiny_models, tmp_path):
    """A generated report states what was measured for the model evaluated, not a fixed sentence."""
    from model_files import save_model
    for factor, size in ((2, 14), (4, 7)):
        (tmp_path / f'size{size}').mkdir()
        save_model(tiny_models[factor], str(tmp_path / f'size{size}' / 'model.npz'))
    save_model(tiny_models[28], str(tmp_path / 'm28.npz'))
    evaluate.main(['-m', str(tmp_path / 'm28.npz'), '--runs', str(tmp_path), '-n', '2', '--iwae-k', '2',
                   '--iwae-images', '2', '-o', str(tmp_path / 'sr.md'), '--figure', str(tmp_path / 'sr.png')])
    report = (tmp_path / 'sr.md').read_text()
    assert f'this model has {tiny_models[28].n_latent} latent units' in report and '8 latent units' not in report
