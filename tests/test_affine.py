"""affine3x (affine_model.py): the pose map by hand, its start and warm-up, its inputs, gradients, model files,
and a tiny run trained and rendered."""
import math
import os

import numpy
import pytest

import svae
import chainer
from chainer import gradient_check

import affine_model
import render
import train
from affine_model import AffineSamplingVAE, given_pose, map_points, pose_removed, warm_up_factor
from model_files import load_affine_model
from model import SamplingVAE
from model_files import ModelFileError, save_model


def numpy_mlp(decoder, h):
    for k in range(1, 5):
        layer = getattr(decoder, f'linear{k}')
        h = h @ layer.W.array.T.astype(numpy.float64) + layer.b.array
        if k < 4:
            h = numpy.maximum(h, 0)
    return h


def test_the_pose_maps_each_pixel_by_hand_on_a_non_square_grid():
    """Row i, column j of digit n is f at ((u_i, v_j) + (tx, ty)) @ [[s cos, s sin], [-s sin, s cos]]."""
    numpy.random.seed(0)
    decoder = affine_model.AffineSamplingDecoder(3)
    z = numpy.random.RandomState(1).randn(2, 3).astype(numpy.float32)
    raw = numpy.array([[0.3, 0.5, 0.2, -0.4], [-0.2, -1.1, -0.6, 0.1]], numpy.float32)  # log s, theta, tx, ty
    height, width = 5, 7
    with chainer.using_config('train', False):
        got = decoder(z, raw, (2, 1, height, width)).array
    for n in range(2):
        s, theta = math.exp(raw[n, 0]), raw[n, 1]
        tx, ty = math.tanh(raw[n, 2]), math.tanh(raw[n, 3])
        matrix = numpy.array([[s * math.cos(theta), s * math.sin(theta)], [-s * math.sin(theta), s * math.cos(theta)]])
        for i, u in enumerate(numpy.linspace(-1, 1, height)):
            for j, v in enumerate(numpy.linspace(-1, 1, width)):
                mapped = numpy.array([u + tx, v + ty]) @ matrix  # a row vector times the matrix
                expected = numpy_mlp(decoder, numpy.concatenate([mapped, z[n]])[None])[0, 0]
                assert got[n, 0, i, j] == pytest.approx(expected, rel=1e-4, abs=1e-5), (n, i, j)


def test_a_new_model_starts_at_the_identity_pose():
    numpy.random.seed(0)
    model = AffineSamplingVAE(3)
    x = numpy.random.RandomState(2).uniform(size=(3, 1, 28, 28)).astype(numpy.float32)
    model.warm_up = 1.0  # even at full strength: the zero-initialised head gives log s = theta = tx = ty = 0
    with chainer.using_config('train', False):
        mu, _, raw = model.encode(x)
        assert (raw.array == 0).all()
        uv = numpy.random.RandomState(3).uniform(-1, 1, size=(6, 2)).astype(numpy.float32)
        numpy.testing.assert_allclose(map_points(raw, uv).array, numpy.broadcast_to(uv, (3, 6, 2)), atol=1e-7)


def test_warm_up_after_each_epoch_and_its_effect():
    assert [warm_up_factor(e) for e in range(7)] == pytest.approx([0, 0.04, 0.16, 0.36, 0.64, 1, 1])
    numpy.random.seed(0)
    model = AffineSamplingVAE(2)
    model.e5_affine.W.array[:] = numpy.random.RandomState(4).randn(4, 49)
    x = numpy.random.RandomState(5).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', False):
        model.warm_up = 0.0
        assert (model.encode(x)[2].array == 0).all()  # the pose is off during the first epoch
        model.warm_up = 1.0
        full = model.encode(x)[2].array
        model.warm_up = 0.36
        numpy.testing.assert_allclose(model.encode(x)[2].array, 0.36 * full, rtol=1e-5)


def test_training_sees_the_mean_of_two_binarisations_and_evaluation_the_grey_digits(monkeypatch):
    grey = numpy.full((1, 1, 100, 100), 0.3, numpy.float32)
    seen = affine_model.two_sample_binarisation(grey, numpy.random.RandomState(0))
    assert set(numpy.unique(seen)) == {0.0, 0.5, 1.0}
    # two independent draws with P(1) = 0.3: P(0.5) = 2 * 0.3 * 0.7, P(1) = 0.09
    assert (seen == 0.5).mean() == pytest.approx(0.42, abs=0.02) and (seen == 1).mean() == pytest.approx(0.09, abs=0.01)
    numpy.random.seed(0)
    model = AffineSamplingVAE(2)
    inputs = []
    monkeypatch.setattr(model, 'encode', lambda x: inputs.append(x) or AffineSamplingVAE.encode(model, x))
    x = numpy.random.RandomState(6).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', False):
        model(x)
    numpy.testing.assert_array_equal(inputs[-1], x)
    numpy.random.seed(7)
    model(x)  # training
    numpy.random.seed(7)
    numpy.testing.assert_array_equal(inputs[-1], affine_model.two_sample_binarisation(x, numpy.random))


