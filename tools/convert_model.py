"""Convert a snapshot written by the article's own code into a model file of this project.

The article's train.py (github.com/tmagara/sampling-autoencoder) saves no model file, only trainer
snapshots (snapshot_epoch_10, 20, ...). Its SamplingVAE names the encoder e1, e2, e3a (mu) and e3b
(ln_var) where model.py says encoder1, encoder2, encoder_mu and encoder_ln_var; the decoder's names and
its input (u = row, v = column, z) are the same. Its affine3x model has this project's names; its warm-up
factor, which the article's code keeps in Chainer's global config and does not save, follows from the
snapshot's epoch. The parameters are copied unchanged; render.py, export_web.py and compare_article.py
then draw the article's model itself.

    python tools/convert_model.py result/snapshot_epoch_50 article_model.npz
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
import svae
import chainer
import numpy

from svae import cli
from affine_model import AffineSamplingVAE, warm_up_factor
from model import SamplingVAE
from model_files import is_article_snapshot, ModelFileError, read_arrays, save_model

PREFIX = 'updater/model:main/'  # the model's place in a Trainer's snapshot
ENCODER_NAMES = {'e1/': 'encoder1/', 'e2/': 'encoder2/', 'e3a/': 'encoder_mu/', 'e3b/': 'encoder_ln_var/'}


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='convert_model.py', description=__doc__.split('\n')[0])
    parser.add_argument('source', help="a snapshot_epoch_N written by the article's train.py")
    parser.add_argument('target', help='the model file to write (.npz; never replaces a file)')
    return parser.parse_args(argv)


def renamed(name):
    for old, new in ENCODER_NAMES.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


def article_model(source):
    """The model of a snapshot of the article's code, as this project's SamplingVAE or AffineSamplingVAE."""
    arrays = read_arrays(source)
    if not is_article_snapshot(arrays):
        raise ModelFileError(f'{source} is not a snapshot of the article\'s code (no {PREFIX}e3a/W or {PREFIX}e5_affine/W '
                             'without a coordinate order); a snapshot of this project\'s train.py converts with '
                             'tools/model_from_snapshot.py')
    parameters = {name[len(PREFIX):]: value for name, value in arrays.items() if name.startswith(PREFIX)}
    if 'e3a/W' in parameters:
        model = SamplingVAE(parameters['e3a/W'].shape[0])
        parameters = {renamed(name): value for name, value in parameters.items()}
    else:
        model = AffineSamplingVAE(parameters['e5/W'].shape[0] // 2)
        epoch = int(arrays.get('updater/iterator:main/epoch', 0))
        parameters['warm_up'] = numpy.array(warm_up_factor(max(epoch - 1, 0)))  # the factor its last epoch trained with
    parameters['coordinates'] = numpy.array(model.coordinates)  # the article's order, which model.py follows
    try:
        chainer.serializers.NpzDeserializer(parameters).load(model)
    except (KeyError, ValueError, TypeError) as e:
        raise ModelFileError(f'{source} does not hold the article\'s {model.kind} model ({type(e).__name__}: {e})') \
            from None
    return model


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('convert_model.py'):
        cli.check_output_file(args.target, ('.npz',))
        if os.path.exists(args.target):
            raise cli.UsageError(f'{args.target} exists; choose another name')
        model = article_model(args.source)
        save_model(model, args.target)
    print(f'wrote {args.target} (the article\'s {model.kind} model, latent size {model.n_latent})')


if __name__ == '__main__':
    main()
