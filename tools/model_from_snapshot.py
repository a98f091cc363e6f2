"""The model file of a training snapshot: its parameters as train.py writes them into model.npz, for an epoch
whose model.npz has since been overwritten (the article's figure after epoch 1, say).

    python tools/model_from_snapshot.py result/snapshot_epoch_1 result/model_epoch_1.npz

A snapshot holds the parameters but not every setting of the run: the model is built with the article's
(linspace grid, no footprint, no free bits), or with --grid center for a run trained so.
"""
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
import svae
import numpy

import chainer

from svae import cli
from affine_model import AffineSamplingVAE
from model import SamplingVAE
from model_files import check_coordinates, save_model

PREFIX = 'updater/model:main/'


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='model_from_snapshot.py', description=__doc__.split('\n')[0])
    parser.add_argument('snapshot', help='a snapshot_epoch_N written by train.py')
    parser.add_argument('target', help='the model file to write (.npz); an existing file is not replaced')
    parser.add_argument('--grid', choices=('linspace', 'center'), default='linspace',
                        help="the run's (u, v) grid (default linspace, the article's)")
    return parser.parse_args(argv)


def model_of(snapshot, grid):
    """The model whose parameters the snapshot holds, of its kind."""
    if not zipfile.is_zipfile(snapshot):
        raise cli.UsageError(f'snapshot {snapshot} is missing, corrupt or not a snapshot written by train.py')
    with numpy.load(snapshot, allow_pickle=False) as npz:  # a snapshot is data, never code
        arrays = {key[len(PREFIX):]: npz[key] for key in npz.files if key.startswith(PREFIX)}
    if 'decoder/linear1/W' not in arrays:
        raise cli.UsageError(f'{snapshot} holds no model of train.py (no {PREFIX}decoder/linear1/W)')
    check_coordinates(arrays.get('coordinates'), f'snapshot {snapshot}', 'it cannot be used')
    if 'e5_affine/W' in arrays:
        model = AffineSamplingVAE(arrays['e5/W'].shape[0] // 2)
    else:
        model = SamplingVAE(arrays['encoder_mu/W'].shape[0], n_in=arrays['encoder1/W'].shape[1],
                            centers=grid == 'center')
    chainer.serializers.NpzDeserializer(arrays).load(model)
    return model


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('model_from_snapshot.py'):
        cli.check_output_file(args.target, ('.npz',))
        if os.path.exists(args.target):
            raise cli.UsageError(f'{args.target} exists; choose another name')
        model = model_of(args.snapshot, args.grid)
        save_model(model, args.target)
    print(f'wrote {args.target} ({model.kind}, n_latent={model.n_latent})')


if __name__ == '__main__':
    main()
