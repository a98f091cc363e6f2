"""Render digits from a trained model at any resolution, and explore its latent space.

    python render.py --resolution 168               # 16 test digits: originals (left), renders (right)
    python render.py --resolution 320x200           # any width x height
    python render.py --sample 16 --seed 1           # digits decoded from z ~ N(0, I)
    python render.py --interpolate 0 1 --frames 24  # GIF (and PNG strip) along the latent path 0 -> 1
    python render.py --traverse --index 0           # one row per latent dimension, offsets -3..3
    python render.py --region -0.2 -0.2 0.2 0.2 --resolution 2048 -n 1   # zoom: u (rows) from -0.2 to 0.2, v (columns) likewise

Each mode prints the model it used and writes one file (the interpolation also a strip) named after
what it drew, in renders/MODEL/ in the current directory (MODEL: the model's folder, e.g. result or
article_50_epochs) unless -o says otherwise.
"""
import os

import svae
import numpy


from svae import cli
from svae import data
from svae import figures
from svae import files
from affine_model import given_pose, latents_and_poses, pose_removed
from model import latent_means
from rendering import render
import model_files
import fast_decoder

IMAGE_BYTES_PER_PIXEL = 24  # render, upscaled original and both grid halves in float32, then index and RGB bytes
# Flags that only one mode reads, with their defaults: given to another mode they are refused, not ignored.
MODE_FLAGS = {'n': ('-n', 'reconstruction', 16), 'index': ('--index', 'traverse', 0),
              'steps': ('--steps', 'traverse', 7), 'frames': ('--frames', 'interpolate', 16),
              'fps': ('--fps', 'interpolate', 8)}


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='render.py',
                                description='Render digits from a trained sampling VAE at any resolution')
    parser.add_argument('--model', '-m', default=None,
                        help='model file written by train.py (default: result/model.npz if it exists, '
                             'else the pretrained model in results/)')
    parser.add_argument('--out', '-o', default=None,
                        help='output file, .png (.gif for --interpolate) (default: renders/MODEL/NAME in the current directory, MODEL the model file\'s folder)')
    cli.add_device_flag(parser)
    parser.add_argument('--resolution', type=cli.resolution, default=(168, 168), help='N or WxH (default 168)')
    parser.add_argument('-n', type=cli.positive_int, help='how many test digits to reconstruct (default 16)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--sample', type=cli.positive_int, metavar='N', help='N digits from z ~ N(0, I)')
    mode.add_argument('--interpolate', nargs=2, metavar=('A', 'B'),
                      help="GIF along the straight latent path between test digits A and B (indices or 'random')")
    mode.add_argument('--traverse', action='store_true',
                      help='vary one latent dimension at a time by -3..3 around the z of test digit --index')
    parser.add_argument('--index', type=cli.non_negative_int, help='test digit for --traverse (default 0)')
    parser.add_argument('--steps', type=cli.positive_int, help='columns of --traverse (default 7)')
    parser.add_argument('--frames', type=cli.positive_int, help='frames of --interpolate (default 16)')
    parser.add_argument('--fps', type=cli.positive_int, help='frames per second of the GIF (default 8)')
    parser.add_argument('--region', type=float, nargs=4, metavar=('U0', 'V0', 'U1', 'V1'),
                        help='render only this rectangle of the (u, v) plane, the image being [-1, 1] x [-1, 1]: '
                             'u is vertical (U0 the top row, U1 the bottom row), v horizontal (V0 the left '
                             'column, V1 the right column), as in the article')
    parser.add_argument('--seed', type=int, default=None, help="random seed for --sample and --interpolate random")
    cli.add_decoder_flag(parser)
    parser.add_argument('--pose', type=cli.pose, default='encoded', metavar='POSE',
                        help="affine3x models: 'encoded' (each digit's own, the default), 'removed' (the mean scale, "
                             "no rotation, no shift) or S,DEG,TX,TY (scale, rotation in degrees, shift in (-1, 1))")
    parser.add_argument('--colormap', default='gray', help='matplotlib colormap name (default gray)')
    args = parser.parse_args(argv)
    args.mode = ('sample' if args.sample else 'interpolate' if args.interpolate
                 else 'traverse' if args.traverse else 'reconstruction')
    for name, (flag, mode, default) in MODE_FLAGS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.mode != mode:
            parser.error(f'{flag} applies to {mode_description(mode)} only, not to {mode_description(args.mode)}')
    uses_seed = args.sample or (args.interpolate and 'random' in args.interpolate)
    if args.seed is not None and not uses_seed:
        parser.error("--seed applies to --sample and --interpolate with 'random' only")
    args.seed = args.seed or 0
    if args.colormap not in matplotlib_colormaps():
        parser.error(f'unknown colormap {args.colormap!r} (try gray, viridis, magma, ...)')
    if args.region and (args.region[0] == args.region[2] or args.region[1] == args.region[3]):
        parser.error('--region needs U0 != U1 and V0 != V1')
    if args.interpolate:
        rng = numpy.random.RandomState(args.seed)
        args.interpolate = [digit_index(parser, a, rng) for a in args.interpolate]
    if args.index >= data.MNIST_TEST_SIZE:
        parser.error(f'--index must be below {data.MNIST_TEST_SIZE}')
    return args


