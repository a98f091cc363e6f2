"""A model beside the article's published figure: the same 16 test digits, rendered at 168x168.

Writes one picture, the true digits (6x nearest) | the article's renders | this model's renders, each
a 4x4 grid as published, and prints the PSNR of both renders against the true digits and between them.
By default in the article's protocol: its figure encodes a random binarisation of each digit, so the
renders are drawn for several binarisation seeds and the PSNRs given as their mean and range (the
picture and the per-digit table show the first seed).

    python experiments/compare_article.py --epoch 50                     # the pretrained model, epoch-50 figure
    python experiments/compare_article.py --epoch 1 -m result/model.npz  # a model of yours, epoch-1 figure
    python experiments/compare_article.py --encoding grey                # the grey digits encoded, as render.py does
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
import svae
import numpy

import chainer

from svae import cli
from svae import data
from svae import figures
from svae.measure import psnr
from model import binarize, latent_means
from model_files import load_model
from rendering import render

SIZE = 168  # the published cells: 28x28 digits rendered at 6x


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='compare_article.py', description="A model's renders beside the article's figure")
    parser.add_argument('--model', '-m', default=None,
                        help='the model (default: result/model.npz if it exists, else the pretrained model in results/)')
    parser.add_argument('--epoch', '-e', type=int, choices=sorted(data.ARTICLE_DIGITS), default=50,
                        help="the published figure after epoch 1 or 50 (default 50)")
    parser.add_argument('--encoding', choices=('binary', 'grey'), default='binary',
                        help="the encoder's input: the article's random binarisation, seeded (default), or the grey "
                             "digits, as render.py encodes them")
    parser.add_argument('--seeds', type=cli.non_negative_int, nargs='+', default=None, metavar='SEED',
                        help='with --encoding binary: the seeds of the binarisations (default 0 1 2 3 4)')
    parser.add_argument('--validation', action='store_true',
                        help="also the validation loss over the 10000 test digits with this encoding, as the "
                             "article's Evaluator computes it (batches of 64)")
    parser.add_argument('--out', '-o', default=None,
                        help='the picture, PNG (default renders/MODEL/compare_epochN.png in the current directory, MODEL the model file\'s folder)')
    args = parser.parse_args(argv)
    if args.seeds is not None and args.encoding != 'binary':
        parser.error('--seeds applies to --encoding binary only')
    args.seeds = args.seeds or ([0, 1, 2, 3, 4] if args.encoding == 'binary' else [None])
    return args


def default_output(args, model_path):
    return cli.renders_path(model_path, f'compare_epoch{args.epoch}.png')


def our_renders(model, digits, encoding, seed):
    """(16, 168, 168) renders of the digits at z = mu, as the figure's PNG stores them (8 bits)."""
    z = latent_means(model, encoder_input(digits, encoding, seed))
    return figures.quantize(render(model.decoder, z, SIZE, SIZE, centers=model.centers)[:, 0])


def encoder_input(digits, encoding, seed):
    """What the encoder sees: the grey digits, or the article's random binarisation drawn from a seed."""
    return digits if encoding == 'grey' else binarize(digits, numpy.random.RandomState(seed))


def validation_loss(model, x, seen, batchsize=64):
    """The article's Evaluator: the means over batches of 64 of x_loss (nats per pixel), z_loss (nats
    per latent dimension) and, ours, loss (nats per image), at z = mu of the encoder input `seen`."""
    observed = []
    for i in range(0, len(x), batchsize):
        reporter, observation = chainer.Reporter(), {}
        reporter.add_observer('main', model)
        with reporter.scope(observation), chainer.using_config('train', False), chainer.no_backprop_mode():
            model(x[i:i + batchsize], seen=seen[i:i + batchsize])
        observed.append([float(observation[f'main/{key}'].array) for key in ('x_loss', 'z_loss', 'loss')])
    return numpy.mean(observed, axis=0)


def mean_and_range(values):
    return f'{numpy.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})'


def psnr_table(truth, article, ours, indices):
    """Lines of PSNR in dB: per digit and the mean over the 16, of each render against the truth and
    of ours against the article's."""
    lines = ['digit  test index  article vs true  ours vs true  ours vs article']
    for i, index in enumerate(indices):
        pair = lambda a, b: psnr(a[i:i + 1], b[i:i + 1])
        lines.append(f'{i + 1:5d}  {index:10d}  {pair(article, truth):15.2f}  {pair(ours, truth):12.2f}  '
                     f'{pair(ours, article):15.2f}')
    lines.append(f'{"mean":>17}  {psnr(article, truth):15.2f}  {psnr(ours, truth):12.2f}  '
                 f'{psnr(ours, article):15.2f}')
    return lines


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('compare_article.py'):
        args.model = cli.model_path(args.model)
        args.out = args.out or default_output(args, args.model)
        cli.check_output_file(args.out, ('.png',))
        model = load_model(args.model)
        if model.n_in != 784:
            raise cli.UsageError(f'{args.model} was trained on {int(model.n_in ** 0.5)}x{int(model.n_in ** 0.5)} '
                                 "digits; the article's figure shows 28x28 digits")
        indices = data.ARTICLE_DIGITS[args.epoch]
        digits = data.load_mnist('test')[0][indices]
        truth = figures.upscale_nearest(digits[:, 0], SIZE, SIZE)
        article = data.article_figure(args.epoch)
        renders = [our_renders(model, digits, args.encoding, seed) for seed in args.seeds]
        grid = lambda images: figures.tile(images, 4, border=0, background=0.0)
        figures.save_image(args.out, figures.side_by_side(figures.side_by_side(grid(truth), grid(article)),
                                                          grid(renders[0])))
    encoding = 'grey encoding' if args.encoding == 'grey' else f'binary encoding, seed {args.seeds[0]}'
    print(f'{cli.shown_path(args.model)} against the article\'s figure after epoch {args.epoch} ({encoding}): PSNR in dB')
    print('\n'.join(psnr_table(truth, article, renders[0], indices)))
    if len(args.seeds) > 1:
        print(f'over the binarisation seeds {" ".join(map(str, args.seeds))}, mean (range): ours vs true '
              f'{mean_and_range([psnr(ours, truth) for ours in renders])}, ours vs article '
              f'{mean_and_range([psnr(ours, article) for ours in renders])}')
    print(f'written {args.out} (true digits | the article\'s renders | ours)')
    if args.validation:
        x_test = data.load_mnist('test')[0]
        losses = numpy.array([validation_loss(model, x_test, encoder_input(x_test, args.encoding, seed))
                              for seed in args.seeds])
        x_loss, z_loss, loss = losses.mean(axis=0)
        spread = f' (range over the seeds {losses[:, 2].min():.3f}-{losses[:, 2].max():.3f})' if len(losses) > 1 else ''
        print(f'validation over the 10000 test digits: x_loss {x_loss:.6f} (nats per pixel), z_loss {z_loss:.6f} '
              f'(nats per latent dimension), loss {loss:.3f} (nats per image){spread}')


if __name__ == '__main__':
    main()
