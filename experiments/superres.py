"""Does f(u, v, z) beat ordinary interpolation? The article's doubt, measured on the 10000 test digits.

Protocol (LIIF's arbitrary-scale super-resolution, adapted): models trained on MNIST area-averaged to 14x14
(x2) or 7x7 (x4) on the pixel-centre grid are rendered at 28x28, where the truth is known, and compared with
(b) nearest, bilinear, bicubic (Pillow's a = -0.5, and a = -0.75 as PyTorch and OpenCV) and Lanczos
upsampling of their low-resolution input, clipped to [0, 1], (c) bicubic upsampling of the model's own
low-resolution rendering, (d) the 28x28 model (-m) rendered from the true digits, and the mean training
digit. Each model is one setting of train.py's opt-in options (latent size, footprint, free bits), named
xF_zZ_KIND_freebitsNATS in --runs; the table gives its KL and active latent dimensions beside its scores.
--likelihood adds the 28x28 model's negative ELBO and importance-weighted bound (Burda et al.), in nats per
image, on the grey-level and on a binarised test set.

    python experiments/superres.py --likelihood     # the committed x2 and x4 models (results/superres)
    python experiments/superres.py --train-missing --runs result/sweep --latents 8 16 --free-bits 0 1 4 -o result/sweep.md --figure result/sweep.png
    (the commands of the committed runs: results/superres/README.md, results/sweeps/README.md)
"""
import argparse
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
from svae import ROOT
import numpy

import chainer
import chainer.functions as F

from svae import cli
from svae import data
from svae import figures
from svae.files import write_text
from fitting import fit_latents
from rendering import model_render, render
from svae.measure import bernoulli_nll, EPS, psnr, RESAMPLERS, resize
from model import binarize
from model_files import load_model
import fast_decoder


NAME = re.compile(r'x(?P<factor>[24])_z(?P<z>\d+)_(?:point|footprint(?P<footprint>\d+))_freebits(?P<free_bits>[\d.e+-]+?)'
                  r'(?:_beta(?P<beta>[\d.e+-]+?))?(?:_fourier(?P<fourier>\d+))?(?:_local(?P<grid>\d+))?')


def model_name(text):
    """A model's NAME, checked: xF_zZ_KIND_freebitsNATS, then _betaB, _fourierK, _localG where not the article's."""
    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f'{text!r} is not a model name like x2_z16_point_freebits4_beta0.1')
    return text


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='superres.py', description=__doc__.split('\n')[0])
    parser.add_argument('--model', '-m', default=cli.PRETRAINED,
                        help='the model trained at 28x28, row (d) (default: the pretrained model in results/)')
    parser.add_argument('--runs', default=os.path.join(ROOT, 'results', 'superres'),
                        help='where the low-resolution models live, RUNS/NAME/model.npz (default: the committed ones)')
    parser.add_argument('--train-missing', action='store_true',
                        help='train the models that are missing or have fewer epochs than -e (resumed)')
    parser.add_argument('--scales', type=int, nargs='+', choices=(2, 4), default=[2, 4],
                        help='2: 14x14 -> 28x28, 4: 7x7 -> 28x28 (default 2 4)')
    parser.add_argument('--latents', type=cli.positive_int, nargs='+', default=[8], help='latent sizes (default 8)')
    parser.add_argument('--footprints', type=cli.positive_int, nargs='+', default=[1],
                        help='footprints K, K x K points per pixel; 1: point training, the article\'s (default 1)')
    parser.add_argument('--free-bits', type=cli.non_negative_float, nargs='+', default=[0.0],
                        help='free bits in nats; 0: the article\'s KL term (default 0)')
    parser.add_argument('--betas', type=cli.non_negative_float, nargs='+', default=[1.0],
                        help='weights of the KL term; 0: a plain autoencoder; 1: the article\'s (default 1)')
    parser.add_argument('--fourier', type=cli.non_negative_int, nargs='+', default=[0],
                        help='Fourier-feature frequencies K of f\'s coordinates; 0: the article\'s (u, v) (default 0)')
    parser.add_argument('--local-grids', type=cli.positive_int, nargs='+', default=[1],
                        help='local latents: z as a G x G grid of vectors (-z in all); 1: the article\'s one z (default 1)')
    parser.add_argument('--fit-steps', type=cli.non_negative_int, default=0,
                        help='add row (e): each model rendered from z fitted to its input by this many Adam steps '
                             'from the encoder\'s mu (fitting.py; default 0: no row)')
    parser.add_argument('--fit-lr', type=cli.positive_float, default=0.05, help='step size of the fitting (default 0.05)')
    parser.add_argument('--oracle-steps', type=cli.non_negative_int, default=0,
                        help='add row (o): each model rendered from z fitted to the 28x28 truth by this many Adam '
                             'steps from the encoder\'s mu, the best its drawing gets with any z (default 0: no row)')
    parser.add_argument('--models', nargs='+', type=model_name, metavar='NAME',
                        help='these models (named as above, each at its own scale) instead of every combination of '
                             'the settings\' lists')
    parser.add_argument('--epoch', '-e', type=cli.positive_int, default=5, help='epochs of every model (default 5)')
    parser.add_argument('--n-train', type=cli.positive_int, default=60000, help='training images (default all 60000)')
    parser.add_argument('-n', type=cli.positive_int, default=10000, help='test digits to evaluate (default all)')
    parser.add_argument('--likelihood', action='store_true', help='add the 28x28 model\'s likelihood bounds')
    parser.add_argument('--iwae-k', type=cli.positive_int, default=100, help='importance samples (default 100)')
    parser.add_argument('--iwae-images', type=cli.positive_int, default=500,
                        help='test images for the importance-weighted bound (default 500; it costs k decodes each)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the binarised test set and of z samples (default 0)')
    parser.add_argument('--out', '-o', default=os.path.join('result', 'superres.md'),
                        help='the table, Markdown (default result/superres.md)')
    parser.add_argument('--figure', default=os.path.join('result', 'superres.png'),
                        help='the figure, PNG (default result/superres.png)')
    cli.add_device_flag(parser)
    args = parser.parse_args(argv)
    if args.models:
        args.scales = sorted({settings_of(name)[0] for name in args.models})  # each model's own
    return args