def mode_description(mode):
    return {'reconstruction': 'reconstructions of test digits (no mode flag)', 'sample': '--sample',
            'interpolate': '--interpolate', 'traverse': '--traverse'}[mode]


def digit_index(parser, text, rng):
    """A test digit index; 'random' is drawn here, so the name of the output can say which digit it was."""
    if text == 'random':
        return int(rng.randint(data.MNIST_TEST_SIZE))
    if not text.isdigit() or int(text) >= data.MNIST_TEST_SIZE:
        parser.error(f"--interpolate takes test indices 0..{data.MNIST_TEST_SIZE - 1} or 'random', not {text!r}")
    return int(text)


def matplotlib_colormaps():
    import matplotlib
    return list(matplotlib.colormaps)


def encode(model, x):
    """z = mu of the grey digits x and, for an affine3x model, their raw poses (None for sampling6x)."""
    if model.kind == 'affine3x':
        return latents_and_poses(model, x)
    return latent_means(model, x), None


def chosen_pose(model, pose, args):
    """The raw poses an affine3x model draws with: as encoded, removed (the mean log scale, no rotation,
    no shift) or the one --pose gives; None for the article's model, which has none."""
    if model.kind != 'affine3x' or args.pose == 'encoded':
        return pose
    if args.pose == 'removed':
        return pose_removed(pose)
    return numpy.repeat(given_pose(*args.pose), len(pose), axis=0)


def draw(model, z, args, pose=None):
    """Probabilities (N, H, W) of latents z (and poses) at the chosen resolution and region."""
    region = args.region or (-1.0, -1.0, 1.0, 1.0)
    pose = chosen_pose(model, pose, args)
    return render(model.decoder, z, *args.resolution, region=region, centers=model.centers, pose=pose)[:, 0]


def reconstruction(model, args, x_test):
    originals = x_test[:args.n]
    z, pose = encode(model, originals)
    images = draw(model, z, args, pose)
    if args.region:  # a zoom has no original to compare with
        return figures.tile(images, min(4, len(images)))
    return figures.comparison(originals[:, 0], images)


def samples(model, args):
    z = numpy.random.RandomState(args.seed).standard_normal((args.sample, model.n_latent)).astype(numpy.float32)
    identity = numpy.zeros((len(z), 4), numpy.float32) if model.kind == 'affine3x' else None  # no digit, no pose
    return figures.tile(draw(model, z, args, identity))


def traverse(model, args, x_test):
    z, pose = encode(model, x_test[args.index:args.index + 1])
    offsets = numpy.linspace(-3.0, 3.0, args.steps, dtype=numpy.float32)
    grid = numpy.repeat(z[None], model.n_latent, axis=0).repeat(args.steps, axis=1)  # (dims, steps, n)
    for dim in range(model.n_latent):
        grid[dim, :, dim] += offsets
    poses = None if pose is None else numpy.repeat(pose, model.n_latent * args.steps, axis=0)
    return figures.tile(draw(model, grid.reshape(-1, model.n_latent), args, poses), cols=args.steps)


