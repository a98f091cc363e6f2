"""Model files and snapshots, the one place that reads and writes them: plain arrays (the parameters, the
model's kind, latent size, input size and coordinate order), never unpickled, written atomically.

A snapshot (train.py's snapshot_epoch_N) holds the trainer: the model's arrays under SNAPSHOT_MODEL,
beside the optimizer's, the iterator's and the extensions' state.
"""
import os
import zipfile

import svae
import numpy

import chainer

from svae.files import atomic_path
from affine_model import AffineSamplingVAE
from model import COORDINATES, SamplingDecoder, SamplingVAE
import decoders

SNAPSHOT_MODEL = 'updater/model:main/'  # where a Trainer's snapshot keeps the model's arrays


class ModelFileError(svae.Error):
    """A model file or snapshot that cannot be used; the message says why in one line."""


def save_model(model, path):
    """Write the model's parameters and its latent size atomically (temporary file, then rename)."""
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(model)
    arrays = dict(serializer.target, model=numpy.array(model.kind), **model.settings())
    with atomic_path(path) as tmp:
        numpy.savez_compressed(tmp, **arrays)


def read_arrays(path):
    """The arrays of a model file, by name. Never unpickles: a model file is data."""
    if os.path.isdir(path):
        raise ModelFileError(f'model file {path} is a directory, not a file')
    if not os.path.exists(path):
        raise ModelFileError(f'model file {path} does not exist (no file at {os.path.abspath(path)})')
    if not zipfile.is_zipfile(path):  # numpy.load would take any other bytes for a pickle
        raise ModelFileError(f'model file {path} is corrupt or not an .npz file')
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as e:
        if 'allow_pickle' in str(e):
            raise ModelFileError(f'model file {path} holds pickled Python objects; refusing to load it') from None
        raise ModelFileError(f'model file {path} is not a valid model file ({e})') from None
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ...
        raise ModelFileError(f'model file {path} is corrupt or not an .npz file ({type(e).__name__}: {e})') from None
    return arrays


def model_arrays(path, expected=None):
    """(kind, arrays) of a model file: 'sampling6x' (the article's model; also files from before kinds
    were recorded) or 'affine3x'. Refuses a snapshot, and a kind other than `expected` when given."""
    arrays = read_arrays(path)
    if is_article_snapshot(arrays):
        raise ModelFileError(f'{path} is a snapshot written by the article\'s own code; convert it to a model file '
                             f'with: python tools/convert_model.py {path} NEW.npz')
    if any(key.startswith('updater/') for key in arrays):
        beside = os.path.join(os.path.dirname(path), 'model.npz')
        raise ModelFileError(f'{path} is a training snapshot (for train.py -r), not a model file; use {beside}, '
                             'which train.py writes beside it every epoch')
    kind = arrays.pop('model', numpy.array('sampling6x'))
    if kind.shape != () or str(kind) not in ('sampling6x', 'affine3x'):
        raise ModelFileError(f'model file {path} records an unknown model {kind.tolist()!r}')
    if expected and str(kind) != expected:
        raise ModelFileError(f'model file {path} holds the {kind} model (train.py --model {kind}); this takes '
                             f'{expected} models only')
    return str(kind), arrays