def test_objective_and_the_reported_pose():
    numpy.random.seed(0)
    model = AffineSamplingVAE(3)
    model.warm_up = 1.0
    model.e5_affine.W.array[:] = numpy.random.RandomState(8).randn(4, 49) * 0.3
    x = numpy.random.RandomState(9).uniform(size=(4, 1, 28, 28)).astype(numpy.float32)
    reporter, observation = chainer.Reporter(), {}
    reporter.add_observer('main', model)
    reporter.add_observers('main', model.namedlinks(skipself=True))
    with reporter.scope(observation), chainer.using_config('train', False):
        objective = model(x)
    assert float(objective.array) == pytest.approx(float(observation['main/loss'].array) / (3 * 784), rel=1e-6)
    assert float(observation['main/x_loss'].array) == pytest.approx(float(observation['main/rec'].array) / 784, rel=1e-6)
    with chainer.using_config('train', False):
        raw = model.encode(x)[2].array
    assert float(observation['main/decoder/scale'].array) == pytest.approx(numpy.exp(raw[:, 0]).mean(), rel=1e-5)
    assert float(observation['main/decoder/theta'].array) == pytest.approx(raw[:, 1].mean(), rel=1e-5)
    assert float(observation['main/decoder/tx'].array) == pytest.approx(numpy.tanh(raw[:, 2]).mean(), rel=1e-5)
    assert float(observation['main/decoder/ty'].array) == pytest.approx(numpy.tanh(raw[:, 3]).mean(), rel=1e-5)


def test_decoder_gradients_in_z_and_the_pose():
    with chainer.using_config('dtype', numpy.float64):
        numpy.random.seed(1)
        decoder = affine_model.AffineSamplingDecoder(2)
    z = numpy.random.RandomState(2).randn(2, 2)
    raw = numpy.random.RandomState(3).randn(2, 4) * 0.5
    gy = numpy.random.RandomState(4).randn(2, 1, 3, 4)
    gradient_check.check_backward(lambda z, raw: decoder(z, raw, (2, 1, 3, 4)), (z, raw), gy,
                                  params=[decoder.linear1.W], dtype=numpy.float64, atol=1e-5, rtol=1e-4)


def test_given_and_removed_poses():
    numpy.testing.assert_allclose(given_pose(2.0, 90, 0.5, -0.25),
                                  [[math.log(2), math.pi / 2, math.atanh(0.5), math.atanh(-0.25)]], rtol=1e-6)
    raw = numpy.array([[0.2, 1, 2, 3], [0.6, -1, 0, 1]], numpy.float32)
    numpy.testing.assert_allclose(pose_removed(raw), [[0.4, 0, 0, 0], [0.4, 0, 0, 0]], rtol=1e-6)


def test_affine3x_model_files_round_trip_and_an_article_model_file_is_refused(tmp_path):
    numpy.random.seed(0)
    model = AffineSamplingVAE(5)
    model.warm_up = 0.64
    model.e5_affine.b.array[:] = [0.1, 0.2, 0.3, 0.4]
    path = str(tmp_path / 'affine.npz')
    save_model(model, path)
    again = load_affine_model(path)
    assert again.n_latent == 5 and again.warm_up == 0.64
    for (name, a), (_, b) in zip(sorted(model.namedparams()), sorted(again.namedparams())):
        numpy.testing.assert_array_equal(a.array, b.array, err_msg=name)
    article = str(tmp_path / 'article.npz')
    save_model(SamplingVAE(2), article)
    with pytest.raises(ModelFileError, match='holds the sampling6x model'):
        load_affine_model(article)


@pytest.fixture(scope='module')
def affine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('affine')
    train.main(['--model', 'affine3x', '--test', '-e', '2', '-z', '3', '-b', '128', '--resolution', '12x9',
                '--no-progress', '-o', str(out)])
    return out


@pytest.mark.slow
def test_a_tiny_affine_run_writes_its_figure_log_and_model(affine_run, capsys):
    import json
    import matplotlib.image
    from svae import data, figures
    from rendering import render as render_points
    with open(affine_run / 'log') as f:
        log = json.load(f)
    assert [e['epoch'] for e in log] == [1, 2]
    assert {'main/decoder/scale', 'main/decoder/theta', 'main/decoder/tx', 'main/decoder/ty',
            'validation/main/x_loss', 'main/z_loss'} <= set(log[0])
    assert log[0]['main/decoder/scale'] == 1 and log[0]['main/decoder/theta'] == 0  # no pose in the first epoch
    model = load_affine_model(str(affine_run / 'model.npz'))
    assert model.warm_up == pytest.approx(warm_up_factor(1))  # the factor epoch 2 trained and was drawn with
    with numpy.load(str(affine_run / 'snapshot_epoch_2')) as snapshot:  # and the one epoch 3 resumes with
        assert float(snapshot['updater/model:main/warm_up']) == pytest.approx(warm_up_factor(2))
    digits = data.load_mnist('test')[0][train.FIGURE_DIGITS]
    z, raw = affine_model.latents_and_poses(model, digits)
    posed = render_points(model.decoder, z, 9, 12, pose=raw)[:, 0]
    normalised = render_points(model.decoder, z, 9, 12, pose=pose_removed(raw))[:, 0]
    expected = figures.to_rgb(figures.article_layout(digits[:, 0], posed, normalised))
    got = (matplotlib.image.imread(str(affine_run / 'figures' / 'epoch_002.png'))[:, :, :3] * 255).round()
    assert got.shape == (3 * 4 * 9, 4 * 12, 3) and numpy.abs(got - expected).max() <= 1
    capsys.readouterr()


