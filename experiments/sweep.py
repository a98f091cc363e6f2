"""What would it take for f(u, v, z) to beat interpolation at x2 or x4? A sweep in evaluate.py's protocol.

Models trained on MNIST area-averaged to 14x14 (x2) or 7x7 (x4, --train-size 7) on the pixel-centre grid,
for every latent size in --latents, trained at pixel centres ('point', the article's way) or against the
area average of f over a K x K footprint ('footprintK'), without or with free bits; each rendered at 28x28
from its low-resolution input and compared with the true test digits, beside interpolation of that input
and the mean training digit.

    python experiments/sweep.py --train-missing         # trains what is missing into result/sweep, then the table
    python experiments/sweep.py --train-missing --footprints 1 -e 5 --n-train 60000 --runs result/sweep_point5  # point training only
    python experiments/sweep.py --train-missing --train-size 7 --runs result/sweep_x4   # x4: 7x7 -> 28x28
    (the commands of the committed sweeps: results/sweeps/README.md)
"""
import itertools
import json
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
from svae.measure import bernoulli_nll, psnr, RESAMPLERS, resize
from model_files import load_model
import fast_decoder

def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='sweep.py', description=__doc__.split('\n')[0])
    parser.add_argument('--runs', default=os.path.join('result', 'sweep'), help='where the models live (default result/sweep)')
    parser.add_argument('--train-missing', action='store_true',
                        help='train the models that are missing or have fewer epochs (resumed)')
    parser.add_argument('--train-size', type=int, choices=(14, 7), default=14,
                        help='the low resolution the models see: 14 (x2) or 7 (x4) (default 14)')
    parser.add_argument('--latents', type=cli.positive_int, nargs='+', default=[8, 16, 32], help='latent sizes')
    parser.add_argument('--footprints', type=cli.positive_int, nargs='+', default=[1, 2],
                        help='footprints K, K x K points per pixel; 1: point training (default 1 2)')
    parser.add_argument('--free-bits', type=cli.non_negative_float, nargs='+', default=[0.0, 0.25],
                        help='free bits in nats; 0: no remedy (default 0 0.25)')
    parser.add_argument('--epoch', '-e', type=cli.positive_int, default=2, help='epochs for every model (default 2)')
    parser.add_argument('--n-train', type=cli.positive_int, default=20000, help='training images (default 20000)')
    parser.add_argument('-n', type=cli.positive_int, default=10000, help='test digits to evaluate (default all)')
    parser.add_argument('--out', '-o', default=os.path.join('result', 'superres_sweep.md'),
                        help='the table, .md (default result/superres_sweep.md)')
    parser.add_argument('--figure', default=os.path.join('result', 'superres_sweep.png'),
                        help='the figure, .png (default result/superres_sweep.png)')
    cli.add_device_flag(parser)
    return parser.parse_args(argv)


def configurations(args):
    """(name, train.py flags) of every model of the sweep."""
    for n_latent, footprint, free_bits in itertools.product(args.latents, args.footprints, args.free_bits):
        kind = 'point' if footprint == 1 else f'footprint{footprint}'
        name = f'z{n_latent}_{kind}_freebits{free_bits:g}'
        yield name, ['-z', str(n_latent), '--footprint', str(footprint), '--free-bits', str(free_bits)]


def trained_epochs(out):
    """Epochs a run in out has finished, by its log (an interrupted run has a model.npz too); 0 without a
    model (a clone holds the logs of runs whose models are not committed)."""
    if not os.path.exists(os.path.join(out, 'model.npz')):
        return 0
    try:
        with open(os.path.join(out, 'log')) as f:
            return json.load(f)[-1]['epoch']
    except (OSError, ValueError, IndexError, KeyError):
        return 0


