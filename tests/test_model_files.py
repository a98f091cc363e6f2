"""Model files: every malformed field refused with its own message, absent optional fields defaulted."""
import os

import numpy
import pytest

import svae

from model import COORDINATES, SamplingVAE
from model_files import load_model, ModelFileError, save_model


@pytest.fixture(scope='module')
def arrays(tmp_path_factory):
    numpy.random.seed(0)
    path = str(tmp_path_factory.mktemp('m') / 'good.npz')
    save_model(SamplingVAE(3, n_in=196, centers=True), path)
    with numpy.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def write(tmp_path, arrays, **changes):
    path = str(tmp_path / 'model.npz')
    numpy.savez(path, **{k: v for k, v in dict(arrays, **changes).items() if v is not None})
    return path


LATENT = 'does not record its latent size'
INPUT = 'has a malformed input size or grid flag'
SETTING = 'has a malformed footprint or free-bits setting'
MALFORMED = [
    ({'n_latent': numpy.array(3.0)}, LATENT), ({'n_latent': numpy.array([3])}, LATENT), ({'n_latent': None}, LATENT),
    ({'n_in': numpy.array(195)}, INPUT), ({'n_in': numpy.array(196.0)}, INPUT), ({'n_in': numpy.array([196])}, INPUT),
    ({'centers': numpy.array(1)}, INPUT),
    ({'footprint': numpy.array(0)}, SETTING), ({'footprint': numpy.array(2.0)}, SETTING),
    ({'footprint': numpy.array([2])}, SETTING), ({'footprint': numpy.array(2), 'centers': numpy.array(False)}, SETTING),
    ({'free_bits': numpy.array(-1.0)}, SETTING), ({'free_bits': numpy.array(1)}, SETTING),
    ({'free_bits': numpy.array([0.5])}, SETTING), ({'free_bits': numpy.array(numpy.nan)}, SETTING),
    ({'coordinates': numpy.array('u=column,v=row')}, 'records an unknown coordinate order'),
    ({'coordinates': numpy.array([COORDINATES])}, 'records an unknown coordinate order'),
    ({'coordinates': numpy.array(1)}, 'records an unknown coordinate order'),
    ({'model': numpy.array('sampling7x')}, "records an unknown model 'sampling7x'"),
    ({'model': numpy.array(['sampling6x'])}, "records an unknown model ['sampling6x']"),
]


@pytest.mark.parametrize('changes,message', MALFORMED)
def test_malformed_fields_are_refused(arrays, tmp_path, changes, message):
    path = write(tmp_path, arrays, **changes)
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    assert str(error.value).startswith(f'model file {path} {message}')  # some messages go on with what to do


def test_well_formed_settings_load(arrays, tmp_path):
    model = load_model(write(tmp_path, arrays, footprint=numpy.array(2), free_bits=numpy.array(0.25)))
    assert (model.footprint, model.free_bits, model.centers, model.n_in, model.n_latent) == (2, 0.25, True, 196, 3)


def test_absent_optional_fields_take_the_articles_values(arrays, tmp_path):
    """Files of earlier versions (this one's format minus n_in, centers, footprint, free bits) are 28x28
    linspace models trained the article's way."""
    numpy.random.seed(0)
    path = str(tmp_path / 'article.npz')
    save_model(SamplingVAE(3), path)
    with numpy.load(path) as npz:
        plain = {key: npz[key] for key in npz.files if key not in ('n_in', 'centers', 'footprint', 'free_bits')}
    model = load_model(write(tmp_path, plain))
    assert (model.n_in, model.centers, model.footprint, model.free_bits) == (784, False, 1, 0.0)


def says(error, *gists):
    """Whether the error's message is one line that says each of `gists` (the file first of all)."""
    message = str(error.value)
    return '\n' not in message and all(str(g) in message for g in gists)


def test_messages_name_the_file_and_what_to_do(arrays, tmp_path):
    snapshot = str(tmp_path / 'run' / 'snapshot_epoch_2')
    os.makedirs(os.path.dirname(snapshot))
    with open(snapshot, 'wb') as f:
        numpy.savez(f, **{'updater/model:main/' + k: v for k, v in arrays.items()})
    with pytest.raises(ModelFileError) as error:
        load_model(snapshot)
    assert says(error, snapshot, 'snapshot', str(tmp_path / 'run' / 'model.npz'))  # the file to use instead
    old = write(tmp_path, arrays, coordinates=None)
    with pytest.raises(ModelFileError) as error:
        load_model(old)
    assert says(error, old, '(column, row)')
    pickled = str(tmp_path / 'pickled.npz')
    numpy.savez(pickled, **arrays, extra=numpy.array([{'a': 1}], dtype=object))
    with pytest.raises(ModelFileError) as error:
        load_model(pickled)
    assert says(error, pickled, 'pickled')
    damaged = str(tmp_path / 'damaged.npz')  # a zip whose directory is intact and whose contents are not
    content = bytearray(open(old, 'rb').read())
    content[len(content) // 2:len(content) // 2 + 64] = bytes(64)
    open(damaged, 'wb').write(content)
    with pytest.raises(ModelFileError) as error:
        load_model(damaged)
    assert says(error, damaged, 'corrupt', 'BadZipFile')


def test_a_bad_array_header_and_wrong_keys_are_named(arrays, tmp_path):
    import zipfile
    bad_header = str(tmp_path / 'bad_header.npz')
    with zipfile.ZipFile(bad_header, 'w') as archive:
        archive.writestr('n_latent.npy', b'\x93NUMPY\x01\x00\x10\x00{"descr": 1}    \n')
    with pytest.raises(ModelFileError) as error:
        load_model(bad_header)
    assert str(error.value).startswith(f'model file {bad_header} is not a valid model file (Header does not contain')
    wrong_keys = write(tmp_path, {k: v for k, v in arrays.items() if k != 'decoder/linear4/b'})
    with pytest.raises(ModelFileError) as error:
        load_model(wrong_keys)
    assert str(error.value).startswith(f'model file {wrong_keys} does not match the sampling6x model with n_latent=3 (KeyError: ')


def test_the_caller_chooses_the_decoder(arrays, tmp_path):
    from fast_decoder import FastSamplingDecoder
    from model import SamplingDecoder
    path = write(tmp_path, arrays)
    assert type(load_model(path).decoder) is SamplingDecoder
    assert type(load_model(path, FastSamplingDecoder).decoder) is FastSamplingDecoder


def test_an_affine3x_model_file_is_refused_with_the_flag_that_trains_it(tmp_path):
    import affine_model
    numpy.random.seed(0)
    path = str(tmp_path / 'affine.npz')
    save_model(affine_model.AffineSamplingVAE(3), path)
    with pytest.raises(ModelFileError, match='holds the affine3x model .train.py --model affine3x.; this takes sampling6x'):
        load_model(path)