def interpolation(model, args, x_test):
    z, pose = encode(model, x_test[args.interpolate])
    t = numpy.linspace(0.0, 1.0, args.frames, dtype=numpy.float32)[:, None]
    path = lambda ends: (1 - t) * ends[0] + t * ends[1]
    return draw(model, path(z), args, None if pose is None else path(pose))


def default_name(args):
    """A file name that says what was drawn: mode, digits or seed, size, region, colormap."""
    height, width = args.resolution
    size = f'{width}x{height}'
    if args.sample:
        name = f'samples{args.sample}_seed{args.seed}_{size}'
    elif args.interpolate:
        name = f'interpolate_{args.interpolate[0]}_{args.interpolate[1]}_{size}'
    elif args.traverse:
        name = f'traverse_{args.index}_{size}'
    else:
        name = f'render_digits0-{args.n - 1}_{size}'
    if args.region:
        name += '_region_' + '_'.join(f'{x:g}' for x in args.region)
    if args.colormap != 'gray':
        name += f'_{args.colormap}'
    if args.pose != 'encoded':  # affine3x: a pose removed or given is another picture of the same digits
        name += '_pose_' + (args.pose if args.pose == 'removed' else '_'.join(f'{x:g}' for x in args.pose))
    return name + ('.gif' if args.interpolate else '.png')


def default_output(args, path):
    return cli.renders_path(path, default_name(args))


def image_count(args, n_latent):
    if args.sample:
        return args.sample
    if args.interpolate:
        return 2 * args.frames  # the frames and the strip
    if args.traverse:
        return n_latent * args.steps
    return 2 * args.n


def run(args):
    """Draw what args ask for; returns the lines to print (the model used, then the files written)."""
    device = cli.device_for(args.gpu)
    path = cli.model_path(args.model)
    out = args.out or default_output(args, path)
    cli.check_output_file(out, ('.gif',) if args.interpolate else ('.png',))
    model = model_files.load_any_model(path, fast_decoder.decoder_class(args.decoder, device))
    if model.kind == 'affine3x' and args.decoder == 'fast':
        raise cli.UsageError(f'--decoder applies to the article\'s model only; {path} holds an affine3x model')
    if model.kind != 'affine3x' and args.pose != 'encoded':
        raise cli.UsageError(f'--pose applies to affine3x models only; {path} holds the article\'s model, '
                             'which has no pose')
    height, width = args.resolution
    count = image_count(args, model.n_latent)
    cli.check_memory(count * height * width * IMAGE_BYTES_PER_PIXEL, f'{count} images at {width}x{height}')
    model.to_device(device)
    with files.new_directories_removed_on_failure(os.path.dirname(out)):
        return [f'model: {cli.shown_path(path)}'] + draw_files(model, args, out)


def draw_files(model, args, out):
    """Draw and write what args ask for; the paths written."""
    lines = []
    if args.sample:
        return lines + [figures.save_image(out, samples(model, args), args.colormap)]
    x_test, _ = data.load_mnist('test')
    side = int(round(model.n_in ** 0.5))
    if side != 28:  # a model trained on downsampled digits (train.py --train-size) encodes those
        x_test = data.downsample(x_test, side)
    if args.traverse:
        return lines + [figures.save_image(out, traverse(model, args, x_test), args.colormap)]
    if args.interpolate:
        frames = interpolation(model, args, x_test)
        strip = os.path.splitext(out)[0] + '_strip.png'
        return lines + [f'test digits {args.interpolate[0]} -> {args.interpolate[1]}',
                        figures.save_gif(out, frames, args.fps, args.colormap),
                        figures.save_image(strip, figures.tile(frames, cols=len(frames)), args.colormap)]
    return lines + [figures.save_image(out, reconstruction(model, args, x_test), args.colormap)]


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('render.py'):
        lines = run(args)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