def load_model(path, decoder_class=SamplingDecoder):
    """A SamplingVAE from a file written by save_model."""
    _, arrays = model_arrays(path, 'sampling6x')
    if 'n_latent' not in arrays or arrays['n_latent'].shape != () or arrays['n_latent'].dtype.kind not in 'iu':
        raise ModelFileError(f'model file {path} does not record its latent size (not written by train.py?)')
    if 'decoder/linear1/W' in arrays:
        check_coordinates(arrays.get('coordinates'), f'model file {path}', 'it cannot be used')
    n_in, centers = arrays.pop('n_in', numpy.array(784)), arrays.pop('centers', numpy.array(False))
    if n_in.shape != () or n_in.dtype.kind not in 'iu' or int(numpy.sqrt(n_in)) ** 2 != n_in or centers.dtype != bool:
        raise ModelFileError(f'model file {path} has a malformed input size or grid flag')
    footprint, free_bits = arrays.pop('footprint', numpy.array(1)), arrays.pop('free_bits', numpy.array(0.0))
    if footprint.shape != () or footprint.dtype.kind not in 'iu' or footprint < 1 or (footprint > 1 and not centers) \
            or free_bits.shape != () or free_bits.dtype.kind != 'f' or not free_bits >= 0:
        raise ModelFileError(f'model file {path} has a malformed footprint or free-bits setting')
    beta, fourier, grid = (arrays.pop(name, numpy.array(default)) for name, default in
                           (('beta', 1.0), ('fourier', 0), ('local_grid', 1)))
    if beta.shape != () or beta.dtype.kind != 'f' or not beta >= 0 or any(
            a.shape != () or a.dtype.kind not in 'iu' or a < low for a, low in ((fourier, 0), (grid, 1))):
        raise ModelFileError(f'model file {path} has a malformed beta, Fourier-feature or local-latent setting')
    n_latent = int(arrays.pop('n_latent'))
    try:
        decoder_class = decoders.opt_in_decoder(int(fourier), int(grid)) or decoder_class
        model = SamplingVAE(n_latent, n_in=int(n_in), centers=bool(centers), decoder_class=decoder_class,
                            footprint=int(footprint), free_bits=float(free_bits), beta=float(beta))
    except ValueError as e:
        raise ModelFileError(f'model file {path} records settings that do not go together ({e})') from None
    return with_parameters(model, arrays, path)


def with_parameters(model, arrays, path):
    """The model with the file's parameters, or a ModelFileError saying which does not fit."""
    try:
        chainer.serializers.NpzDeserializer(arrays).load(model)
    except (KeyError, ValueError, TypeError) as e:
        raise ModelFileError(f'model file {path} does not match the {model.kind} model with n_latent={model.n_latent} '
                             f'({type(e).__name__}: {e})') from None
    return model


def is_article_snapshot(names):
    """Whether arrays of these names are a snapshot of the article's own train.py (tmagara/sampling-autoencoder):
    its SamplingVAE names the encoder's heads e3a and e3b; its affine3x records no coordinate order."""
    return (SNAPSHOT_MODEL + 'e3a/W' in names or
            (SNAPSHOT_MODEL + 'e5_affine/W' in names and SNAPSHOT_MODEL + 'coordinates' not in names))


def check_coordinates(recorded, what, remedy):
    """Refuse parameters of f that take their coordinates in another order than the article's."""
    if recorded is None:
        raise ModelFileError(f'{what} is from an earlier version whose decoder took (column, row) coordinates, '
                             f'not the article\'s (row, column); {remedy}')
    if recorded.shape != () or recorded.dtype.kind != 'U' or str(recorded) != COORDINATES:
        raise ModelFileError(f'{what} records an unknown coordinate order {recorded!r}')


def load_affine_model(path):
    """An AffineSamplingVAE from a file written by save_model."""
    _, arrays = model_arrays(path, 'affine3x')
    check_coordinates(arrays.get('coordinates'), f'model file {path}', 'it cannot be used')
    n_latent = arrays.pop('n_latent', None)
    if n_latent is None or n_latent.shape != () or n_latent.dtype.kind not in 'iu' or n_latent < 1:
        raise ModelFileError(f'model file {path} does not record its latent size (not written by train.py?)')
    model = AffineSamplingVAE(int(n_latent))
    return with_parameters(model, arrays, path)


def load_any_model(path, decoder_class=SamplingDecoder):
    """The model a file holds, of either kind: the article's (with `decoder_class`) or affine3x."""
    kind, _ = model_arrays(path)
    return load_affine_model(path) if kind == 'affine3x' else load_model(path, decoder_class)


def snapshot_model(arrays):
    """The model's arrays in a snapshot's arrays, by their names in a model file."""
    return {name[len(SNAPSHOT_MODEL):]: value for name, value in arrays.items() if name.startswith(SNAPSHOT_MODEL)}
