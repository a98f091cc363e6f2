"""Export a model as one self-contained HTML page that draws f(u, v, z) live in the browser.

    python web/export_web.py                              # renders/MODEL/explorer.html, of the model render.py would use
    python web/export_web.py -o result/explorer.html      # another file

The page embeds the decoder's weights, z = mu of the first --digits test digits and their 28x28
originals, and colormap tables from matplotlib: no other file, no network. Its JSON (page_data()) holds
W1..W4, b1..b4 (float32, base64), kind, n_latent, widths (of the three hidden layers), coordinates, grid,
digit_count, digit_side, digits (uint8 originals), mu (float32, digit_count x n_latent), poses (affine3x
models: float32, digit_count x 4, each digit's raw pose: log scale, theta, tx and ty before tanh; null for
the article's model), colormaps (256 RGB uint8 each), and
labels: the digits' MNIST test classes (a list of ints), and their z's 2-D PCA map (float32):
pca_mean (n_latent), pca_directions (2 x n_latent, orthonormal rows: the map's x and y) and pca_points
(digit_count x 2, the digits' centred z = mu projected on the directions). It evaluates the decoder
per pixel on the GPU with WebGL2 (a plain JavaScript fallback where WebGL2 is missing), in the
article's coordinate order, with the z part of linear1 computed once per frame (as in fast_decoder.py); for
affine3x models the pose, an affine map of (u, v), is folded into linear1's u and v columns once per frame too.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
from svae import ROOT
import numpy

from svae import cli
from svae import data
from svae.files import write_text
import affine_model
from model import COORDINATES, latent_means, SamplingDecoder
import model_files

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'explorer_template.html')  # beside this script
COLORMAPS = ('gray', 'magma', 'viridis', 'inferno', 'cividis', 'gray_r')


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='export_web.py', description=__doc__.split('\n')[0])
    parser.add_argument('--model', '-m', default=None,
                        help='model file (default: result/model.npz if it exists, else the pretrained model in results/)')
    parser.add_argument('--out', '-o', default=None, help='the page, .html (default: renders/MODEL/explorer.html in the current directory, MODEL the model file\'s folder)')
    parser.add_argument('--digits', type=cli.positive_int, default=300,
                        help='test digits embedded, with their z = mu (default 300)')
    args = parser.parse_args(argv)
    if args.digits > data.MNIST_TEST_SIZE:
        parser.error(f'--digits must be at most {data.MNIST_TEST_SIZE}')
    return args


def base64_of(array, dtype):
    return base64.b64encode(numpy.ascontiguousarray(array, dtype=dtype).tobytes()).decode('ascii')


def colormap_table(name):
    import matplotlib
    rgb = matplotlib.colormaps[name](numpy.linspace(0.0, 1.0, 256))[:, :3]
    return base64_of((rgb * 255 + 0.5).astype(numpy.uint8), numpy.uint8)


def pca_map(mu):
    """The 2-D PCA of the digits' z: their mean, the two leading directions (2 x n_latent, orthonormal)
    and the digits projected on them. full_matrices: two directions even from fewer than three digits."""
    mean = mu.mean(axis=0)
    directions = numpy.linalg.svd(mu - mean, full_matrices=True)[2][:2]
    directions = numpy.concatenate([directions, numpy.zeros((2 - len(directions), mu.shape[1]))])  # n_latent 1
    directions *= numpy.where(directions.sum(axis=1, keepdims=True) < 0, -1, 1)  # SVD's sign: any; fix one
    return mean, directions, (mu - mean) @ directions.T


def page_data(model, originals, labels):
    """Everything the page needs, as JSON: little-endian float32 and uint8 arrays in base64."""
    decoder = model.decoder
    layers = [getattr(decoder, f'linear{k}') for k in range(1, 5)]
    weights = {f'W{k}': base64_of(layer.W.array, '<f4') for k, layer in enumerate(layers, start=1)}
    weights.update({f'b{k}': base64_of(layer.b.array, '<f4') for k, layer in enumerate(layers, start=1)})
    if model.kind == 'affine3x':
        mu, poses = affine_model.latents_and_poses(model, originals)
        poses = base64_of(poses, '<f4')
    else:
        mu, poses = latent_means(model, originals), None
    mean, directions, points = pca_map(mu.astype(numpy.float64))
    return dict(weights, kind=model.kind, n_latent=model.n_latent, poses=poses,
                widths=[int(layer.W.shape[0]) for layer in layers[:3]], coordinates=COORDINATES,
                grid='centers' if model.centers else 'linspace', digit_count=len(originals),
                digit_side=originals.shape[-1],
                digits=base64_of(numpy.round(originals[:, 0] * 255), numpy.uint8),
                mu=base64_of(mu, '<f4'), labels=[int(label) for label in labels],
                pca_mean=base64_of(mean, '<f4'), pca_directions=base64_of(directions, '<f4'),
                pca_points=base64_of(points, '<f4'),
                colormaps={name: colormap_table(name) for name in COLORMAPS})


def export(model_path, out, digits):
    model = model_files.load_any_model(model_path, SamplingDecoder)
    if model.n_in != 784:
        raise cli.UsageError(f'{model_path} was trained on {int(model.n_in ** 0.5)}x{int(model.n_in ** 0.5)} digits; '
                             'the explorer takes models of 28x28 digits')
    if hasattr(model.decoder, 'settings'):  # an opt-in decoder of decoders.py
        raise cli.UsageError(f'{model_path} feeds f other inputs than (u, v) and one z (train.py --fourier or '
                             '--local-grid); the explorer draws the article\'s decoder only')
    images, labels = data.load_mnist('test')
    with open(TEMPLATE, encoding='utf-8') as f:
        template = f.read()
    payload = json.dumps(page_data(model, images[:digits], labels[:digits])).replace('</', '<\\/')
    html = template.replace('/*MODEL_DATA*/{}', payload, 1)
    return write_text(out, html)


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('export_web.py'):
        path = cli.model_path(args.model)
        out = args.out or cli.renders_path(path, 'explorer.html')
        cli.check_output_file(out, ('.html',))
        export(path, out, args.digits)
    print(f'model: {cli.shown_path(path)}\n{out} ({os.path.getsize(out) / 2**20:.2f} MiB): open it in a browser')


if __name__ == '__main__':
    main()
