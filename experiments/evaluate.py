"""Does f(u, v, z) beat ordinary interpolation? The article's doubt, measured on the 10000 test digits.

Protocol (LIIF's arbitrary-scale super-resolution, adapted): models trained on MNIST area-averaged to
14x14 (x2) and 7x7 (x4) on the pixel-centre grid are rendered at 28x28, where the truth is known, and
compared with (b) nearest, bilinear, bicubic (Pillow's a = -0.5, and a = -0.75 as PyTorch and OpenCV) and
Lanczos upsampling of their low-resolution input, clipped to [0, 1],
(c) bicubic upsampling of the model's own low-resolution rendering, (d) the model trained at 28x28.
Also the 28x28 model's negative ELBO and importance-weighted bound (Burda et al.), in nats per image,
on the grey-level and on a binarised test set.

    python experiments/evaluate.py --train-missing -e 10 --runs result/superres   # trains the x2 and x4 models, then evaluates
    python experiments/evaluate.py -o results/superres/superres.md --figure results/superres/superres.png   # the committed table
"""
import math
import os
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
from rendering import model_render
from svae.measure import bernoulli_nll, EPS, psnr, RESAMPLERS, resize
from model import binarize
from model_files import load_model
import fast_decoder


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='evaluate.py', description='Super-resolution and likelihood evaluation')
    parser.add_argument('--model', '-m', default=cli.PRETRAINED,
                        help='the model trained at 28x28 (default: the pretrained model in results/)')
    parser.add_argument('--runs', default=os.path.join(ROOT, 'results', 'superres'),
                        help='where the x2 and x4 models live: RUNS/size14/model.npz, RUNS/size7/model.npz')
    parser.add_argument('--train-missing', action='store_true', help='train the x2 / x4 models that are missing')
    parser.add_argument('--epoch', '-e', type=cli.positive_int, default=10, help='epochs for --train-missing (default 10)')
    parser.add_argument('--iwae-k', type=cli.positive_int, default=100, help='importance samples (default 100)')
    parser.add_argument('--iwae-images', type=cli.positive_int, default=500,
                        help='test images for the importance-weighted bound (default 500; it costs k decodes each)')
    parser.add_argument('-n', type=cli.positive_int, default=10000, help='test digits to evaluate (default all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the binarised test set and of z samples (default 0)')
    parser.add_argument('--out', '-o', default=os.path.join('result', 'superres.md'),
                        help='the table, Markdown (default result/superres.md)')
    parser.add_argument('--figure', default=os.path.join('result', 'superres.png'),
                        help='the figure, PNG (default result/superres.png)')
    cli.add_device_flag(parser)
    return parser.parse_args(argv)


def superres_rows(model, truth, factor):
    """Rows (a)-(c) of the table for one scale factor, and the figure's (input, Lanczos, model) images."""
    size = 28 // factor
    low = data.downsample(truth[:, None], size)[:, 0]
    ours = model_render(model, low[:, None], 28)
    rows = {f'(a) model trained at {size}x{size}, rendered at 28x28': ours}
    for method in RESAMPLERS:
        rows[f'(b) {method} upsampling of the {size}x{size} input'] = resize(low, 28, method)
    own = model_render(model, low[:, None], size)
    rows[f'(c) bicubic upsampling of the model\'s own {size}x{size} rendering'] = resize(own, 28, 'bicubic')
    return rows, (low, rows[f'(b) lanczos upsampling of the {size}x{size} input'], ours)


# ---- likelihood bounds of the 28x28 model ----

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

def train_missing(args):
    for size in (14, 7):
        path = os.path.join(args.runs, f'size{size}', 'model.npz')
        if not os.path.exists(path):
            print(f'training the {size}x{size} model ({args.epoch} epochs) into {os.path.dirname(path)}', flush=True)
            subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), '-g', str(args.gpu), '-e', str(args.epoch),
                            '--train-size', str(size), '--grid', 'center', '--resolution', '28', '--no-progress',
                            '-r', 'auto', '-o', os.path.dirname(path)], check=True)  # resumes a crashed run


def figure(truth, cases, count=8):
    """Per scale: rows truth, input (nearest-upscaled), Lanczos (the best interpolation), model; x2 above x4."""
    count, panels = min(count, len(truth)), []
    for low, lanczos, ours in cases:
        rows = [truth[:count], figures.upscale_nearest(low[:count], 28, 28), lanczos[:count], ours[:count]]
        panels.append(figures.tile(numpy.concatenate(rows), cols=count))
    gap = numpy.full((3 * figures.BORDER, panels[0].shape[1]), 1.0, numpy.float32)
    return numpy.concatenate([panels[0], gap, panels[1]])


