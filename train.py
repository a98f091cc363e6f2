"""Train the article's sampling VAE on MNIST with Chainer's Trainer.

    python train.py -g 0 -z 8        # the article: 50 epochs on GPU 0, latent size 8
    python train.py --model affine3x # the article's repository's second model (affine_model.py)
    python train.py --test           # a small subset, well under a minute on a CPU (into result_test/)
"""
import glob
import json
import math
import os
import re
import shutil
import sys
import zipfile

import svae
import numpy

import chainer
from chainer import training
from chainer.training import extensions

from svae import cli
from svae import data
import decoders
import fast_decoder
from svae import figures
from svae.files import WriteError, atomic_path, remove_temporary_files
from affine_model import AffineSamplingVAE, latents_and_poses, pose_removed, warm_up_factor
from model import latent_means, SamplingDecoder, SamplingVAE
from model_files import check_coordinates, is_article_snapshot, ModelFileError, save_model
from rendering import render

FIGURE_DIGITS = data.ARTICLE_DIGITS[50]  # the published epoch-50 figure's test digits, in its order, every epoch


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='train.py', description='Train the resolution-independent sampling VAE on MNIST')
    cli.add_device_flag(parser)
    parser.add_argument('--model', '-m', choices=('sampling6x', 'affine3x'), default='sampling6x',
                        help="sampling6x: the article's model (default); affine3x: its repository's second model, "
                             'which learns each digit\'s pose (affine_model.py)')
    parser.add_argument('--dimz', '-z', type=cli.positive_int, default=8, help='latent size (default 8, the article\'s)')
    parser.add_argument('--batchsize', '-b', type=cli.positive_int, default=64, help='images per step (default 64)')
    parser.add_argument('--epoch', '-e', type=cli.positive_int, default=None,
                        help='epochs to train (default 50; 3 with --test)')
    parser.add_argument('--out', '-o', default=None,
                        help='directory for model, log, figures, snapshots (default result; result_test with --test)')
    parser.add_argument('--resume', '-r', default='',
                        help="snapshot to resume from, or 'auto' for the newest snapshot in --out")
    parser.add_argument('--force', action='store_true',
                        help='start afresh in an --out that holds an earlier run (its model and snapshots are replaced)')
    parser.add_argument('--seed', type=cli.non_negative_int, default=0, help='random seed (default 0)')
    parser.add_argument('--resolution', type=cli.resolution, default=None,
                        help="size of the per-epoch renders, N or WxH (default 168, the article's; 84 with --model affine3x)")
    parser.add_argument('--n-train', type=cli.positive_int, default=None,
                        help='train on the first N training images only (default: all 60000)')
    parser.add_argument('--test', action='store_true', help='tiny run: 512 train and 256 test images')
    cli.add_decoder_flag(parser)
    parser.add_argument('--train-size', type=cli.positive_int, default=28,
                        help='train on MNIST area-averaged to NxN (N divides 28; default 28)')
    parser.add_argument('--grid', choices=('linspace', 'center'), default='linspace',
                        help="(u, v) of the pixels: the article's linspace(-1, 1) (default), or pixel centres "
                             '(experiments/superres.py)')
    parser.add_argument('--footprint', type=cli.positive_int, default=1, metavar='K',
                        help='opt-in, with --grid center: compare each pixel with the mean of f over K x K points '
                             'of its area instead of f at its centre (default 1: the article)')
    parser.add_argument('--free-bits', type=cli.non_negative_float, default=0.0, metavar='NATS',
                        help='opt-in: minimise rec + sum_d max(NATS, KL_d) so that latent dimensions are not '
                             'pushed to the prior below NATS nats (default 0: the article\'s ELBO)')
    parser.add_argument('--beta', type=cli.non_negative_float, default=1.0,
                        help='opt-in: minimise rec + BETA times the KL term; 0 trains a plain autoencoder '
                             '(default 1: the article\'s ELBO)')
    parser.add_argument('--fourier', type=cli.non_negative_int, default=0, metavar='K',
                        help="opt-in: feed f sin and cos of 2^k pi u and 2^k pi v for k < K besides (u, v) "
                             "(Fourier features; the article's decoder, not the fast one; default 0: the article)")
    parser.add_argument('--local-grid', type=cli.positive_int, default=1, metavar='G',
                        help="opt-in: z as a G x G grid of latent vectors (-z in all), f at (u, v) seeing their "
                             "bilinear blend there (local latents; the article's decoder; default 1: the article)")
    parser.add_argument('--tf32', action='store_true',
                        help='GPU: let cuBLAS multiply float32 matrices in TF32 (faster, changes numerics)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar (for logs and CI)')
    args = parser.parse_args(argv)
    if 28 % args.train_size:
        parser.error(f'--train-size must divide 28 (1, 2, 4, 7, 14, 28), not {args.train_size}')
    if args.footprint > 1 and args.grid != 'center':
        parser.error('--footprint needs --grid center (a footprint is the area around a pixel centre)')
    opt_in = [flag for flag, given in (('--fourier', args.fourier), ('--local-grid', args.local_grid > 1)) if given]
    if opt_in and args.decoder == 'fast':
        parser.error(f"{opt_in[0]} needs the article's decoder (--decoder faithful): the fast decoder takes (u, v) and "
                     'one z per image only')
    if len(opt_in) > 1:
        parser.error('--fourier and --local-grid are not combined')
    if args.dimz % (args.local_grid ** 2):
        parser.error(f'-z {args.dimz} does not split into {args.local_grid} x {args.local_grid} cells of latent vectors')
    if args.epoch is None:
        args.epoch = 3 if args.test else 50
    if args.resolution is None:
        args.resolution = (84, 84) if args.model == 'affine3x' else (168, 168)
    if args.out is None:
        args.out = 'result_test' if args.test else 'result'
    if args.resume and args.force:
        parser.error('-r resumes the run in --out and --force replaces it: give one of them')
    if args.model == 'affine3x':
        given = {'--train-size': args.train_size != 28, '--grid center': args.grid != 'linspace',
                 '--footprint': args.footprint != 1, '--free-bits': args.free_bits != 0, '--beta': args.beta != 1,
                 '--fourier': args.fourier != 0, '--local-grid': args.local_grid != 1, '--decoder fast': args.decoder == 'fast'}
        article_only = [flag for flag, is_given in given.items() if is_given]
        if article_only:
            parser.error(f'{", ".join(article_only)}: options of the sampling6x model, not of affine3x')
    return args


