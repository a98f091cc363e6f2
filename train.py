"""Train the article's sampling VAE on MNIST with Chainer's Trainer.

    python train.py -g 0 -z 8        # the article: 50 epochs on GPU 0, latent size 8
    python train.py --test           # a small subset, well under a minute on a CPU
"""
import glob
import json
import math
import os
import re
import sys

import numpy

import compat  # noqa: F401
import chainer
from chainer import training
from chainer.training import extensions

import cli
import data
import figures
from model import SamplingVAE, ModelFileError, render, save_model

FIGURE_DIGITS = 16  # fixed test digits shown in every epoch's figure


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='train.py', description='Train the resolution-independent sampling VAE on MNIST')
    cli.add_device_flag(parser)
    parser.add_argument('--dimz', '-z', type=cli.positive_int, default=8, help='latent size (article: 8)')
    parser.add_argument('--batchsize', '-b', type=cli.positive_int, default=64, help='images per step')
    parser.add_argument('--epoch', '-e', type=cli.positive_int, default=None,
                        help='epochs to train (default 50; 3 with --test)')
    parser.add_argument('--out', '-o', default='results', help='directory for model, log, figures, snapshots')
    parser.add_argument('--resume', '-r', default='',
                        help="snapshot to resume from, or 'auto' for the newest snapshot in --out")
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--resolution', type=cli.resolution, default=(168, 168),
                        help='size of the per-epoch renders, N or WxH (default 168)')
    parser.add_argument('--n-train', type=cli.positive_int, default=None,
                        help='train on the first N training images only (default: all 60000)')
    parser.add_argument('--test', action='store_true', help='tiny run: 512 train and 256 test images')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar (for logs and CI)')
    args = parser.parse_args(argv)
    if args.epoch is None:
        args.epoch = 3 if args.test else 50
    return args


class NonFiniteLoss(Exception):
    pass


def stop_on_nonfinite_loss(trainer):
    """Stop before a NaN/inf loss reaches a snapshot or the model file."""
    loss = trainer.observation.get('main/loss')
    if loss is not None and not math.isfinite(float(loss.array)):
        updater = trainer.updater
        raise NonFiniteLoss(f'loss became {float(loss.array)} at epoch {updater.epoch + 1}, '
                            f'iteration {updater.iteration}; training stopped, last snapshot left intact')


def epoch_figure(model, originals, out, resolution):
    """Every epoch: the fixed test digits, original vs rendered at `resolution` (the article's figure)."""
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def write_figure(trainer):
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            z, _, _ = model.latent(model.xp.asarray(originals))
        images = render(model.decoder, z, *resolution)[:, 0]
        path = os.path.join(out, 'figures', f'epoch_{trainer.updater.epoch:03d}.png')
        figures.save_image(path, figures.comparison(originals[:, 0], images))
    return write_figure


def save_model_each_epoch(model, path):
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def write_model(trainer):
        save_model(model, path)
    return write_model


def newest_snapshot(out):
    snapshots = glob.glob(os.path.join(out, 'snapshot_epoch_*'))
    epoch = lambda p: int(re.search(r'snapshot_epoch_(\d+)$', p).group(1)) if re.search(r'_(\d+)$', p) else -1
    snapshots = [p for p in snapshots if epoch(p) >= 0]
    return max(snapshots, key=epoch) if snapshots else None


def resume(trainer, path, out):
    """Load a snapshot without pickle (a snapshot is data, never code)."""
    if path == 'auto':
        path = newest_snapshot(out)
        if path is None:
            print(f'no snapshot in {out}: starting from scratch')
            return
    if not os.path.isfile(path):
        raise cli.UsageError(f'snapshot {path} does not exist or is not a file')
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            chainer.serializers.NpzDeserializer(npz).load(trainer)
    except Exception as e:
        raise cli.UsageError(f'snapshot {path} cannot be resumed from ({type(e).__name__}: {e})') from None
    print(f'resumed from {path} at epoch {trainer.updater.epoch}, iteration {trainer.updater.iteration}')


def build_trainer(args, device):
    (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
    if args.test:
        x_train, x_test = x_train[:512], x_test[:256]
    elif args.n_train:
        x_train = x_train[:args.n_train]
    model = SamplingVAE(args.dimz)
    model.to_device(device)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)

    train_iter = chainer.iterators.SerialIterator(x_train, args.batchsize)
    test_iter = chainer.iterators.SerialIterator(x_test, args.batchsize, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)

    trainer.extend(stop_on_nonfinite_loss, trigger=(1, 'iteration'), priority=training.PRIORITY_WRITER + 1)
    trainer.extend(extensions.Evaluator(test_iter, model, device=device))
    trainer.extend(extensions.snapshot(filename='snapshot_epoch_{.updater.epoch}', n_retains=2))
    trainer.extend(save_model_each_epoch(model, os.path.join(args.out, 'model.npz')))
    trainer.extend(epoch_figure(model, x_test[:FIGURE_DIGITS], args.out, args.resolution))
    trainer.extend(extensions.LogReport())
    trainer.extend(extensions.PlotReport(['main/loss', 'validation/main/loss'], 'epoch', file_name='loss.png'))
    trainer.extend(extensions.PrintReport(['epoch', 'main/loss', 'main/rec', 'main/kl', 'validation/main/loss',
                                           'validation/main/rec', 'validation/main/kl', 'elapsed_time']))
    if not args.no_progress:
        trainer.extend(extensions.ProgressBar(update_interval=10))
    return trainer


def main(argv=None):
    args = parse_args(argv)
    prog = 'train.py'
    try:
        device = cli.device_for(args.gpu)
        cli.writable_directory(args.out)
        numpy.random.seed(args.seed)
        if device.xp is not numpy:
            device.xp.random.seed(args.seed)
        trainer = build_trainer(args, device)
        if args.resume:
            resume(trainer, args.resume, args.out)
        trainer.run(show_loop_exception_msg=False)
    except (cli.UsageError, data.DataFileError, ModelFileError) as e:
        cli.fail(prog, str(e))
    except NonFiniteLoss as e:
        cli.fail(prog, str(e), status=1)
    except KeyboardInterrupt:
        cli.fail(prog, 'interrupted; resume with -r auto', status=130)
    print(f'model saved to {os.path.join(args.out, "model.npz")}')


if __name__ == '__main__':
    main()
