"""Real runs on CPU: a tiny training, rendering from its model, kill and resume, determinism."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

import svae

import train
from conftest import ROOT
from model_files import load_model

pytestmark = pytest.mark.slow  # each test runs the scripts as processes


def run(script, *args, check=True, cwd=ROOT):
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def log_without_times(out):
    with open(os.path.join(out, 'log')) as f:
        return [{k: v for k, v in entry.items() if k != 'elapsed_time'} for entry in json.load(f)]


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('train')
    return out, run('train.py', '--test', '-e', 2, '-z', 4, '-o', out, '--resolution', 56)


@pytest.fixture(scope='module')
def trained(trained_run):
    return trained_run[0]


def test_progress_bar_only_on_a_terminal(trained_run):
    """Output to a pipe or file: the per-epoch table, no progress bar escape codes."""
    stdout = trained_run[1].stdout
    assert '\x1b' not in stdout and 'validation/main/loss' in stdout


def test_tiny_training_lowers_the_loss_and_writes_everything(trained):
    log = log_without_times(trained)
    assert [entry['epoch'] for entry in log] == [1, 2]
    assert log[1]['main/loss'] < log[0]['main/loss']
    for entry in log:
        assert entry['main/loss'] == pytest.approx(entry['main/rec'] + entry['main/kl'], rel=1e-5)
        assert 50 < entry['validation/main/loss'] < 700  # nats per image, not per pixel
    for name in ('model.npz', 'loss.png', 'figures/epoch_001.png', 'figures/epoch_002.png', 'snapshot_epoch_2'):
        assert os.path.isfile(os.path.join(trained, name)), name
    assert load_model(os.path.join(trained, 'model.npz')).n_latent == 4


def image_size(path):
    import matplotlib.image
    return matplotlib.image.imread(path).shape[:2]


def test_epoch_figure_has_originals_above_renders_without_margins(trained):
    assert image_size(os.path.join(trained, 'figures', 'epoch_002.png')) == (2 * 4 * 56, 4 * 56)


@pytest.mark.parametrize('resolution,n,cols,rows,height,width', [
    ('168', 16, 4, 4, 168, 168), ('40x24', 3, 3, 1, 24, 40), ('31', 5, 4, 2, 31, 31)])
def test_render_writes_an_image_of_the_right_size(trained, tmp_path, resolution, n, cols, rows, height, width):
    out = tmp_path / 'r.png'
    result = run('render.py', '-m', trained / 'model.npz', '--resolution', resolution, '-n', n, '-o', out)
    assert result.stdout.split('\n')[:2] == [f'model: {trained / "model.npz"}', str(out)]
    grid_w, grid_h = cols * width + (cols - 1) * 2, rows * height + (rows - 1) * 2
    assert image_size(out) == (grid_h, 2 * grid_w + 8)


def test_kill_and_resume_continues_the_epoch_count(tmp_path):
    args = [sys.executable, 'train.py', '--test', '-e', '3', '-z', '4', '-o', str(tmp_path), '--no-progress',
            '--resolution', '28']
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.exists(tmp_path / 'snapshot_epoch_1') and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert os.path.exists(tmp_path / 'snapshot_epoch_1')
    assert not os.path.exists(tmp_path / 'snapshot_epoch_3')
    result = run('train.py', *args[2:], '-r', 'auto')
    assert 'resumed from' in result.stdout
    resumed_at = int(result.stdout.split('resumed from')[1].split('at epoch')[1].split(',')[0])
    assert resumed_at >= 1
    log = log_without_times(tmp_path)
    assert [entry['epoch'] for entry in log] == [1, 2, 3]
    assert log[-1]['iteration'] == 3 * 8  # 512 images / batch 64: no step lost or repeated
    with numpy.load(tmp_path / 'snapshot_epoch_3', allow_pickle=False) as snapshot:
        plotted = json.loads(str(snapshot['extensions/PlotReport/_plot_loss.png']))
    assert [epoch for epoch, _ in plotted['main/loss']] == [1, 2, 3]  # no stray point at the resume


def test_large_render_memory_is_bounded_by_the_chunk(trained, tmp_path):
    """2048x2048 evaluated at once would need > 10 GB of activations; in chunks it stays small."""
    code = ('import resource, sys, render; render.main(sys.argv[1:]); '
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)')
    def peak_mib(resolution):
        result = subprocess.run([sys.executable, '-c', code, '-m', str(trained / 'model.npz'), '-n', '1',
                                 '--resolution', resolution, '-o', str(tmp_path / 'big.png')],
                                cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return int(result.stdout.split()[-1]) / 1024
    small, large = peak_mib('32'), peak_mib('2048')
    assert large - small < 600, (small, large)
    assert image_size(tmp_path / 'big.png') == (2048, 2 * 2048 + 8)


def pixels(path):
    import matplotlib.image
    return matplotlib.image.imread(path)


def gif_frames(path):
    from PIL import Image
    with Image.open(path) as gif:
        return gif.n_frames, gif.size


def test_samples_have_the_right_size_are_seeded_and_differ_by_seed(trained, tmp_path):
    a, b, c = (tmp_path / f'{name}.png' for name in 'abc')
    run('render.py', '-m', trained / 'model.npz', '--sample', 6, '--resolution', '20x12', '--seed', 1, '-o', a)
    run('render.py', '-m', trained / 'model.npz', '--sample', 6, '--resolution', '20x12', '--seed', 1, '-o', b)
    run('render.py', '-m', trained / 'model.npz', '--sample', 6, '--resolution', '20x12', '--seed', 2, '-o', c)
    assert pixels(a).shape[:2] == (2 * 12 + 2, 3 * 20 + 2 * 2)  # 6 samples: 2 rows of 3
    assert (pixels(a) == pixels(b)).all() and not (pixels(a) == pixels(c)).all()


def test_interpolation_writes_a_gif_and_a_strip(trained, tmp_path):
    out = tmp_path / 'walk.gif'
    result = run('render.py', '-m', trained / 'model.npz', '--interpolate', 0, 1, '--frames', 5, '--fps', 10,
                 '--resolution', 24, '-o', out)
    assert result.stdout.strip().split('\n') == [f'model: {trained / "model.npz"}', 'test digits 0 -> 1', str(out),
                                               str(tmp_path / 'walk_strip.png')]
    assert gif_frames(out) == (5, (24, 24))
    strip = pixels(tmp_path / 'walk_strip.png')
    assert strip.shape[:2] == (24, 5 * 24 + 4 * 2)
    assert not (strip[:, :24] == strip[:, -24:]).all()  # digit 0 (a 7) and digit 1 (a 2) differ
    other = tmp_path / 'other.gif'
    run('render.py', '-m', trained / 'model.npz', '--interpolate', 'random', 'random', '--seed', 3,
        '--frames', 5, '--resolution', 24, '-o', other)
    assert not (pixels(tmp_path / 'other_strip.png') == strip).all()


def test_traverse_has_one_row_per_latent_dimension(trained, tmp_path):
    out = tmp_path / 't.png'
    run('render.py', '-m', trained / 'model.npz', '--traverse', '--steps', 5, '--resolution', 16, '-o', out)
    image = pixels(out)
    assert image.shape[:2] == (4 * 16 + 3 * 2, 5 * 16 + 4 * 2)  # the fixture's model has 4 latent dimensions
    assert not (image[:16, :16] == image[:16, -16:]).all()


def test_region_zooms_into_the_uv_plane(trained, tmp_path):
    """65 points over [-1, 1] step 1/32; 33 points over [0, 1] are the same points: the lower right quarter."""
    whole, zoom = tmp_path / 'whole.png', tmp_path / 'zoom.png'
    run('render.py', '-m', trained / 'model.npz', '-n', 1, '--resolution', 65, '-o', whole, '--region', -1, -1, 1, 1)
    run('render.py', '-m', trained / 'model.npz', '-n', 1, '--resolution', 33, '-o', zoom, '--region', 0, 0, 1, 1)
    assert pixels(zoom).shape[:2] == (33, 33)
    numpy.testing.assert_allclose(pixels(zoom), pixels(whole)[32:, 32:], atol=1.5 / 255)
    assert pixels(zoom).std() > 0


def test_resume_refuses_a_snapshot_of_another_run(trained, capsys):
    for argv, message in ((['-z', '8'], 'latent size 4, this run 8'),
                          (['-z', '4', '--train-size', '14'], 'input pixels 784, this run 196'),
                          (['-z', '4', '--n-train', '1000'], 'training images 512, this run 1000')):
        argv = argv if '--n-train' in argv else ['--test'] + argv
        with pytest.raises(SystemExit) as exit_info:
            train.main(argv + ['-o', str(trained), '-r', 'auto', '--no-progress'])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count('\n') == 1 and message in err, err


def test_force_starts_afresh_and_drops_the_earlier_snapshots(tmp_path, capsys):
    for name in ('snapshot_epoch_7', 'snapshot_epoch_8', 'model.npz'):
        (tmp_path / name).write_bytes(b'an earlier run')
    train.main(['--test', '-e', '1', '-z', '2', '-o', str(tmp_path), '--force', '--resolution', '28',
                '--train-size', '7', '--no-progress'])
    assert sorted(p.name for p in tmp_path.glob('snapshot_epoch_*')) == ['snapshot_epoch_1']
    assert load_model(str(tmp_path / 'model.npz')).n_latent == 2


def test_render_without_m_uses_the_model_trained_here_else_the_pretrained_one(trained, tmp_path):
    """Started from any directory: the model trained there (result/model.npz), else the checkout's
    pretrained model; the output goes to renders/MODEL/ in that directory, never into the checkout, so the
    same line before and after training keeps both pictures."""
    from svae import cli
    render_py = os.path.join(ROOT, 'render.py')
    draw = lambda: subprocess.run([sys.executable, render_py, '--resolution', '12', '-n', '2'], cwd=tmp_path,
                                  capture_output=True, text=True)
    before = draw()
    assert before.returncode == 0, before.stderr
    pretrained_out = os.path.join('renders', 'article_50_epochs', 'render_digits0-1_12x12.png')
    assert before.stdout.split('\n')[:2] == [f'model: {cli.PRETRAINED}', pretrained_out]
    os.makedirs(tmp_path / 'result')
    os.symlink(trained / 'model.npz', tmp_path / 'result' / 'model.npz')
    after = draw()
    assert after.returncode == 0, after.stderr
    own_out = os.path.join('renders', 'result', 'render_digits0-1_12x12.png')
    assert after.stdout.split('\n')[:2] == ['model: result/model.npz', own_out]
    pictures = [pixels(tmp_path / out) for out in (pretrained_out, own_out)]
    assert pictures[0].shape == pictures[1].shape and not numpy.array_equal(*pictures)  # two models, two files


def test_output_names_say_what_was_drawn(trained, tmp_path):
    """Defaults never collide: a region is not a plain render, random digits are named by index."""
    model = tmp_path / 'digits.npz'
    os.symlink(trained / 'model.npz', model)
    plain = run('render.py', '-m', model, '--resolution', 16, '-n', 1, cwd=tmp_path).stdout.split()
    zoom = run('render.py', '-m', model, '--resolution', 16, '-n', 1, '--region', -0.5, 0, 0.5, 1, cwd=tmp_path).stdout.split()
    assert plain[-1] == os.path.join('renders', 'digits', 'render_digits0-0_16x16.png')  # a file not named model.npz: its name
    assert zoom[-1] == os.path.join('renders', 'digits', 'render_digits0-0_16x16_region_-0.5_0_0.5_1.png')
    walk = run('render.py', '-m', model, '--interpolate', 'random', 'random', '--seed', 3, '--frames', 2,
               '--resolution', 8, cwd=tmp_path).stdout.split('\n')
    rng = numpy.random.RandomState(3)
    a, b = rng.randint(10000), rng.randint(10000)
    assert walk[1] == f'test digits {a} -> {b}' and walk[2].endswith(f'interpolate_{a}_{b}_8x8.gif')
