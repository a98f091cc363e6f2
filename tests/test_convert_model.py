"""Snapshots of the article's own code: converted to model files with every parameter unchanged, refused by
the other scripts with the command that converts them."""
import os

import numpy
import pytest

import svae

import convert_model
import render
import train
from affine_model import AffineSamplingVAE, warm_up_factor
from model_files import load_affine_model
from model import SamplingVAE
from model_files import load_model

ARTICLE_NAMES = {'encoder1/': 'e1/', 'encoder2/': 'e2/', 'encoder_mu/': 'e3a/', 'encoder_ln_var/': 'e3b/'}


def article_snapshot(tmp_path, model, epoch=3):
    """A snapshot as the article's train.py writes it: the model under updater/model:main/ with the article's
    names, no coordinate order or warm-up factor, beside the optimizer's and iterator's state."""
    arrays = {}
    for name, param in model.namedparams():
        name = name.lstrip('/') + ''
        for ours, article in ARTICLE_NAMES.items():
            name = article + name[len(ours):] if name.startswith(ours) else name
        arrays['updater/model:main/' + name] = param.array
        arrays['updater/optimizer:main/' + name + '/m'] = numpy.zeros_like(param.array)
    arrays['updater/iterator:main/epoch'] = numpy.array(epoch)
    arrays['updater/iteration'] = numpy.array(epoch * 938)
    path = str(tmp_path / f'snapshot_epoch_{epoch}')
    with open(path, 'wb') as f:
        numpy.savez(f, **arrays)
    return path


def assert_same_parameters(got, expected):
    for (name, a), (other, b) in zip(sorted(got.namedparams()), sorted(expected.namedparams())):
        assert name == other
        numpy.testing.assert_array_equal(a.array, b.array, err_msg=name)


def test_the_articles_sampling6x_snapshot_becomes_a_model_file_of_the_same_parameters(tmp_path, capsys):
    numpy.random.seed(0)
    original = SamplingVAE(8)
    snapshot = article_snapshot(tmp_path, original)
    target = str(tmp_path / 'converted.npz')
    convert_model.main([snapshot, target])
    assert 'sampling6x' in capsys.readouterr().out
    assert_same_parameters(load_model(target), original)


@pytest.mark.parametrize('epoch', [2, 9])
def test_the_articles_affine3x_snapshot_keeps_the_warm_up_its_last_epoch_trained_with(epoch, tmp_path, capsys):
    numpy.random.seed(0)
    original = AffineSamplingVAE(8)
    original.e5_affine.W.array[...] = numpy.random.randn(*original.e5_affine.W.shape)
    target = str(tmp_path / 'converted.npz')
    convert_model.main([article_snapshot(tmp_path, original, epoch), target])
    converted = load_affine_model(target)
    assert_same_parameters(converted, original)
    assert converted.warm_up == warm_up_factor(epoch - 1)


def test_the_scripts_refuse_the_articles_snapshot_naming_the_converter(tmp_path, capsys):
    numpy.random.seed(0)
    snapshot = article_snapshot(tmp_path, SamplingVAE(8))
    for main, argv in ((render.main, ['-m', snapshot, '-o', str(tmp_path / 'r.png')]),
                       (train.main, ['--test', '-o', str(tmp_path / 'run'), '-r', snapshot, '--no-progress'])):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count('\n') == 1 and f'tools/convert_model.py {snapshot}' in err, err
    assert sorted(os.listdir(tmp_path)) == ['snapshot_epoch_3']


def test_the_converter_refuses_other_files_and_never_replaces_one(tmp_path, capsys):
    numpy.random.seed(0)
    snapshot = article_snapshot(tmp_path, SamplingVAE(8))
    ours = str(tmp_path / 'ours_snapshot')
    with open(ours, 'wb') as f:
        numpy.savez(f, **{'updater/model:main/encoder1/W': numpy.zeros((256, 784), numpy.float32)})
    existing = tmp_path / 'existing.npz'
    existing.write_bytes(b'a file of the user\'s')
    for argv, gist in (([ours, str(tmp_path / 'x.npz')], 'model_from_snapshot.py'),
                       ([snapshot, str(existing)], 'exists'),
                       ([snapshot, str(tmp_path / 'x.png')], '.npz'),
                       ([str(tmp_path / 'missing'), str(tmp_path / 'x.npz')], 'does not exist')):
        with pytest.raises(SystemExit) as exit_info:
            convert_model.main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count('\n') == 1 and gist in err, err
    assert existing.read_bytes() == b'a file of the user\'s' and not (tmp_path / 'x.npz').exists()
