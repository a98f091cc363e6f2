"""The article's published figures as shipped in data/article/, and compare_article.py beside them."""
import os

import numpy
import pytest
from PIL import Image

import svae
import chainer

import compare_article
from svae import data
from svae import figures
from model import latent_means, SamplingVAE
from model_files import save_model
from rendering import render


@pytest.mark.parametrize('epoch', [1, 50])
def test_the_published_originals_are_the_named_test_digits_at_the_centres_of_their_6x6_blocks(epoch):
    """(Some block edges of the published originals are blended by the resampler that drew them: 2.3% of
    the pixels differ from an exact 6x nearest upscale, the block centres none.)"""
    published = numpy.asarray(Image.open(f'{data.ARTICLE_DIR}/epoch_{epoch}_original.png').convert('L'))
    cells = published.reshape(4, 168, 4, 168).transpose(0, 2, 1, 3).reshape(16, 168, 168)
    digits = data.load_mnist('test')[0][data.ARTICLE_DIGITS[epoch]][:, 0]
    numpy.testing.assert_array_equal(cells[:, 3::6, 3::6], numpy.round(digits * 255))


def test_article_figure_cuts_the_published_grid_row_major():
    cells = data.article_figure(50)
    grid = numpy.asarray(Image.open(f'{data.ARTICLE_DIR}/epoch_50.png').convert('L')) / 255.0
    assert cells.shape == (16, 168, 168) and cells.dtype == numpy.float32  # as the renders it is compared with
    numpy.testing.assert_allclose(cells[6], grid[168:336, 336:504], atol=1e-6)  # row 2, column 3


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    numpy.random.seed(3)
    path = str(tmp_path_factory.mktemp('model') / 'model.npz')
    save_model(SamplingVAE(4), path)
    return path


@pytest.mark.slow
def test_compare_prints_psnrs_by_hand_and_draws_truth_article_ours(model_file, tmp_path, capsys):
    from model_files import load_model
    out = str(tmp_path / 'cmp.png')
    compare_article.main(['-m', model_file, '--epoch', '1', '--seeds', '4', '-o', out])
    lines = capsys.readouterr().out.splitlines()
    model = load_model(model_file)
    digits = data.load_mnist('test')[0][data.ARTICLE_DIGITS[1]]
    with chainer.using_config('train', False):
        ours = render(model.decoder, latent_means(model, digits, seed=4), 168, 168)[:, 0]
    ours = numpy.round(ours * 255) / 255
    truth = numpy.repeat(numpy.repeat(digits[:, 0], 6, axis=1), 6, axis=2)
    article = data.article_figure(1)

    def db(a, b):
        return numpy.mean([10 * numpy.log10(1 / ((x - y) ** 2).mean()) for x, y in zip(a, b)])
    assert lines[-1] == f'written {out} (true digits | the article\'s renders | ours)'
    mean = lines[-2].split()
    assert mean[0] == 'mean' and [float(v) for v in mean[1:]] == pytest.approx(
        [db(article, truth), db(ours, truth), db(ours, article)], abs=0.006)
    digit_6 = lines[2 + 5].split()  # the sixth digit's row
    assert digit_6[:2] == ['6', '425'] and float(digit_6[3]) == pytest.approx(db(ours[5:6], truth[5:6]), abs=0.006)
    picture = numpy.asarray(Image.open(out).convert('L')) / 255.0
    gap = figures.BORDER * 4
    assert picture.shape == (672, 3 * 672 + 2 * gap)
    numpy.testing.assert_allclose(picture[168:336, 336:504], truth[6], atol=0.5 / 255)
    numpy.testing.assert_allclose(picture[168:336, 672 + gap + 336:672 + gap + 504], article[6], atol=0.5 / 255)
    numpy.testing.assert_allclose(picture[168:336, 2 * (672 + gap) + 336:2 * (672 + gap) + 504], ours[6], atol=0.5 / 255)