class NonFiniteLoss(svae.Error):
    """The loss became NaN or infinite; training stopped before a snapshot or model file held it."""
    status = 1


class StopOnNonfiniteLoss(training.Extension):
    """Stop before a NaN/inf loss reaches a snapshot or the model file.

    Losses are collected every iteration and checked every `check_every` iterations and before any
    snapshot, so a GPU is not made to wait for the host at each step."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_WRITER + 1  # before the snapshot and model writers of the same iteration

    def __init__(self, check_every=100):
        self.check_every = check_every
        self.pending = []  # (epoch, iteration, loss as a 0-d array, possibly on the GPU)

    def __call__(self, trainer):
        updater = trainer.updater
        self.pending.append((updater.epoch_detail, updater.iteration, trainer.observation['main/loss'].array))
        if updater.is_new_epoch or updater.iteration % self.check_every == 0:
            self.check()

    def check(self):
        if not self.pending:
            return
        losses = chainer.backend.CpuDevice().send(
            chainer.backend.get_array_module(self.pending[0][2]).stack([loss for _, _, loss in self.pending]))
        bad = numpy.flatnonzero(~numpy.isfinite(losses))
        pending, self.pending = self.pending, []
        if len(bad):
            epoch_detail, iteration, _ = pending[bad[0]]
            raise NonFiniteLoss(f'loss became {losses[bad[0]]} at epoch {math.ceil(epoch_detail)}, '
                                f'iteration {iteration}; training stopped, last snapshot left intact')


class AtomicPlotReport(extensions.PlotReport):
    """PlotReport whose figure goes to a temporary file renamed over loss.png: a failed write keeps the
    previous figure (Chainer's own writes the file in place)."""

    def __call__(self, trainer):
        final = self._file_name
        with atomic_path(os.path.join(trainer.out, final)) as tmp:
            self._file_name = os.path.relpath(tmp, trainer.out)
            try:
                super().__call__(trainer)
            finally:
                self._file_name = final


class PlainText:
    """stdout without the escape code PrintReport writes to erase a progress bar (for pipes and files)."""

    def write(self, text):
        sys.stdout.write(text.replace('\033[J', ''))

    def flush(self):
        sys.stdout.flush()


class RandomStreams(training.Extension):
    """The random stream of a run, so that a run resumed from a snapshot draws, epoch for epoch, what the
    run that was not stopped draws (the article's code does not seed; a seeded run that replayed its
    stream after a resume would train its later epochs on the draws of its first ones).

    NumPy's global generator (the shuffles; on the CPU also the binarisations and z noise) is saved in
    every snapshot. CuPy's generator cannot be saved: on a GPU it is seeded again from (seed, epoch)
    after every epoch's evaluation, and from the same pair when a run resumes."""
    trigger = (1, 'epoch')
    priority = training.PRIORITY_READER - 1  # after the Evaluator's draws, before the snapshot

    def __init__(self, seed, xp):
        self.seed, self.xp = seed, xp

    def __call__(self, trainer):
        self.seed_device(trainer.updater.epoch)

    def seed_device(self, epoch):
        if self.xp is not numpy:
            self.xp.random.seed(device_seed(self.seed, epoch))

    def serialize(self, serializer):
        name, keys, position, has_gauss, cached_gaussian = numpy.random.get_state()
        keys = serializer('keys', keys)
        position = serializer('position', position)
        has_gauss = serializer('has_gauss', has_gauss)
        cached_gaussian = serializer('cached_gaussian', cached_gaussian)
        if isinstance(serializer, chainer.serializer.Deserializer):
            numpy.random.set_state((name, keys, position, has_gauss, cached_gaussian))


def device_seed(seed, epoch):
    """The seed of the GPU's generator after `epoch` epochs of a run seeded with `seed`."""
    return int(numpy.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def resident_batches(images, device):
    """Keep the training images on the device; the iterator yields indices and a batch is one gather.
    The same batches as iterating over the images (the shuffle depends only on the length)."""
    images = device.send(images)

    @chainer.dataset.converter()
    def gather(indices, device):
        return images[device.xp.asarray(numpy.asarray(indices))]
    return numpy.arange(len(images)), gather


def epoch_figure(model, originals, out, resolution, seed):
    """Every epoch, the article's figure: the fixed test digits above their renders at `resolution`,
    encoded as the article does from a random binarisation, seeded by (seed, epoch) so that the figure
    of an epoch is the same in a resumed run and leaves the training's random numbers alone."""
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def write_figure(trainer):
        epoch = trainer.updater.epoch
        z = latent_means(model, originals, seed=[seed, epoch])
        images = render(model.decoder, z, *resolution, centers=model.centers)[:, 0]
        path = os.path.join(out, 'figures', f'epoch_{epoch:03d}.png')
        figures.save_image(path, figures.article_layout(originals[:, 0], images))
    return write_figure


def silent_reporter(model):
    """A reporter for the model's links whose reports go nowhere."""
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    reporter.add_observers('main', model.namedlinks(skipself=True))
    return reporter


def affine_epoch_figure(model, originals, out, resolution):
    """Every epoch, the affine3x figure of the article's repository: the digits (nearest-upscaled), their
    renders with each digit's own pose, and with the pose removed, three 4x4 grids one above the other."""
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def write_figure(trainer):
        with silent_reporter(model).scope({}):  # the decoder's pose report stays out of the epoch's log
            z, pose = latents_and_poses(model, originals)
            posed = render(model.decoder, z, *resolution, pose=pose)[:, 0]
            normalised = render(model.decoder, z, *resolution, pose=pose_removed(pose))[:, 0]
        path = os.path.join(out, 'figures', f'epoch_{trainer.updater.epoch:03d}.png')
        figures.save_image(path, figures.article_layout(originals[:, 0], posed, normalised))
    return write_figure


def warm_up(model):
    """After each epoch, the factor on affine3x's pose head for the next (0 in the first epoch, full from the
    sixth), as the article's code sets it after its evaluation and figure. The model records it: model.npz,
    written before, holds the factor its last epoch trained with; the snapshot, written after, the next one's."""
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER - 1)  # before the snapshot
    def set_warm_up(trainer):
        model.warm_up = warm_up_factor(trainer.updater.epoch)
    return set_warm_up


def save_model_each_epoch(model, path):
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def write_model(trainer):
        save_model(model, path)
    return write_model


def newest_snapshot(out):
    """The snapshot_epoch_N in `out` with the largest N, or None."""
    epochs = {}
    for path in glob.glob(os.path.join(out, 'snapshot_epoch_*')):
        match = re.fullmatch(r'snapshot_epoch_(\d+)', os.path.basename(path))
        if match:
            epochs[int(match.group(1))] = path
    return epochs[max(epochs)] if epochs else None


def epochs_logged(out):
    """The last epoch in out's log (0 without one)."""
    try:
        with open(os.path.join(out, 'log')) as f:
            return max((entry.get('epoch', 0) for entry in json.load(f)), default=0)
    except (OSError, ValueError, AttributeError):
        return 0


def remove_interrupted_writes(out):
    """What a run killed while writing leaves in `out`: atomic_path's temporary files, and the temporary
    folders Chainer's snapshot (tmpsnapshot_epoch_N...) and log (log + 8 characters) writers use."""
    for directory in (out, os.path.join(out, 'figures')):
        remove_temporary_files(directory)
    for path in glob.glob(os.path.join(glob.escape(out), 'tmpsnapshot_epoch_*')) + \
            glob.glob(os.path.join(glob.escape(out), 'log' + '[a-z0-9_]' * 8)):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def start_afresh(out, force):
    """A new run never silently replaces an earlier one; with --force it does, and drops the earlier
    snapshots so that -r auto can never go back to them."""
    snapshots = glob.glob(os.path.join(out, 'snapshot_epoch_*'))
    if not force and (snapshots or os.path.exists(os.path.join(out, 'model.npz'))):
        raise cli.UsageError(f'{out} holds an earlier run (model.npz or snapshots); resume it with -r auto, '
                             'start afresh there with --force, or choose another -o')
    for path in snapshots:
        os.remove(path)


def check_same_run(npz, path, trainer):
    """A snapshot resumes only the run it was taken from: same model, latent size, input size and data."""
    model, iterator = trainer.updater.get_optimizer('main').target, trainer.updater.get_iterator('main')
    kind = 'affine3x' if 'updater/model:main/e5_affine/W' in npz.files else 'sampling6x'
    if kind != model.kind:
        raise cli.UsageError(f'snapshot {path} is of the {kind} model, this run trains {model.kind} '
                             f'(--model {kind} resumes it)')
    first, last = ('e1', 'e5') if kind == 'affine3x' else ('encoder1', 'encoder_mu')
    recorded = {'latent size': npz[f'updater/model:main/{last}/W'].shape[0] // (2 if kind == 'affine3x' else 1),
                'input pixels': npz[f'updater/model:main/{first}/W'].shape[1]}
    current = {'latent size': model.n_latent, 'input pixels': model.n_in}
    if 'updater/iterator:main/order' in npz.files and npz['updater/iterator:main/order'].ndim == 1:
        recorded['training images'] = len(npz['updater/iterator:main/order'])
        current['training images'] = len(iterator.dataset)
    for what in recorded:
        if recorded[what] != current[what]:
            raise cli.UsageError(f'snapshot {path} is of another run: {what} {recorded[what]}, this run '
                                 f'{current[what]} (use the flags of that run, or start afresh with --force)')


def resume(trainer, path, out):
    """Load a snapshot without pickle (a snapshot is data, never code); False if -r auto finds none."""
    if path == 'auto':
        path = newest_snapshot(out)
        if path is None and os.path.exists(os.path.join(out, 'model.npz')) and epochs_logged(out) <= 1:
            # stopped between the first epoch's model file and its snapshot: nothing to resume but that epoch
            print(f'no snapshot in {out}: the run stopped before its first snapshot; starting again from epoch 1')
            os.remove(os.path.join(out, 'model.npz'))
            return False
        if path is None and os.path.exists(os.path.join(out, 'model.npz')):
            raise cli.UsageError(f'{out} holds a model of {epochs_logged(out)} epochs but no snapshot to resume it '
                                 'from: start afresh there with --force, or choose another -o')
        if path is None:
            print(f'no snapshot in {out}: starting from scratch')
            return False
    if not os.path.isfile(path):
        raise cli.UsageError(f'snapshot {path} does not exist or is not a file')
    if not zipfile.is_zipfile(path):
        raise cli.UsageError(f'snapshot {path} is corrupt or not a snapshot written by train.py')
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            if is_article_snapshot(npz.files):
                raise cli.UsageError(f'snapshot {path} was written by the article\'s own code, whose training state '
                                     'this train.py does not resume; its model converts to a model file with: '
                                     f'python tools/convert_model.py {path} NEW.npz')
            if 'updater/model:main/decoder/linear1/W' in npz.files:
                recorded = npz['updater/model:main/coordinates'] if 'updater/model:main/coordinates' in npz.files else None
                check_coordinates(recorded, f'snapshot {path}', 'it cannot be resumed: start afresh with --force')
                check_same_run(npz, path, trainer)
            is_snapshot = any(key.startswith('updater/') for key in npz.files)
            if is_snapshot and 'extensions/RandomStreams/keys' not in npz.files:
                raise cli.UsageError(f'snapshot {path} was written by an earlier train.py, which did not save the '
                                     'random state: it cannot be resumed exactly; start afresh with --force')
            chainer.serializers.NpzDeserializer(npz).load(trainer)
    except (ModelFileError, cli.UsageError):
        raise
    except Exception as e:
        raise cli.UsageError(f'snapshot {path} cannot be resumed from ({type(e).__name__}: {e})') from None
    # PlotReport does not save its trigger, whose fresh state would add a stray point at once; a
    # negative value makes the trigger read the position from the updater instead.
    trainer.get_extension('PlotReport')._trigger._previous_epoch_detail = -1.0
    trainer.get_extension('RandomStreams').seed_device(trainer.updater.epoch)
    print(f'resumed from {path} at epoch {trainer.updater.epoch}, iteration {trainer.updater.iteration}')
    return True


def build_trainer(args, device):
    (x_train, _), (x_test, _) = data.load_mnist('train'), data.load_mnist('test')
    figure_digits = x_test[FIGURE_DIGITS]
    if args.train_size != 28:
        x_train, x_test = data.downsample(x_train, args.train_size), data.downsample(x_test, args.train_size)
        figure_digits = data.downsample(figure_digits, args.train_size)
    if args.test:
        x_train, x_test = x_train[:512], x_test[:256]
    elif args.n_train:
        if args.n_train > len(x_train):
            raise cli.UsageError(f'--n-train {args.n_train}: the training set has {len(x_train)} images')
        x_train = x_train[:args.n_train]
    if args.batchsize > len(x_train):  # each step would pass over the set several times, each pass counted as an epoch
        raise cli.UsageError(f'-b {args.batchsize} is larger than the training set ({len(x_train)} images)')
    if args.model == 'affine3x':
        model, fast = AffineSamplingVAE(args.dimz), False
    else:
        decoder_class = (decoders.opt_in_decoder(args.fourier, args.local_grid)
                         or fast_decoder.decoder_class(args.decoder, device))
        fast = decoder_class is not SamplingDecoder
        model = SamplingVAE(args.dimz, n_in=args.train_size ** 2, centers=args.grid == 'center',
                            decoder_class=decoder_class, footprint=args.footprint, free_bits=args.free_bits,
                            beta=args.beta)
    model.to_device(device)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)

    if not fast:
        train_data, converter = x_train, chainer.dataset.concat_examples
    else:
        train_data, converter = resident_batches(x_train, device)
    train_iter = chainer.iterators.SerialIterator(train_data, args.batchsize)
    test_iter = chainer.iterators.SerialIterator(x_test, args.batchsize, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(train_iter, optimizer, converter=converter, device=device)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)

    trainer.extend(StopOnNonfiniteLoss())
    trainer.extend(RandomStreams(args.seed, device.xp), name='RandomStreams')
    trainer.extend(extensions.Evaluator(test_iter, model, device=device))
    trainer.extend(extensions.snapshot(filename='snapshot_epoch_{.updater.epoch}', n_retains=2))
    trainer.extend(save_model_each_epoch(model, os.path.join(args.out, 'model.npz')))
    if args.model == 'affine3x':
        trainer.extend(affine_epoch_figure(model, figure_digits, args.out, args.resolution))
        trainer.extend(warm_up(model))
    else:
        trainer.extend(epoch_figure(model, figure_digits, args.out, args.resolution, args.seed))
    trainer.extend(extensions.LogReport())
    trainer.extend(AtomicPlotReport(['main/loss', 'validation/main/loss'], 'epoch', file_name='loss.png'),
                   name='PlotReport')
    terminal = sys.stdout.isatty()
    # the article's columns (x_loss per pixel, z_loss per latent dimension), then the negative ELBO in nats per image
    pose = [f'main/decoder/{name}' for name in ('scale', 'theta', 'tx', 'ty')] if args.model == 'affine3x' else []
    trainer.extend(extensions.PrintReport(['epoch', 'main/x_loss', 'validation/main/x_loss', 'main/z_loss',
                                           'validation/main/z_loss'] + pose + ['main/loss', 'validation/main/loss',
                                                                                'elapsed_time'],
                                          out=sys.stdout if terminal else PlainText()))
    if not args.no_progress and terminal:  # a bar's escape codes do not belong in a log file
        trainer.extend(extensions.ProgressBar(update_interval=10))
    return trainer


