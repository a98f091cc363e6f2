"""Model files of earlier versions (f fed (column, row)): refused in one line, converted exactly."""
import os

import numpy
import pytest

from svae import compat  # noqa: F401

import convert_model
import render
import train
from model import COORDINATES, ModelFileError, SamplingVAE, load_model, save_model
from test_article_convention import mlp


def old_format_file(tmp_path, seed=0):
    """A model file as earlier versions wrote it: no coordinate order, linear1 taking (column, row, z)."""
    numpy.random.seed(seed)
    new = str(tmp_path / 'new.npz')
    save_model(SamplingVAE(3), new)
    with numpy.load(new) as npz:
        arrays = {key: npz[key] for key in npz.files if key != 'coordinates'}
    arrays['decoder/linear1/W'] = arrays['decoder/linear1/W'][:, [1, 0] + list(range(2, 5))]
    old = str(tmp_path / 'old.npz')
    numpy.savez(old, **arrays)
    return old, arrays


def test_old_file_is_refused_with_the_conversion_command(tmp_path, capsys):
    old, _ = old_format_file(tmp_path)
    with pytest.raises(ModelFileError, match='earlier version.*python tools/convert_model.py'):
        load_model(old)
    with pytest.raises(SystemExit) as exit_info:
        render.main(['-m', old, '-o', str(tmp_path / 'r.png')])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1 and 'convert_model.py' in err
    assert not (tmp_path / 'r.png').exists()


def test_unknown_coordinate_order_is_refused(tmp_path):
    old, arrays = old_format_file(tmp_path)
    numpy.savez(old, **arrays, coordinates=numpy.array('u=column,v=row'))
    with pytest.raises(ModelFileError, match='unknown coordinate order'):
        load_model(old)


def test_conversion_draws_the_same_picture_in_the_articles_order(tmp_path):
    """The old model's picture, pixel (i, j) = f_old(x_j, y_i, z), is what the converted model draws."""
    old, arrays = old_format_file(tmp_path)
    converted = str(tmp_path / 'converted.npz')
    convert_model.main([old, converted])
    model = load_model(converted)
    old_weights = [(arrays[f'decoder/linear{k}/W'].astype(numpy.float64), arrays[f'decoder/linear{k}/b'].astype(numpy.float64))
                   for k in range(1, 5)]
    z = numpy.random.RandomState(1).randn(1, 3)
    height, width = 4, 7
    rows, cols = numpy.linspace(-1, 1, height), numpy.linspace(-1, 1, width)
    old_picture = numpy.array([[mlp(old_weights, [cols[j], rows[i], *z[0]]) for j in range(width)] for i in range(height)])
    got = model.decoder(z.astype(numpy.float32), (1, 1, height, width)).array[0, 0]
    numpy.testing.assert_allclose(got, old_picture, rtol=1e-5, atol=1e-5)
    with numpy.load(converted) as npz:
        assert str(npz['coordinates']) == COORDINATES
        for key, value in arrays.items():
            if key != 'decoder/linear1/W':
                numpy.testing.assert_array_equal(npz[key], value)


def test_converter_refuses_new_files_and_never_overwrites_another_file(tmp_path, capsys):
    old, _ = old_format_file(tmp_path)
    new = str(tmp_path / 'new.npz')  # written in the article's order by old_format_file
    for argv, message in (([new, str(tmp_path / 'x.npz')], 'already records its coordinate order'),
                          ([old, new], 'exists'),
                          ([str(tmp_path / 'missing.npz'), str(tmp_path / 'x.npz')], 'does not exist')):
        before = open(new, 'rb').read()
        with pytest.raises(SystemExit) as exit_info:
            convert_model.main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count('\n') == 1 and message in err, err
        assert open(new, 'rb').read() == before
    convert_model.main([old, old])  # the source named twice: replaced in place
    assert load_model(old).n_latent == 3


def test_old_snapshot_is_refused(tmp_path, capsys):
    snapshot = str(tmp_path / 'snapshot_epoch_1')
    numpy.savez(snapshot, **{'updater/model:main/decoder/linear1/W': numpy.zeros((256, 10), numpy.float32)})
    os.rename(snapshot + '.npz', snapshot)
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--test', '-o', str(tmp_path), '-r', snapshot, '--no-progress'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1 and 'earlier version' in err, err
