"""What poses an affine3x model learned: the spread of scale, rotation and shift over the 10000 test digits,
and the most rotated digits drawn with their pose and with it removed.

    python experiments/poses.py -m result_affine/model.npz      # into result/poses.md and result/poses.png
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
import svae
import numpy

from svae import cli
from svae import data
from svae import figures
from svae.files import write_text
from affine_model import latents_and_poses, pose_removed
from model_files import load_affine_model
from rendering import render

SHOWN = 8  # the digits of the smallest and of the largest rotation angles in the figure


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='poses.py', description=__doc__.split('\n')[0])
    parser.add_argument('--model', '-m', required=True, help='an affine3x model file (train.py --model affine3x)')
    parser.add_argument('--resolution', type=cli.positive_int, default=84, help='side of the renders (default 84)')
    parser.add_argument('--out', '-o', default=os.path.join('result', 'poses.md'),
                        help='the summary, Markdown (default result/poses.md)')
    parser.add_argument('--figure', default=os.path.join('result', 'poses.png'),
                        help='the figure, PNG (default result/poses.png)')
    return parser.parse_args(argv)


def pose_table(raw):
    """Rows of the summary: each pose quantity's mean, standard deviation and percentiles over the digits."""
    quantities = {'scale s': numpy.exp(raw[:, 0]), 'rotation (degrees)': numpy.degrees(raw[:, 1]),
                  'shift tx (rows)': numpy.tanh(raw[:, 2]), 'shift ty (columns)': numpy.tanh(raw[:, 3])}
    lines = ['| quantity | mean | std | 1% | 10% | 50% | 90% | 99% |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, values in quantities.items():
        percentiles = numpy.percentile(values, [1, 10, 50, 90, 99])
        lines.append(f'| {name} | {values.mean():.3f} | {values.std():.3f} | '
                     + ' | '.join(f'{p:.3f}' for p in percentiles) + ' |')
    return lines


def most_rotated(raw, count=SHOWN):
    """Indices of the `count` digits of the smallest rotation angles, then of the `count` largest."""
    order = numpy.argsort(raw[:, 1])
    return numpy.concatenate([order[:count], order[::-1][:count]])


def figure(model, digits, z, raw, removed, size):
    """Rows: the digits (nearest-upscaled), drawn with their own pose (raw), with the pose removed."""
    posed = render(model.decoder, z, size, size, pose=raw)[:, 0]
    upright = render(model.decoder, z, size, size, pose=removed)[:, 0]
    cells = numpy.concatenate([figures.upscale_nearest(digits[:, 0], size, size), posed, upright])
    return figures.tile(cells, cols=len(digits))


def main(argv=None):
    args = parse_args(argv)
    with cli.one_line_errors('poses.py'):
        cli.check_output_file(args.out, ('.md',))
        cli.check_output_file(args.figure, ('.png',))
        model = load_affine_model(args.model)
        x_test = data.load_mnist('test')[0]
        z, raw = latents_and_poses(model, x_test)
        chosen = most_rotated(raw)
        lines = ['# Poses learned by an affine3x model', '',
                 f'Produced by `{cli.command_line(os.path.join("experiments", "poses.py"), argv)}`, '
                 f'{cli.provenance()}; model `{cli.shown_path(args.model)}` (warm-up factor {model.warm_up:g}); '
                 f'the {len(raw)} test digits, z = mu and the pose of the grey digit.', ''] + pose_table(raw) + [
                 '', f'Figure: the {SHOWN} digits of the smallest rotation angles, then the {SHOWN} of the largest (test '
                 f'indices {" ".join(str(i) for i in chosen)}; rotations '
                 f'{" ".join(f"{numpy.degrees(raw[i, 1]):.0f}" for i in chosen)} degrees); rows: the digit, its '
                 'render with its pose, with the pose removed (the mean scale of all test digits, no rotation, no shift).', '']
        write_text(args.out, '\n'.join(lines))
        removed = pose_removed(raw)[chosen]  # the mean log scale of all the test digits
        figures.save_image(args.figure, figure(model, x_test[chosen], z[chosen], raw[chosen], removed, args.resolution))
    print('\n'.join(lines))
    print(f'wrote {args.out} and {args.figure}')


if __name__ == '__main__':
    main()
