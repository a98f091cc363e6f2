"""Convert a model file of an earlier version to the article's coordinate order.

Earlier versions fed the decoder (x, y, z) with x the column and y the row coordinate; the article
feeds (u, v, z) with u the row and v the column. Swapping the first two input columns of linear1
turns such a model exactly into the same picture in the article's order: f(u, v, z) = f_old(v, u, z).

    python tools/convert_model.py old_model.npz model.npz
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
from svae import compat  # noqa: F401  (before numpy and chainer: see svae/compat.py)
import numpy


from svae import cli
from svae.files import atomic_path
from model import COORDINATES, ModelFileError, load_model, read_arrays, to_article_order


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='convert_model.py', description=__doc__.split('\n')[0])
    parser.add_argument('source', help='model file written before the coordinate-order fix')
    parser.add_argument('target', help='where to write the converted model (may be SOURCE itself, to replace it)')
    return parser.parse_args(argv)


def convert(source, target):
    arrays = read_arrays(source)
    if 'coordinates' in arrays:
        raise ModelFileError(f'{source} already records its coordinate order ({arrays["coordinates"]}); nothing to do')
    if 'decoder/linear1/W' not in arrays:
        raise ModelFileError(f'{source} is not a model file of this project (no decoder/linear1/W)')
    if os.path.exists(target) and os.path.abspath(target) != os.path.abspath(source):
        raise cli.UsageError(f'{target} exists; choose another name (or give the source twice to replace it)')
    with atomic_path(target) as tmp:
        numpy.savez_compressed(tmp, **to_article_order(arrays))
        load_model(tmp)  # the result must load as a model of the new format


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('convert_model.py'):
        cli.writable_directory(os.path.dirname(os.path.abspath(args.target)))
        convert(args.source, args.target)
    print(f'wrote {args.target} ({COORDINATES})')


if __name__ == '__main__':
    main()