def train_missing(args):
    for name, flags in configurations(args):
        out = os.path.join(args.runs, name)
        if trained_epochs(out) < args.epoch:
            command = [sys.executable, os.path.join(ROOT, 'train.py'), '-g', str(args.gpu), '-e', str(args.epoch), '--n-train',
                       str(args.n_train), '--train-size', str(args.train_size), '--grid', 'center', '--resolution', '28',
                       '--no-progress', '-r', 'auto', '-o', out] + flags  # -r auto: a crashed run resumes
            print(' '.join(command[1:]), flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


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


def rows_for(args, device, truth, low):
    rows = {}
    for name, _ in configurations(args):
        path = os.path.join(args.runs, name, 'model.npz')
        model = load_model(path, fast_decoder.decoder_class(None, device))
        if model.n_in != args.train_size ** 2:
            raise cli.UsageError(f'{path} was trained on {model.n_in} input pixels, not '
                                 f'{args.train_size}x{args.train_size} (--train-size {args.train_size})')
        model.to_device(device)
        rendered = model_render(model, low[:, None], 28)
        own = resize(model_render(model, low[:, None], args.train_size), 28, 'bicubic')
        kl, active = latent_use(model, low[:, None])
        rows[name] = {'a': rendered, 'c': own, 'kl': kl, 'active': active, 'n_latent': model.n_latent,
                      'epochs': trained_epochs(os.path.dirname(path))}
        print(f'{name}: (a) {psnr(rendered, truth):.2f} dB, KL {kl:.2f} nats, {active} active', flush=True)
    return rows


def markdown(args, rows, baselines, truth, info):
    size = args.train_size
    lines = [f'# Sweep at x{28 // size}: what would it take for f(u, v, z) to beat interpolation?', '',
             f'Produced by `{info["command"]}` in {info["seconds"]:.0f} s on {info["device"]}, {info["provenance"]}.',
             f'Models: `{args.runs}/NAME`, trained where missing by `python train.py -e {args.epoch} '
             f'--n-train {args.n_train} --train-size {size} --grid center -z Z --footprint K --free-bits NATS` '
             '(pixel-centre grid, batch 64, Adam, seed 0); epochs: as their logs say. '
             f'Test digits: {len(truth)}; PSNR and NLL as in `superres.md`. KL: mean '
             'KL(q(z|x) || p(z)) over the test inputs, nats; active: latent dimensions whose E[z_d | x] varies '
             'over the test inputs (variance > 0.01).', '',
             '| model (NAME) | z | footprint | free bits | epochs | (a) PSNR (dB) | (a) NLL | (c) PSNR (dB) | KL (nats) | active |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, row in rows.items():
        footprint = name.split('_')[1]
        lines.append(f'| {name} | {row["n_latent"]} | {"1x1" if footprint == "point" else "%sx%s" % (footprint[9:], footprint[9:])} '
                     f'| {name.split("freebits")[1]} | {row["epochs"]} | {psnr(row["a"], truth):.2f} | '
                     f'{bernoulli_nll(row["a"], truth):.4f} | {psnr(row["c"], truth):.2f} | '
                     f'{row["kl"]:.2f} | {row["active"]} |')
    lines += ['', '| baseline | PSNR (dB) | NLL |', '| --- | ---: | ---: |']
    lines += [f'| {name} | {psnr(p, truth):.2f} | {bernoulli_nll(p, truth):.4f} |' for name, p in baselines.items()]
    lines += ['', f'(a): the model rendered at 28x28 from its {size}x{size} input. (c): bicubic upsampling of the model\'s own '
              f'{size}x{size} rendering.', '']
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    start, provenance = time.time(), cli.provenance()
    with cli.one_line_errors('sweep.py', '' if args.train_missing else ' (or run with --train-missing)'):
        cli.check_output_file(args.out, ('.md',))
        cli.check_output_file(args.figure, ('.png',))
        device = cli.device_for(args.gpu)
        if args.train_missing:
            train_missing(args)
        (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
        truth = x_test[:args.n, 0]
        size = args.train_size
        low = data.downsample(truth[:, None], size)[:, 0]
        baselines = {f'(b) {method} upsampling of the {size}x{size} input': resize(low, 28, method)
                     for method in RESAMPLERS}
        baselines['floor: the mean training digit'] = numpy.broadcast_to(x_train[:args.n_train, 0].mean(axis=0), truth.shape)
        rows = rows_for(args, device, truth, low)
    info = {'command': cli.command_line(os.path.join('experiments', 'sweep.py'), argv),
            'seconds': time.time() - start, 'provenance': provenance,
            'device': f'GPU {args.gpu}' if args.gpu >= 0 else f'CPU ({os.cpu_count()} cores)'}
    report = markdown(args, rows, baselines, truth, info)
    best = max(rows, key=lambda name: psnr(rows[name]['a'], truth))
    first = next(iter(rows))  # with the default lists: the first latent size, point, no free bits (the article's training)
    panels = [truth[:8], figures.upscale_nearest(low[:8], 28, 28), baselines[f'(b) lanczos upsampling of the {size}x{size} input'][:8],
              rows[best]['a'][:8], rows[first]['a'][:8]]
    with cli.one_line_errors('sweep.py'):
        write_text(args.out, report)
        figures.save_image(args.figure, figures.tile(numpy.concatenate(panels), cols=8))
    print(report)
    print(f'best: {best}; figure rows: truth, input, Lanczos, {best}, {first}\nwrote {args.out} and {args.figure}')


if __name__ == '__main__':
    main()