def markdown(results, likelihood, info):
    lines = ['# Is f(u, v, z) better than interpolation?', '',
             f'Produced by `{info["command"]}` in {info["seconds"]:.0f} s on {info["device"]}, {info["provenance"]}.',
             f'Test digits: {info["n"]}. PSNR: mean over images of 10 log10(1 / MSE), pixels in [0, 1]. '
             f'NLL: mean per-pixel Bernoulli negative log-likelihood of the grey-level truth in nats, '
             f'probabilities clipped to [{EPS}, {1 - EPS}].', '',
             'Models: x2 = `' + info['x2'] + '`, x4 = `' + info['x4'] + '`, 28x28 = `' + info['m28'] + '`.', '']
    for factor, rows in results.items():
        lines += [f'## x{factor} ({28 // factor}x{28 // factor} -> 28x28)', '',
                  '| method | PSNR (dB) | NLL (nats/pixel) |', '| --- | ---: | ---: |']
        lines += [f'| {name} | {p:.2f} | {n:.4f} |' for name, (p, n) in rows.items()]
        lines.append('')
    g_elbo, g_elbo_sub, g_iwae, b_elbo, b_elbo_sub, b_iwae = likelihood
    k, n_iwae = info['k'], info['n_iwae']
    lines += ['## Likelihood of the 28x28 model (nats per image, lower is better)', '',
              '| test set | -ELBO (all, 1 sample) | -ELBO (first %d) | -log p(x) bound, IWAE k=%d (first %d) |'
              % (n_iwae, k, n_iwae), '| --- | ---: | ---: | ---: |',
              f'| grey levels (the training target) | {g_elbo:.2f} | {g_elbo_sub:.2f} | {g_iwae:.2f} |',
              f'| binarised, fixed seed (x > uniform) | {b_elbo:.2f} | {b_elbo_sub:.2f} | {b_iwae:.2f} |', '',
              'Only the binarised row is on the scale of published binarised-MNIST numbers (e.g. 86.76 nats for '
              f'a VAE with 50 latent units in the IWAE paper); this model has {info["n_latent"]} latent units and '
              'grey levels as its reconstruction target. The grey-level row is not comparable to them.', '']
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    start, provenance = time.time(), cli.provenance()  # the code as it is when the run starts
    with cli.one_line_errors('evaluate.py', '' if args.train_missing else ' (or run with --train-missing)'):
        cli.check_output_file(args.out, ('.md',))
        cli.check_output_file(args.figure, ('.png',))
        device = cli.device_for(args.gpu)
        if args.train_missing:
            train_missing(args)
        paths = {2: os.path.join(args.runs, 'size14', 'model.npz'), 4: os.path.join(args.runs, 'size7', 'model.npz')}
        models = {factor: load_model(path, fast_decoder.decoder_class(None, device)) for factor, path in paths.items()}
        model28 = load_model(args.model, fast_decoder.decoder_class(None, device))
        for m in (*models.values(), model28):
            m.to_device(device)
        truth = data.load_mnist('test')[0][:args.n, 0]
        results, cases = {}, []
        for factor, model in models.items():
            rows, case = superres_rows(model, truth, factor)
            rows['(d) model trained at 28x28, rendered at 28x28'] = model_render(model28, truth[:, None], 28)
            results[factor] = {name: (psnr(p, truth), bernoulli_nll(p, truth)) for name, p in rows.items()}
            cases.append(case)
        rng = numpy.random.RandomState(args.seed)
        binary = binarize(truth, rng)  # the article's binarisation, as the encoder's input in training
        likelihood = (bounds(model28, truth[:, None], args.iwae_k, args.iwae_images, rng)
                      + bounds(model28, binary[:, None], args.iwae_k, args.iwae_images, rng))
    info = {'command': cli.command_line(os.path.join('experiments', 'evaluate.py'), argv),
            'seconds': time.time() - start, 'n': len(truth), 'k': args.iwae_k, 'n_iwae': min(args.iwae_images, len(truth)),
            'device': f'GPU {args.gpu}' if args.gpu >= 0 else f'CPU ({os.cpu_count()} cores)',
            'x2': cli.shown_path(paths[2]), 'x4': cli.shown_path(paths[4]), 'm28': cli.shown_path(args.model),
            'provenance': provenance, 'n_latent': model28.n_latent}
    report = markdown(results, likelihood, info)
    with cli.one_line_errors('evaluate.py'):
        write_text(args.out, report)
        figures.save_image(args.figure, figure(truth, cases))
    print(report)
    print(f'wrote {args.out} and {args.figure}')


if __name__ == '__main__':
    main()