def test_resume_refuses_a_snapshot_of_the_other_model(affine_run, capsys):
    with pytest.raises(SystemExit) as info:
        train.main(['--test', '-e', '3', '-z', '3', '-o', str(affine_run), '-r', 'auto', '--no-progress'])
    err = capsys.readouterr().err
    assert info.value.code == 2 and 'is of the affine3x model, this run trains sampling6x (--model affine3x resumes it)' in err


def test_render_draws_an_affine_model_with_its_pose_without_and_with_a_given_one(affine_run, tmp_path, capsys):
    from rendering import render as render_points
    from svae import data
    model = load_affine_model(str(affine_run / 'model.npz'))
    model.e5_affine.b.array[:] = [0.2, 0.6, 0.3, -0.2]  # a pose that differs from the identity
    path = str(tmp_path / 'posed.npz')
    save_model(model, path)
    digits = data.load_mnist('test')[0][:2]
    z, raw = affine_model.latents_and_poses(model, digits)
    for flag, pose in (('encoded', raw), ('removed', pose_removed(raw)), ('1.5,30,0.2,-0.1', numpy.repeat(given_pose(1.5, 30, 0.2, -0.1), 2, 0))):
        out = str(tmp_path / f'{flag}.png')
        render.main(['-m', path, '-n', '2', '--resolution', '10x7', '--pose', flag, '-o', out])
        expected = render_points(model.decoder, z, 7, 10, pose=pose)[:, 0]
        import matplotlib.image
        got = matplotlib.image.imread(out)[..., 0]
        right = got[:, -(2 * 10 + 2):]  # the renders: the right half of originals | renders
        numpy.testing.assert_allclose(right[:7, :10], expected[0], atol=1 / 255 + 1e-6)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        render.main(['--pose', 'removed', '-n', '1', '-o', str(tmp_path / 'x.png')])  # the article's model has no pose
    assert '--pose applies to affine3x models only' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        render.main(['-m', path, '--decoder', 'fast', '-n', '1', '-o', str(tmp_path / 'x.png')])
    assert "--decoder applies to the article's model only" in capsys.readouterr().err


def test_poses_summarises_the_test_digits_poses_by_hand(tmp_path, capsys):
    import poses
    from svae import data
    numpy.random.seed(0)
    model = AffineSamplingVAE(2)
    model.warm_up = 1.0
    model.e5_affine.W.array[:] = numpy.random.RandomState(10).randn(4, 49) * 0.05
    model.e5_affine.b.array[:] = [0.1, 0.3, -0.2, 0.4]
    path = str(tmp_path / 'affine.npz')
    save_model(model, path)
    table, figure = tmp_path / 'poses.md', tmp_path / 'poses.png'
    argv = ['-m', path, '--resolution', '14', '-o', str(table), '--figure', str(figure)]
    poses.main(argv)
    lines = table.read_text().splitlines()
    assert lines[2].startswith('Produced by `python experiments/poses.py ' + ' '.join(argv) + '`, commit ')
    _, raw = affine_model.latents_and_poses(model, data.load_mnist('test')[0])
    rotation = next(line for line in lines if line.startswith('| rotation (degrees) |')).split(' | ')
    degrees = numpy.degrees(raw[:, 1])
    assert float(rotation[1]) == pytest.approx(degrees.mean(), abs=1e-3)
    assert float(rotation[2]) == pytest.approx(degrees.std(), abs=1e-3)
    assert float(rotation[5]) == pytest.approx(numpy.median(degrees), abs=1e-3)
    scale = next(line for line in lines if line.startswith('| scale s |')).split(' | ')
    assert float(scale[1]) == pytest.approx(numpy.exp(raw[:, 0]).mean(), abs=1e-3)
    chosen = poses.most_rotated(raw)
    assert raw[chosen[0], 1] == raw[:, 1].min() and raw[chosen[-8], 1] == raw[:, 1].max()
    import matplotlib.image
    assert matplotlib.image.imread(str(figure)).shape[:2] == (3 * 14 + 2 * 2, 16 * 14 + 15 * 2)
    capsys.readouterr()