def main(argv=None):
    args = parse_args(argv)
    prog = 'train.py'
    try:
        with cli.one_line_errors(prog):  # svae.Error, NonFiniteLoss among them: one line and its status
            device = cli.device_for(args.gpu)
            if args.tf32:
                os.environ['CUPY_TF32'] = '1'  # CuPy reads it at its first float32 matrix product
            numpy.random.seed(args.seed)  # shuffling, binarisation and z noise on CPU
            if device.xp is not numpy:
                device.xp.random.seed(args.seed)
            trainer = build_trainer(args, device)
            if not (args.resume and resume(trainer, args.resume, args.out)):
                start_afresh(args.out, args.force)
            cli.writable_directory(args.out)  # after the checks above, so that a refused run leaves no new directory
            remove_interrupted_writes(args.out)
            if trainer.updater.epoch >= args.epoch:
                print(f'{args.out} has trained {trainer.updater.epoch} epochs already; nothing to do for -e {args.epoch}')
                return
            try:
                with fast_decoder.training_threads(trainer.updater.get_optimizer('main').target):
                    trainer.run(show_loop_exception_msg=False)
            except OSError as e:  # Chainer's snapshot and log writers, which write to a temporary directory first
                raise WriteError(f'cannot write in {args.out} ({e.strerror or e}); the files written before are '
                                 'intact: resume with -r auto once it can be written') from None
    except KeyboardInterrupt:
        if newest_snapshot(args.out) is None:
            cli.fail(prog, 'interrupted before the first snapshot (written after each epoch): nothing to resume, '
                           'run again to start over', status=130)
        cli.fail(prog, 'interrupted; resume with -r auto', status=130)
    print(f'model saved to {os.path.join(args.out, "model.npz")}')


if __name__ == '__main__':
    main()
