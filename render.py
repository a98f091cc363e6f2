"""Render digits from a trained model at any resolution.

    python render.py --resolution 168        # 16 test digits: originals (left) vs rendered (right)
    python render.py --resolution 320x200    # any width x height
"""
import os

import numpy

import compat  # noqa: F401
import chainer

import cli
import data
import figures
from model import ModelFileError, load_model, render


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='render.py', description='Render digits from a trained sampling VAE at any resolution')
    parser.add_argument('--model', '-m', default=os.path.join('results', 'model.npz'),
                        help='model file written by train.py (default results/model.npz)')
    parser.add_argument('--out', '-o', default=None, help='output PNG (default renders/render_WxH.png beside the model)')
    cli.add_device_flag(parser)
    parser.add_argument('--resolution', type=cli.resolution, default=(168, 168), help='N or WxH (default 168)')
    parser.add_argument('-n', type=cli.positive_int, default=16, help='how many test digits (default 16)')
    parser.add_argument('--colormap', default='gray', help='matplotlib colormap name (default gray)')
    args = parser.parse_args(argv)
    if args.colormap not in matplotlib_colormaps():
        parser.error(f'unknown colormap {args.colormap!r} (try gray, viridis, magma, ...)')
    return args


def matplotlib_colormaps():
    import matplotlib
    return list(matplotlib.colormaps)


def encode(model, x):
    """z = mu for a batch of images (evaluation mode: no binarisation, no noise)."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        z, _, _ = model.latent(model.xp.asarray(x))
    return chainer.backend.CpuDevice().send(z.array)


IMAGE_BYTES_PER_PIXEL = 24  # render, upscaled original and both grid halves in float32, then index and RGB bytes


def reconstruction(model, args):
    x_test, _ = data.load_mnist('test')
    originals = x_test[:args.n]
    images = render(model.decoder, encode(model, originals), *args.resolution)[:, 0]
    return figures.comparison(originals[:, 0], images)


def main(argv=None):
    args = parse_args(argv)
    height, width = args.resolution
    out = args.out or os.path.join(os.path.dirname(args.model), 'renders', f'render_{width}x{height}.png')
    try:
        device = cli.device_for(args.gpu)
        cli.writable_directory(os.path.dirname(os.path.abspath(out)))
        cli.check_memory(args.n * height * width * IMAGE_BYTES_PER_PIXEL,
                         f'{args.n} digits at {width}x{height}')
        model = load_model(args.model)
        model.to_device(device)
        image = reconstruction(model, args)
        figures.save_image(out, image, args.colormap)
    except (cli.UsageError, data.DataFileError, ModelFileError) as e:
        cli.fail('render.py', str(e))
    print(out)


if __name__ == '__main__':
    main()