# ---- the models: one per setting of train.py's opt-in options, trained where missing ----

def settings_of(name):
    """(factor, z, footprint, free bits, beta, Fourier frequencies, local grid) of a model's NAME."""
    match = NAME.fullmatch(name)
    return (int(match['factor']), int(match['z']), int(match['footprint'] or 1), float(match['free_bits']),
            float(match['beta'] or 1), int(match['fourier'] or 0), int(match['grid'] or 1))


def configurations(args, factor):
    """(name, train.py flags) of every model at scale factor: those of --models, or every combination of the
    settings' lists; beta, Fourier features and local latents named where not the article's."""
    if args.models:
        combinations = [settings[1:] for settings in map(settings_of, args.models) if settings[0] == factor]
    else:
        combinations = itertools.product(args.latents, args.footprints, args.free_bits, args.betas, args.fourier,
                                         args.local_grids)
    for n_latent, footprint, free_bits, beta, fourier, grid in combinations:
        if (fourier and grid > 1) or n_latent % (grid * grid):
            continue  # not combined, or a latent size that does not split into the cells
        kind = 'point' if footprint == 1 else f'footprint{footprint}'
        name = f'x{factor}_z{n_latent}_{kind}_freebits{free_bits:g}'
        flags = ['--train-size', str(28 // factor), '-z', str(n_latent), '--footprint', str(footprint),
                 '--free-bits', f'{free_bits:g}']
        if beta != 1:
            name, flags = name + f'_beta{beta:g}', flags + ['--beta', f'{beta:g}']
        if fourier:
            name, flags = name + f'_fourier{fourier}', flags + ['--fourier', str(fourier)]
        if grid > 1:
            name, flags = name + f'_local{grid}', flags + ['--local-grid', str(grid)]
        yield name, flags


def trained_epochs(out):
    """Epochs a run in out has finished, by its log (an interrupted run has a model.npz too); 0 without a model."""
    if not os.path.exists(os.path.join(out, 'model.npz')):
        return 0
    try:
        with open(os.path.join(out, 'log')) as f:
            return json.load(f)[-1]['epoch']
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return 0


def train_missing(args):
    for factor in args.scales:
        for name, flags in configurations(args, factor):
            out = os.path.join(args.runs, name)
            if trained_epochs(out) < args.epoch:
                command = [sys.executable, os.path.join(ROOT, 'train.py'), '-g', str(args.gpu), '-e', str(args.epoch),
                           '--n-train', str(args.n_train), '--grid', 'center', '--resolution', '28', '--no-progress',
                           '-r', 'auto', '-o', out] + flags  # -r auto: a crashed or shorter run resumes
                print('training: python ' + ' '.join(command[1:]), flush=True)  # before train.py writes
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def load_models(args, device, factor):
    models = {}
    for name, _ in configurations(args, factor):
        path = os.path.join(args.runs, name, 'model.npz')
        model = load_model(path, fast_decoder.decoder_class(None, device))
        size = 28 // factor
        if model.n_in != size ** 2:
            raise cli.UsageError(f'{path} was trained on {model.n_in} input pixels, not {size}x{size} (x{factor})')
        model.to_device(device)
        models[name] = model
    return models


# ---- what is measured ----

def latent_use(model, low):
    """Mean KL(q(z|x) || p(z)) in nats and the number of active dimensions (Cov_x(E[z_d | x]) > 0.01,
    Burda et al.) over the test inputs."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mus, kls = [], []
        for i in range(0, len(low), 1000):
            mu, ln_var = model.encode(model.xp.asarray(low[i:i + 1000]))
            mus.append(chainer.backend.CpuDevice().send(mu.array))
            kl = F.sum(F.gaussian_kl_divergence(mu, ln_var, reduce='no'), axis=1)  # the model's own KL term
            kls.append(chainer.backend.CpuDevice().send(kl.array))
    return float(numpy.concatenate(kls).mean()), int((numpy.concatenate(mus).var(axis=0) > 0.01).sum())


def model_row(model, low, fit_steps=0, fit_lr=0.05, truth=None, oracle_steps=0):
    """(a) the model rendered at 28x28 from its low-resolution input, (c) bicubic upsampling of its own
    low-resolution rendering, (e) with fit_steps, the model rendered at 28x28 from z fitted to its input;
    (o) with oracle_steps, rendered from z fitted to the 28x28 truth (N, 28, 28): what its drawing reaches
    when z is found knowing the answer; (r) the PSNR of its own low-resolution rendering against its input;
    its KL and active dimensions, and its training settings."""
    size = low.shape[-1]
    kl, active = latent_use(model, low[:, None])
    own_low = model_render(model, low[:, None], size)
    row = {'a': model_render(model, low[:, None], 28), 'c': resize(own_low, 28, 'bicubic'), 'r': psnr(own_low, low),
           'kl': kl, 'active': active, 'n_latent': model.n_latent, 'footprint': model.footprint,
           'free_bits': model.free_bits, 'beta': model.beta, 'fourier': getattr(model.decoder, 'frequencies', 0),
           'local_grid': getattr(model.decoder, 'grid', 1)}
    for key, steps, target in (('e', fit_steps, None), ('o', oracle_steps, truth)):
        if steps:
            z = fit_latents(model, low[:, None], steps, fit_lr, target=None if target is None else target[:, None])
            row[key] = render(model.decoder, z, 28, 28, centers=model.centers)[:, 0]
    return row


def baseline_rows(low, ours28, mean_digit):
    size = low.shape[-1]
    rows = {f'(b) {method} upsampling of the {size}x{size} input': resize(low, 28, method) for method in RESAMPLERS}
    rows['(d) model trained at 28x28, rendered at 28x28'] = ours28
    rows['the mean training digit'] = numpy.broadcast_to(mean_digit, ours28.shape)
    return rows


def log_weights(model, x, k, rng):
    """log p(x|z) + log p(z) - log q(z|x) for k samples z ~ q(z|x) per image: (N, k)."""
    xp = model.xp
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mu, ln_var = (a.array for a in model.encode(xp.asarray(x)))
        eps = xp.asarray(rng.standard_normal((len(x), k, model.n_latent)).astype(numpy.float32))
        z = mu[:, None] + xp.exp(ln_var / 2)[:, None] * eps
        zs = z.reshape(-1, model.n_latent)
        targets = xp.repeat(xp.asarray(x), k, axis=0)
        log_px = -F.bernoulli_nll(targets, model.decode(zs, targets.shape), reduce='no').array
        log_px = log_px.reshape(len(x), k, -1).sum(axis=2)
    log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(axis=2)
    log_qz = -0.5 * (eps ** 2 + ln_var[:, None] + math.log(2 * math.pi)).sum(axis=2)
    return chainer.backend.CpuDevice().send(log_px + log_pz - log_qz).astype(numpy.float64)


def bounds(model, x, k, n_iwae, rng, batch_points=1 << 16):
    """(-ELBO over all of x with one sample each, -ELBO and -IWAE_k over the first n_iwae images)."""
    per_batch = max(1, batch_points // 784)
    elbo = numpy.concatenate([log_weights(model, x[i:i + per_batch], 1, rng)[:, 0]
                              for i in range(0, len(x), per_batch)])
    images_per_batch, first = max(1, per_batch // k), x[:n_iwae]
    w = numpy.concatenate([log_weights(model, first[i:i + images_per_batch], k, rng)
                           for i in range(0, len(first), images_per_batch)])
    iwae = numpy.logaddexp.reduce(w, axis=1) - math.log(k)
    return -elbo.mean(), -w.mean(), -iwae.mean()


# ---- the report ----

def figure(truth, panels, count=8):
    """One panel per scale, rows: truth, input (nearest-upscaled), Lanczos, then each model shown; x2 above x4."""
    count, tiles = min(count, len(truth)), []
    for low, lanczos, shown in panels:
        rows = [truth[:count], figures.upscale_nearest(low[:count], 28, 28), lanczos[:count]] + [a[:count] for a in shown]
        tiles.append(figures.tile(numpy.concatenate(rows), cols=count))
    gap = numpy.full((3 * figures.BORDER, tiles[0].shape[1]), 1.0, numpy.float32)
    return numpy.concatenate([part for t in tiles for part in (t, gap)][:-1])


def decoder_input(row):
    if row['fourier']:
        return f'(u, v), {row["fourier"]} Fourier frequencies'
    if row['local_grid'] > 1:
        return f'(u, v), {row["local_grid"]}x{row["local_grid"]} local latents'
    return '(u, v)'


def scale_table(factor, models, baselines, truth):
    size = 28 // factor
    extra = [key for key in ('e', 'o') if any(key in row for row in models.values())]  # fitted, oracle
    lines = [f'## x{factor} ({size}x{size} -> 28x28)', '',
             "| model (NAME) | z | footprint | free bits | beta | f's input | epochs | (a) PSNR (dB) | (a) NLL "
             + ''.join(f'| ({key}) PSNR (dB) | ({key}) NLL ' for key in extra) + '| (c) PSNR (dB) | (c) NLL | KL (nats) '
             f'| active | (r) PSNR at {size}x{size} (dB) |', '| --- ' + '| ---: ' * (13 + 2 * len(extra)) + '|']
    for name, row in models.items():
        scores = [row['a']] + [row[key] for key in extra] + [row['c']]
        lines.append(f'| {name} | {row["n_latent"]} | {row["footprint"]}x{row["footprint"]} | {row["free_bits"]:g} '
                     f'| {row["beta"]:g} | {decoder_input(row)} | {row["epochs"]} | '
                     + ' | '.join(f'{psnr(p, truth):.2f} | {bernoulli_nll(p, truth):.4f}' for p in scores)
                     + f' | {row["kl"]:.2f} | {row["active"]} | {row["r"]:.2f} |')
    lines += ['', '| baseline | PSNR (dB) | NLL (nats/pixel) |', '| --- | ---: | ---: |']
    lines += [f'| {name} | {psnr(p, truth):.2f} | {bernoulli_nll(p, truth):.4f} |' for name, p in baselines.items()]
    return lines + ['']


def likelihood_table(likelihood, info):
    g_elbo, g_elbo_sub, g_iwae, b_elbo, b_elbo_sub, b_iwae = likelihood
    k, n_iwae = info['k'], info['n_iwae']
    return ['## Likelihood of the 28x28 model (nats per image, lower is better)', '',
            '| test set | -ELBO (all, 1 sample) | -ELBO (first %d) | -log p(x) bound, IWAE k=%d (first %d) |'
            % (n_iwae, k, n_iwae), '| --- | ---: | ---: | ---: |',
            f'| grey levels (the training target) | {g_elbo:.2f} | {g_elbo_sub:.2f} | {g_iwae:.2f} |',
            f'| binarised, fixed seed (x > uniform) | {b_elbo:.2f} | {b_elbo_sub:.2f} | {b_iwae:.2f} |', '',
            'Only the binarised row is on the scale of published binarised-MNIST numbers (e.g. 86.76 nats for '
            f'a VAE with 50 latent units in the IWAE paper); this model has {info["n_latent"]} latent units and '
            'grey levels as its reconstruction target. The grey-level row is not comparable to them.', '']


def markdown(args, tables, likelihood, info):
    lines = ['# Is f(u, v, z) better than interpolation?', '',
             f'Produced by `{info["command"]}` in {info["seconds"]:.0f} s on {info["device"]}, {info["provenance"]}.',
             f'Test digits: {info["n"]}. PSNR: mean over images of 10 log10(1 / MSE), pixels in [0, 1]. '
             f'NLL: mean per-pixel Bernoulli negative log-likelihood of the grey-level truth in nats, '
             f'probabilities clipped to [{EPS}, {1 - EPS}]. KL: mean KL(q(z|x) || p(z)) over the test inputs, nats; '
             'active: latent dimensions whose E[z_d | x] varies over the test inputs (variance > 0.01).', '',
             f'Models: `{info["runs"]}/NAME`, trained where missing by `python train.py -e {args.epoch} --n-train '
             f'{args.n_train} --grid center --resolution 28 --train-size S -z Z --footprint K --free-bits NATS [--beta B] [--fourier K | --local-grid G]` '
             f'(batch 64, Adam, seed 0); epochs: as their logs say. 28x28 model: `{info["m28"]}`. '
             '(a): the model rendered at 28x28 from its low-resolution input; (c): bicubic upsampling of the '
             'model\'s own low-resolution rendering' + (f'; (e): the model rendered at 28x28 from z fitted to its '
             f'low-resolution input by {args.fit_steps} Adam steps (step size {args.fit_lr:g}) from the encoder\'s mu '
             '(fitting.py)' if args.fit_steps else '')
             + (f'; (o): the model rendered at 28x28 from z fitted to the 28x28 truth by {args.oracle_steps} Adam '
                f'steps (step size {args.fit_lr:g}) from the encoder\'s mu of its input, an oracle: what its drawing '
                'reaches with z found knowing the answer' if args.oracle_steps else '')
             + '; (r): the model\'s reconstruction of its input, at the input\'s size.', '']
    for table in tables:
        lines += table
    if likelihood is not None:
        lines += likelihood_table(likelihood, info)
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    start, provenance = time.time(), cli.provenance()  # the code as it is when the run starts
    with cli.one_line_errors('superres.py', '' if args.train_missing else ' (or run with --train-missing)'):
        cli.check_output_file(args.out, ('.md',))
        cli.check_output_file(args.figure, ('.png',))
        device = cli.device_for(args.gpu)
        if args.train_missing:
            train_missing(args)
        models = {factor: load_models(args, device, factor) for factor in args.scales}
        model28 = load_model(args.model, fast_decoder.decoder_class(None, device))
        model28.to_device(device)
        (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
        truth = x_test[:args.n, 0]
        ours28 = model_render(model28, truth[:, None], 28)
        mean_digit = x_train[:args.n_train, 0].mean(axis=0)
        tables, panels = [], []
        for factor, by_name in models.items():
            low = data.downsample(truth[:, None], 28 // factor)[:, 0]
            rows = {}
            for name, model in by_name.items():
                row = model_row(model, low, args.fit_steps, args.fit_lr, truth, args.oracle_steps)
                rows[name] = dict(row, epochs=trained_epochs(os.path.join(args.runs, name)))
                print(f'{name}: (a) {psnr(rows[name]["a"], truth):.2f} dB', flush=True)
            baselines = baseline_rows(low, ours28, mean_digit)
            tables.append(scale_table(factor, rows, baselines, truth))
            best = max(rows, key=lambda name: psnr(rows[name]['a'], truth))
            first = next(iter(rows))  # the first setting given: with the defaults, the article's training
            shown = [rows[best]['a']] + ([rows[first]['a']] if first != best else [])
            panels.append((low, baselines[f'(b) lanczos upsampling of the {low.shape[-1]}x{low.shape[-1]} input'], shown))
        likelihood = None
        if args.likelihood:
            rng = numpy.random.RandomState(args.seed)
            binary = binarize(truth, rng)  # the article's binarisation, as the encoder's input in training
            likelihood = (bounds(model28, truth[:, None], args.iwae_k, args.iwae_images, rng)
                          + bounds(model28, binary[:, None], args.iwae_k, args.iwae_images, rng))
    info = {'command': cli.command_line(os.path.join('experiments', 'superres.py'), argv),
            'seconds': time.time() - start, 'n': len(truth), 'k': args.iwae_k, 'n_iwae': min(args.iwae_images, len(truth)),
            'device': f'GPU {args.gpu}' if args.gpu >= 0 else f'CPU ({os.cpu_count()} cores)',
            'runs': cli.shown_path(args.runs), 'm28': cli.shown_path(args.model),
            'provenance': provenance, 'n_latent': model28.n_latent}
    report = markdown(args, tables, likelihood, info)
    with cli.one_line_errors('superres.py'):
        write_text(args.out, report)
        figures.save_image(args.figure, figure(truth, panels))
    print(report)
    print(f'wrote {args.out} and {args.figure} (figure rows per scale: truth, input, Lanczos, the best model by (a), '
          'the first setting if another)')


if __name__ == '__main__':
    main()