@pytest.mark.slow
def test_compare_grey_encoding_and_seeds(model_file, tmp_path, capsys):
    from model_files import load_model
    from svae.measure import psnr

    def mean_row(*flags):
        compare_article.main(['-m', model_file, '-o', str(tmp_path / 'c.png'), *flags])
        lines = capsys.readouterr().out.splitlines()
        return next(line for line in lines if line.split()[:1] == ['mean']), lines
    default, lines = mean_row()  # the article's protocol: seeds 0-4, the table of the first
    assert mean_row('--seeds', '0')[0] == default  # seeded: the same again
    assert mean_row('--seeds', '1')[0] != default
    digits = data.load_mnist('test')[0][data.ARTICLE_DIGITS[50]]
    truth = numpy.repeat(numpy.repeat(digits[:, 0], 6, axis=1), 6, axis=2)
    model = load_model(model_file)
    ours = [psnr(compare_article.our_renders(model, digits, 'binary', seed), truth) for seed in range(5)]
    summary = next(line for line in lines if line.startswith('over the binarisation seeds 0 1 2 3 4'))
    assert f'ours vs true {numpy.mean(ours):.2f} ({min(ours):.2f}-{max(ours):.2f})' in summary
    assert mean_row('--encoding', 'grey')[0] != default


@pytest.mark.slow
def test_compare_default_output_is_renders_model_in_the_current_directory(model_file, tmp_path, monkeypatch, capsys):
    """renders/MODEL/, as render.py's: the same line for another model keeps the first picture."""
    monkeypatch.chdir(tmp_path)
    other = tmp_path / 'other.npz'
    os.symlink(model_file, other)
    for model, folder in ((model_file, os.path.basename(os.path.dirname(model_file))), (str(other), 'other')):
        compare_article.main(['-m', model, '--epoch', '50', '--seeds', '0'])
        out = os.path.join('renders', folder, 'compare_epoch50.png')
        assert capsys.readouterr().out.splitlines()[-1].startswith(f'written {out} ')
        assert (tmp_path / out).is_file()


@pytest.mark.parametrize('argv,message', [
    (['--epoch', '2'], "argument --epoch/-e: invalid choice: 2 (choose from 1, 50)"),
    (['-m', 'nowhere.npz', '-o', 'x.png'], 'model file nowhere.npz does not exist'),
    (['--seeds', '-1'], "argument --seeds: -1 must be a non-negative integer"),
    (['--encoding', 'grey', '--seeds', '1'], '--seeds applies to --encoding binary only'),
])
def test_compare_mistakes_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        compare_article.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count('\n') == 1 and message in err


def test_compare_refuses_a_model_of_other_digits(tmp_path, capsys):
    path = str(tmp_path / 'small.npz')
    save_model(SamplingVAE(2, n_in=49), path)
    with pytest.raises(SystemExit):
        compare_article.main(['-m', path, '-o', str(tmp_path / 'c.png')])
    assert "trained on 7x7 digits; the article's figure shows 28x28 digits" in capsys.readouterr().err


def test_validation_loss_is_the_mean_of_batch_means_from_the_given_encoder_input():
    numpy.random.seed(0)
    model = SamplingVAE(3)
    x = numpy.random.RandomState(1).uniform(size=(7, 1, 28, 28)).astype(numpy.float32)
    seen = numpy.random.RandomState(2).uniform(size=x.shape).astype(numpy.float32)
    batches = []
    for lo, hi in ((0, 3), (3, 6), (6, 7)):  # batches of 3: the last one holds a single image
        with chainer.using_config('train', False):
            mu, ln_var = (a.array.astype(numpy.float64) for a in model.encode(seen[lo:hi]))
            logits = model.decoder(mu.astype(numpy.float32), x[lo:hi].shape).array.astype(numpy.float64)
        p, xd = 1 / (1 + numpy.exp(-logits)), x[lo:hi].astype(numpy.float64)
        rec = -(xd * numpy.log(p) + (1 - xd) * numpy.log(1 - p)).sum() / (hi - lo)
        kl = 0.5 * (mu ** 2 + numpy.exp(ln_var) - ln_var - 1).sum() / (hi - lo)
        batches.append([rec / 784, kl / 3, rec + kl])
    got = compare_article.validation_loss(model, x, seen, batchsize=3)
    numpy.testing.assert_allclose(got, numpy.mean(batches, axis=0), rtol=1e-4)
    assert not numpy.allclose(compare_article.validation_loss(model, x, x, batchsize=3), got, rtol=1e-3)


@pytest.mark.slow
def test_compare_validation_line(model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare_article, 'validation_loss', lambda model, x, seen: (0.1, 2.0, 105.0) if len(x) == 10000 else None)
    compare_article.main(['-m', model_file, '-o', str(tmp_path / 'c.png'), '--validation', '--seeds', '0'])
    last = capsys.readouterr().out.splitlines()[-1]
    assert 'x_loss 0.100000' in last and 'z_loss 2.000000' in last and 'loss 105.000 (nats per image)' in last
