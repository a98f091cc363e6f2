"""train.py in this process: flags and their defaults, the NaN check, snapshots and their retention, resume,
seeding and the exact files a run writes (test_end_to_end.py runs the same as a user does, as processes)."""
import json
import os
import shutil

import numpy
import pytest

import svae
import chainer
from chainer import training

from svae import cli
from svae import data
from svae import figures
import train
from conftest import gpu
from model import latent_means, SamplingVAE
from model_files import load_model
from rendering import render

# 4 steps an epoch on 7x7 digits (the same code as 28x28, a 16th of the arithmetic)
TINY = ['--test', '-z', '2', '-b', '128', '--train-size', '7', '--resolution', '12x10', '--no-progress']


def train_main(argv, capsys):
    train.main(argv)
    return capsys.readouterr().out


def refused(exit, status, *gists):
    """Whether train.py ended with `status` and one line on stderr that says each of `gists`."""
    code, err = exit
    return code == status and err.startswith('train.py: error: ') and err.count('\n') == 1 and all(g in err for g in gists)


def exit_of(argv, capsys):
    with pytest.raises(SystemExit) as info:
        train.main(argv)
    return info.value.code, capsys.readouterr().err


def log_of(out):
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


def files_in(out):
    return sorted(os.path.relpath(os.path.join(d, name), out) for d, _, names in os.walk(out) for name in names)


def run_two_epochs(out):
    """Seed 0, two epochs into out; its stdout."""
    import io
    import sys
    capture = pytest.MonkeyPatch()
    stdout = io.StringIO()
    capture.setattr(sys, 'stdout', stdout)
    try:
        train.main(TINY + ['-e', '2', '-o', str(out)])
    finally:
        capture.undo()
    return out, stdout.getvalue()


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
    """A run shared by the tests that run train.py themselves (resume from it, compare with it)."""
    return run_two_epochs(tmp_path_factory.mktemp('two_epochs'))


def test_defaults_are_the_articles():
    args = train.parse_args([])
    assert (args.gpu, args.dimz, args.batchsize, args.epoch, args.out) == (-1, 8, 64, 50, 'result')
    assert (args.resume, args.force, args.seed, args.resolution, args.n_train) == ('', False, 0, (168, 168), None)
    assert (args.train_size, args.grid, args.footprint, args.free_bits) == (28, 'linspace', 1, 0.0)
    assert (args.decoder, args.tf32, args.no_progress, args.test) == (None, False, False, False)
    test = train.parse_args(['--test'])
    assert (test.epoch, test.out) == (3, 'result_test')
    assert train.parse_args(['--test', '-e', '5', '-o', 'elsewhere']).epoch == 5
    assert train.parse_args(['-e', '7']).epoch == 7


@pytest.mark.parametrize('argv,gists', [
    (['--train-size', '5'], ['--train-size', '1, 2, 4, 7, 14, 28', 'not 5']),
    (['--footprint', '2'], ['--footprint', '--grid center']),
    (['-r', 'auto', '--force'], ['-r', '--force']),
])
def test_flag_combinations_are_refused_naming_the_flags(argv, gists, capsys):
    with pytest.raises(SystemExit) as info:
        train.parse_args(argv)
    assert refused((info.value.code, capsys.readouterr().err), 2, *gists)


def test_flags_that_pass_the_checks():
    assert train.parse_args(['--train-size', '7', '--grid', 'center', '--footprint', '2']).footprint == 2
    assert train.parse_args(['--train-size', '1']).train_size == 1
    assert train.parse_args(['--footprint', '1']).grid == 'linspace'
    assert train.parse_args([]).model == 'sampling6x' and train.parse_args(['-m', 'affine3x']).model == 'affine3x'
    assert train.parse_args(['--model', 'sampling6x']).model == 'sampling6x'
    assert train.parse_args([]).resolution == (168, 168)  # the article's renders; affine3x's figure is 84x84
    assert train.parse_args(['-m', 'affine3x']).resolution == (84, 84)
    assert train.parse_args(['-m', 'affine3x', '--resolution', '30x20']).resolution == (20, 30)


@pytest.mark.parametrize('flags,named', [(['--train-size', '14'], '--train-size'), (['--grid', 'center'], '--grid center'),
                                         (['--grid', 'center', '--footprint', '2'], '--grid center, --footprint'),
                                         (['--free-bits', '1'], '--free-bits'), (['--decoder', 'fast'], '--decoder fast')])
def test_flags_of_the_article_model_only_are_refused_with_affine3x_and_named(capsys, flags, named):
    with pytest.raises(SystemExit) as info:
        train.parse_args(['--model', 'affine3x'] + flags)
    err = capsys.readouterr().err
    assert refused((info.value.code, err), 2, named, 'sampling6x', 'affine3x')
    assert train.parse_args(flags).model == 'sampling6x'  # the article's model takes them


def test_model_choices(capsys):
    with pytest.raises(SystemExit) as info:
        train.parse_args(['-m', 'affine'])
    err = capsys.readouterr().err  # argparse quotes the choices in some Python versions, not in others
    assert info.value.code == 2 and err.startswith("train.py: error: argument --model/-m: invalid choice: 'affine'")
    assert err.count('\n') == 1 and 'sampling6x' in err and 'affine3x' in err


def test_grid_choices(capsys):
    assert train.parse_args(['--grid', 'linspace']).grid == 'linspace'
    with pytest.raises(SystemExit) as info:
        train.parse_args(['--grid', 'centre'])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("train.py: error: argument --grid: invalid choice: 'centre'")
    assert err.count('\n') == 1 and 'linspace' in err and 'center' in err


class FakeUpdater:
    def __init__(self, epoch_detail, iteration, is_new_epoch=False):
        self.epoch_detail, self.iteration, self.is_new_epoch = epoch_detail, iteration, is_new_epoch


def feed(check, epoch_detail, iteration, loss, is_new_epoch=False):
    trainer = type('Trainer', (), {})()
    trainer.updater = FakeUpdater(epoch_detail, iteration, is_new_epoch)
    trainer.observation = {'main/loss': chainer.Variable(numpy.asarray(loss, numpy.float32))}
    check(trainer)


def test_nonfinite_loss_is_found_at_the_next_check_and_named_by_its_first_step():
    check = train.StopOnNonfiniteLoss(check_every=4)
    feed(check, 0.25, 1, 10.0)
    feed(check, 0.5, 2, numpy.nan)  # not checked yet: the host does not wait at every step
    feed(check, 0.75, 3, numpy.inf)
    with pytest.raises(train.NonFiniteLoss) as info:
        feed(check, 1.0, 4, 3.0)
    assert str(info.value) == 'loss became nan at epoch 1, iteration 2; training stopped, last snapshot left intact'
    assert check.pending == []


def test_nonfinite_check_at_a_new_epoch_and_on_demand():
    check = train.StopOnNonfiniteLoss(check_every=100)
    feed(check, 1.0, 1, 1.0)
    feed(check, 1.5, 2, 2.0)
    assert len(check.pending) == 2
    feed(check, 2.0, 3, 3.0, is_new_epoch=True)  # a new epoch checks (and clears) what is pending
    assert check.pending == []
    feed(check, 2.25, 4, -numpy.inf)
    with pytest.raises(train.NonFiniteLoss, match='^loss became -inf at epoch 3, iteration 4;'):
        check.check()
    check.check()  # nothing pending: nothing to do


def test_nonfinite_check_runs_before_the_snapshot_writer():
    assert train.StopOnNonfiniteLoss.priority > training.PRIORITY_WRITER
    assert train.StopOnNonfiniteLoss.trigger == (1, 'iteration')
    assert train.StopOnNonfiniteLoss().check_every == 100


@pytest.mark.parametrize('argv,gists', [
    (['--test', '-b', '513'], ['-b 513', '512 images']),
    (['--n-train', '100', '-b', '101'], ['-b 101', '100 images']),
    (['--n-train', '60001'], ['--n-train 60001', '60000 images']),
])
def test_a_batch_larger_than_the_training_set_is_refused_before_anything_is_written(argv, gists, tmp_path, capsys):
    """SerialIterator would fill each step by passing over the set several times, each pass counted as an epoch
    (`--test -b 100000`: one step logged as epoch 195)."""
    out = tmp_path / 'run'
    assert refused(exit_of(argv + ['-z', '2', '--no-progress', '-o', str(out)], capsys), 2, *gists)
    assert not out.exists()


def test_the_whole_training_set_and_a_batch_of_all_of_it_are_accepted():
    args = train.parse_args(['--n-train', '60000', '-b', '60000', '-z', '2'])
    trainer = train.build_trainer(args, chainer.get_device('@numpy'))
    iterator = trainer.updater.get_iterator('main')
    assert len(iterator.dataset) == 60000 and iterator.batch_size == 60000


@pytest.mark.slow
def test_a_batch_as_large_as_the_training_set_is_one_step_an_epoch(tmp_path, capsys):
    train_main(['--test', '-b', '512', '-e', '1', '-z', '2', '--train-size', '7', '--resolution', '12x10',
                '--no-progress', '-o', str(tmp_path)], capsys)
    assert [(entry['epoch'], entry['iteration']) for entry in log_of(tmp_path)] == [(1, 1)]


@pytest.mark.slow
def test_nonfinite_loss_stops_the_run_in_one_line_and_keeps_the_last_snapshot(tmp_path, monkeypatch, capsys):
    class Diverging(SamplingVAE):
        calls = 0

        def __call__(self, x):
            loss = super().__call__(x)
            if chainer.config.train:
                Diverging.calls += 1
                if Diverging.calls == 6:  # the second step of epoch 2 (4 steps an epoch)
                    loss = loss * numpy.float32('nan')
                    chainer.report({'loss': loss}, self)
            return loss

    monkeypatch.setattr(train, 'SamplingVAE', Diverging)
    assert refused(exit_of(TINY + ['-e', '3', '-o', str(tmp_path)], capsys), 1, 'nan', 'epoch 2', 'iteration 6')
    assert files_in(tmp_path) == ['figures/epoch_001.png', 'log', 'loss.png', 'model.npz', 'snapshot_epoch_1']
    model = load_model(str(tmp_path / 'model.npz'))
    assert all(numpy.isfinite(p.array).all() for p in model.params())


def test_plain_text_drops_the_erase_code(capsys):
    out = train.PlainText()
    out.write('epoch 1\033[J\n\033[Jdone')
    out.flush()
    assert capsys.readouterr().out == 'epoch 1\ndone'


def test_resident_batches_gather_the_images_of_the_indices():
    images = numpy.arange(5 * 2 * 3, dtype=numpy.float32).reshape(5, 1, 2, 3)
    indices, gather = train.resident_batches(images, chainer.get_device('@numpy'))
    numpy.testing.assert_array_equal(indices, numpy.arange(5))
    numpy.testing.assert_array_equal(gather([4, 0, 2], chainer.get_device('@numpy')), images[[4, 0, 2]])


def test_newest_snapshot_is_by_epoch_number(tmp_path):
    assert train.newest_snapshot(str(tmp_path)) is None
    for name in ('snapshot_epoch_9', 'snapshot_epoch_10', 'snapshot_epoch_2', 'snapshot_epoch_11.tmp',
                 'snapshot_epoch_x', 'old_snapshot_epoch_12'):
        (tmp_path / name).write_bytes(b'')
    assert train.newest_snapshot(str(tmp_path)) == str(tmp_path / 'snapshot_epoch_10')


def test_start_afresh_refuses_an_earlier_run_unless_forced(tmp_path):
    out = str(tmp_path)
    train.start_afresh(out, force=False)  # an empty directory
    (tmp_path / 'log').write_text('[]')
    train.start_afresh(out, force=False)  # a log alone is not a run to protect
    for earlier in ('model.npz', 'snapshot_epoch_4'):
        (tmp_path / earlier).write_bytes(b'')
        with pytest.raises(cli.UsageError) as info:
            train.start_afresh(out, force=False)
        assert all(gist in str(info.value) for gist in (out, '-r auto', '--force', '-o'))
        (tmp_path / earlier).unlink()
    for name in ('model.npz', 'snapshot_epoch_4', 'snapshot_epoch_5'):
        (tmp_path / name).write_bytes(b'')
    train.start_afresh(out, force=True)
    assert files_in(out) == ['log', 'model.npz']  # the model is rewritten by the run; snapshots go now


@pytest.mark.slow
def test_a_run_writes_exactly_its_files_and_keeps_two_snapshots(two_epochs):
    out, stdout = two_epochs
    assert files_in(out) == ['figures/epoch_001.png', 'figures/epoch_002.png', 'log', 'loss.png', 'model.npz',
                             'snapshot_epoch_1', 'snapshot_epoch_2']
    assert stdout.rstrip().endswith(f'model saved to {os.path.join(out, "model.npz")}')
    assert '\033' not in stdout and 'validation/main/loss' in stdout
    log = log_of(out)
    assert [(e['epoch'], e['iteration']) for e in log] == [(1, 4), (2, 8)]  # 512 images, batch 128
    for entry in log:
        assert set(entry) == {'epoch', 'iteration', 'elapsed_time'} | {
            f'{prefix}main/{key}' for prefix in ('', 'validation/') for key in ('x_loss', 'z_loss', 'loss', 'rec', 'kl')}
    model = load_model(os.path.join(out, 'model.npz'))
    assert (model.n_latent, model.n_in, model.centers) == (2, 49, False)


@pytest.mark.slow
def test_epoch_figure_is_the_articles_digits_above_their_renders_from_a_seeded_binarisation(two_epochs):
    """The published epoch-50 figure's digits in its order, encoded from the binarisation seeded by
    (seed, epoch), 4x4 originals above 4x4 renders at --resolution 12x10 on black without margins."""
    import matplotlib.image
    out, _ = two_epochs
    model = load_model(os.path.join(out, 'model.npz'))
    digits = data.load_mnist('test')[0][[8066, 1211, 9647, 2345, 6370, 2133, 6067, 9695, 1931, 4832, 9342, 8556,
                                          3488, 2090, 7461, 7632]]
    originals = data.downsample(digits, 7)
    renders = render(model.decoder, latent_means(model, originals, seed=[0, 2]), 10, 12)[:, 0]
    got = (matplotlib.image.imread(os.path.join(out, 'figures', 'epoch_002.png'))[:, :, :3] * 255).round()
    assert got.shape == (2 * 4 * 10, 4 * 12, 3)
    top, bottom = got[:40, :, 0], got[40:, :, 0]
    assert (top[10:20, 24:36] == figures.to_rgb(figures.upscale_nearest(originals[6:7, 0], 10, 12))[0, :, :, 0]).all()
    assert numpy.abs(bottom[10:20, 24:36] - figures.to_rgb(renders[6])[:, :, 0]).max() <= 1  # row 2, column 3
    expected = figures.to_rgb(figures.article_layout(originals[:, 0], renders))
    assert numpy.abs(got - expected).max() <= 1
    grey = render(model.decoder, latent_means(model, originals), 10, 12)[:, 0]
    assert numpy.abs(got - figures.to_rgb(figures.article_layout(originals[:, 0], grey))).max() > 1


@pytest.mark.slow
def test_validation_uses_the_first_256_test_digits_in_order(tmp_path, capsys, monkeypatch):
    """With batches of 100 the Evaluator averages three batch means (100, 100, 56 digits): the mean
    changes if the digits are more or fewer, or shuffled between the batches. The encoder's random
    binarisation is made a fixed threshold here so that the test can repeat it."""
    import model as model_module
    monkeypatch.setattr(model_module, 'binarize', lambda x, random: (x > 0.5).astype(x.dtype))
    train_main([a if a != '128' else '100' for a in TINY] + ['-e', '1', '-o', str(tmp_path)], capsys)
    model = load_model(str(tmp_path / 'model.npz'))
    x_test = data.downsample(data.load_mnist('test')[0][:256], 7)

    def reported(x):
        observation = {}
        reporter = chainer.Reporter()
        reporter.add_observer('main', model)
        with reporter.scope(observation), chainer.using_config('train', False), chainer.no_backprop_mode():
            model(x)
        return {key: float(value.array) for key, value in observation.items()}
    batches = [reported(x_test[i:i + 100]) for i in (0, 100, 200)]  # z = mu: no noise
    entry = log_of(tmp_path)[-1]
    for key in ('x_loss', 'z_loss', 'loss'):
        assert entry[f'validation/main/{key}'] == pytest.approx(numpy.mean([b[f'main/{key}'] for b in batches]), rel=1e-6)
    assert abs(entry['validation/main/loss'] - reported(x_test)['main/loss']) > 1e-3  # the batching is visible


@pytest.mark.slow
def test_evaluation_binarises_the_encoder_input_at_random(tmp_path, capsys, monkeypatch):
    """Under the Evaluator the encoder sees x > uniform drawn from numpy's global stream, as in training."""
    import model as model_module
    seen = []
    real = model_module.binarize
    monkeypatch.setattr(model_module, 'binarize', lambda x, random: seen.append((chainer.config.train, random)) or real(x, random))
    train_main(TINY + ['-e', '1', '-o', str(tmp_path)], capsys)
    assert (True, numpy.random) in seen  # training
    assert (False, numpy.random) in seen  # the Evaluator, from the same stream as the article's


@pytest.mark.slow
def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not(two_epochs, tmp_path, capsys):
    out, _ = two_epochs
    with numpy.load(os.path.join(out, 'snapshot_epoch_1')) as snapshot:
        after_one = snapshot['updater/model:main/decoder/linear2/W']
    train_main(TINY + ['-e', '1', '-o', str(tmp_path / 'same')], capsys)
    train_main(TINY + ['-e', '1', '-o', str(tmp_path / 'other'), '--seed', '1'], capsys)
    same = load_model(str(tmp_path / 'same' / 'model.npz')).decoder.linear2.W.array
    other = load_model(str(tmp_path / 'other' / 'model.npz')).decoder.linear2.W.array
    numpy.testing.assert_array_equal(same, after_one)
    assert not numpy.array_equal(other, after_one)


@pytest.mark.slow
def test_resume_continues_where_the_newest_snapshot_left_off(two_epochs, tmp_path, capsys):
    out = str(tmp_path / 'run')
    shutil.copytree(two_epochs[0], out)
    stdout = train_main(TINY + ['-e', '3', '-o', out, '-r', 'auto'], capsys)
    assert stdout.startswith(f'resumed from {os.path.join(out, "snapshot_epoch_2")} at epoch 2, iteration 8\n')
    assert [(e['epoch'], e['iteration']) for e in log_of(out)] == [(1, 4), (2, 8), (3, 12)]
    assert sorted(f for f in os.listdir(out) if f.startswith('snapshot')) == ['snapshot_epoch_2', 'snapshot_epoch_3']
    with numpy.load(os.path.join(out, 'snapshot_epoch_3'), allow_pickle=False) as snapshot:
        plotted = json.loads(str(snapshot['extensions/PlotReport/_plot_loss.png']))
    assert [epoch for epoch, _ in plotted['main/loss']] == [1, 2, 3]  # no stray point at the resume
    # an explicit snapshot resumes from it, not from the newest
    stdout = train_main(TINY + ['-e', '3', '-o', out, '-r', os.path.join(out, 'snapshot_epoch_2')], capsys)
    assert stdout.startswith(f'resumed from {os.path.join(out, "snapshot_epoch_2")} at epoch 2, iteration 8\n')


@pytest.mark.slow
def test_resume_auto_without_a_snapshot_starts_from_scratch(tmp_path, capsys):
    out = str(tmp_path)
    stdout = train_main(TINY + ['-e', '1', '-o', out, '-r', 'auto'], capsys)
    assert stdout.startswith(f'no snapshot in {out}: starting from scratch\n')
    assert 'snapshot_epoch_1' in os.listdir(out)


@pytest.mark.parametrize('change,message', [
    (['-z', '3'], 'latent size 2, this run 3'),
    (['--train-size', '14'], 'input pixels 49, this run 196'),
    (['--n-train', '200'], 'training images 512, this run 200'),
])
@pytest.mark.slow
def test_resume_refuses_another_runs_snapshot_exactly(two_epochs, change, message, capsys):
    out = str(two_epochs[0])
    argv = [a for a in TINY if a != '--test'] if '--n-train' in change else TINY
    code, err = exit_of(argv + ['-e', '3', '-o', out, '-r', 'auto'] + change, capsys)
    snapshot = os.path.join(out, 'snapshot_epoch_2')
    assert refused((code, err), 2, snapshot, message, '--force')


class SnapshotArrays(dict):
    """What check_same_run reads of a snapshot: its array names (.files) and arrays, here from a model."""

    def __init__(self, model, images=None):
        arrays = {}
        chainer.serializers.DictionarySerializer(arrays).save(model)
        super().__init__({f'updater/model:main/{k}': v for k, v in arrays.items()})
        if images is not None:
            self['updater/iterator:main/order'] = numpy.arange(images)

    @property
    def files(self):
        return list(self)


def run_of(model, images):
    """The parts of a trainer check_same_run reads: the model trained and the training set's size."""
    from types import SimpleNamespace
    updater = SimpleNamespace(get_optimizer=lambda name: SimpleNamespace(target=model),
                              get_iterator=lambda name: SimpleNamespace(dataset=numpy.zeros((images, 1))))
    return SimpleNamespace(updater=updater)


def test_check_same_run_for_both_kinds_of_model():
    """The model kind, latent size (affine3x's last encoder layer holds mu and ln_var), input pixels and
    training images, each named with both values; a snapshot without the iterator's order skips the last."""
    from affine_model import AffineSamplingVAE
    numpy.random.seed(0)
    article, affine = SamplingVAE(3, n_in=196), AffineSamplingVAE(2)

    def refusal(snapshot, model, images=100):
        with pytest.raises(cli.UsageError) as info:
            train.check_same_run(snapshot, 'S', run_of(model, images))
        return str(info.value)
    assert refusal(SnapshotArrays(affine), article) == ('snapshot S is of the affine3x model, this run trains '
                                                        'sampling6x (--model affine3x resumes it)')
    assert refusal(SnapshotArrays(article), affine) == ('snapshot S is of the sampling6x model, this run trains '
                                                        'affine3x (--model sampling6x resumes it)')
    other = 'use the flags of that run, or start afresh with --force'
    assert refusal(SnapshotArrays(AffineSamplingVAE(3)), affine) == f'snapshot S is of another run: latent size 3, this run 2 ({other})'
    assert refusal(SnapshotArrays(SamplingVAE(2, n_in=196)), article) == f'snapshot S is of another run: latent size 2, this run 3 ({other})'
    assert refusal(SnapshotArrays(SamplingVAE(3)), article) == f'snapshot S is of another run: input pixels 784, this run 196 ({other})'
    assert refusal(SnapshotArrays(affine, 60), affine) == f'snapshot S is of another run: training images 60, this run 100 ({other})'
    for snapshot, model in ((SnapshotArrays(affine, 100), affine), (SnapshotArrays(affine), affine),
                            (SnapshotArrays(article, 100), article)):
        train.check_same_run(snapshot, 'S', run_of(model, 100))  # the same run: no refusal


def test_a_refused_resume_leaves_no_output_directory(tmp_path, capsys):
    out = tmp_path / 'out'
    code, err = exit_of(TINY + ['-o', str(out), '-r', str(tmp_path / 'missing')], capsys)
    assert code == 2 and 'does not exist' in err and not out.exists()


@pytest.mark.slow
def test_resume_messages_for_bad_snapshots(tmp_path, capsys):
    missing = str(tmp_path / 'nothing_here')
    assert refused(exit_of(TINY + ['-o', str(tmp_path), '-r', missing], capsys), 2, missing, 'does not exist')
    junk = tmp_path / 'junk'
    junk.write_bytes(b'not a zip')
    assert refused(exit_of(TINY + ['-o', str(tmp_path), '-r', str(junk)], capsys), 2, str(junk), 'corrupt')
    empty = tmp_path / 'empty.npz'
    numpy.savez(empty, something=numpy.zeros(2))
    code, err = exit_of(TINY + ['-o', str(tmp_path), '-r', str(empty)], capsys)
    assert refused((code, err), 2, str(empty), 'KeyError')


@pytest.mark.slow
def test_a_snapshot_without_the_coordinate_order_is_refused(two_epochs, tmp_path, capsys):
    with numpy.load(os.path.join(two_epochs[0], 'snapshot_epoch_2')) as snapshot:
        arrays = {k: snapshot[k] for k in snapshot.files if k != 'updater/model:main/coordinates'}
    old = tmp_path / 'old_snapshot'
    with open(old, 'wb') as f:
        numpy.savez(f, **arrays)
    code, err = exit_of(TINY + ['-e', '3', '-o', str(tmp_path / 'o'), '-r', str(old)], capsys)
    assert refused((code, err), 2, str(old), '(column, row)', '--force')


def figures_size(path):
    import matplotlib.image
    return matplotlib.image.imread(path).shape[:2]


@pytest.mark.slow
def test_opt_in_flags_reach_the_model(monkeypatch, tmp_path):
    args = train.parse_args(['--test', '-z', '3', '--train-size', '14', '--grid', 'center', '--footprint', '2',
                             '--free-bits', '0.25', '--decoder', 'faithful', '-b', '32'])
    trainer = train.build_trainer(args, chainer.get_device('@numpy'))
    model = trainer.updater.get_optimizer('main').target
    assert (model.n_latent, model.n_in, model.centers, model.footprint, model.free_bits) == (3, 196, True, 2, 0.25)
    assert type(model.decoder).__name__ == 'SamplingDecoder'
    iterator = trainer.updater.get_iterator('main')
    assert len(iterator.dataset) == 512 and iterator.batch_size == 32
    assert iterator.dataset[0].shape == (1, 14, 14)
    fast = train.build_trainer(train.parse_args(['--n-train', '100', '-z', '2']), chainer.get_device('@numpy'))
    assert type(fast.updater.get_optimizer('main').target.decoder).__name__ == 'FastSamplingDecoder'
    indices = fast.updater.get_iterator('main').dataset
    assert numpy.array_equal(indices, numpy.arange(100))  # indices of the resident images
    assert fast.stop_trigger.period == 50
    out = str(tmp_path / 'affine')
    affine = train.build_trainer(train.parse_args(['--test', '--model', 'affine3x', '-z', '3', '--resolution', '12x10',
                                                   '-o', out]), chainer.get_device('@numpy'))
    model = affine.updater.get_optimizer('main').target
    assert type(model).__name__ == 'AffineSamplingVAE' and model.n_latent == 3
    assert affine.updater.get_iterator('main').dataset[0].shape == (1, 28, 28)  # images, not resident indices
    affine.get_extension('write_figure')(affine)  # affine3x's figure: three grids of 4x4 digits, one above the other
    assert figures_size(os.path.join(out, 'figures', 'epoch_000.png')) == (3 * 4 * 10, 4 * 12)
    affine.get_extension('set_warm_up')(affine)
    assert model.warm_up == 0  # after epoch 0 (none trained), the pose stays off
    columns = lambda trainer: trainer.get_extension('PrintReport')._entries  # the printed table's columns
    assert columns(affine)[5:9] == ['main/decoder/scale', 'main/decoder/theta', 'main/decoder/tx', 'main/decoder/ty']
    assert not any(c.startswith('main/decoder/') for c in columns(fast))


@pytest.mark.slow
def test_interrupt_and_tf32_and_an_unwritable_out(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('CUPY_TF32', raising=False)
    (tmp_path / 'file').write_text('')
    code, err = exit_of(TINY + ['--tf32', '-o', str(tmp_path / 'file' / 'out')], capsys)
    assert code == 2 and 'cannot write to output directory' in err
    assert os.environ['CUPY_TF32'] == '1'  # set before CuPy's first product

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(training.Trainer, 'run', interrupted)
    code, err = exit_of(TINY + ['-o', str(tmp_path / 'out')], capsys)
    assert code == 130 and 'before the first snapshot' in err and '-r auto' not in err and err.count('\n') == 1
    (tmp_path / 'out' / 'snapshot_epoch_1').write_bytes(b'')  # a run with a snapshot to go back to
    monkeypatch.setattr(train, 'resume', lambda trainer, path, out: True)
    code, err = exit_of(TINY + ['-o', str(tmp_path / 'out'), '-r', 'auto'], capsys)
    assert code == 130 and 'resume with -r auto' in err


def test_a_failed_write_during_training_is_one_line_naming_the_directory(monkeypatch, tmp_path, capsys):
    import errno

    def disk_full(self, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(training.Trainer, 'run', disk_full)
    out = str(tmp_path / 'out')
    assert exit_of(TINY + ['-o', out], capsys) == (  # status 1: the machine's failure, not a usage mistake
        1, f'train.py: error: cannot write in {out} (No space left on device); the files written before are '
           'intact: resume with -r auto once it can be written\n')


@pytest.mark.slow
def test_force_starts_afresh_in_an_out_that_holds_a_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(training.Trainer, 'run', lambda self, **kwargs: None)  # the start, not the training
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'model.npz').write_bytes(b'an earlier run')
    (out / 'snapshot_epoch_3').write_bytes(b'an earlier snapshot')
    assert exit_of(TINY + ['-o', str(out)], capsys)[0] == 2  # refused without --force
    train.main(TINY + ['-o', str(out), '--force'])
    assert not (out / 'snapshot_epoch_3').exists()  # -r auto can never go back to it


@pytest.mark.slow
def test_a_snapshot_is_never_unpickled(two_epochs, tmp_path, capsys):
    """A crafted snapshot with a pickled object where an array belongs: refused in one line, nothing run."""
    marker = tmp_path / 'unpickled'

    class CreatesFileWhenUnpickled:
        def __reduce__(self):
            return (open, (str(marker), 'w'))
    with numpy.load(os.path.join(two_epochs[0], 'snapshot_epoch_2')) as npz:
        arrays = dict(npz)
    crafted = numpy.empty(1, dtype=object)
    crafted[0] = CreatesFileWhenUnpickled()
    arrays['updater/model:main/encoder_mu/W'] = crafted
    snapshot = str(tmp_path / 'snapshot_epoch_2')
    numpy.savez(snapshot, **arrays)
    os.rename(snapshot + '.npz', snapshot)
    code, err = exit_of(TINY + ['-e', '3', '-o', str(tmp_path / 'out'), '-r', snapshot], capsys)
    assert code == 2 and err.startswith(f'train.py: error: snapshot {snapshot} cannot be resumed from (ValueError: ')
    assert err.count('\n') == 1 and not marker.exists()


@pytest.mark.slow
def test_the_printed_table_and_the_plotted_curves(two_epochs):
    out, stdout = two_epochs
    header = stdout.split('\n')[0].split()
    assert header == ['epoch', 'main/x_loss', 'validation/main/x_loss', 'main/z_loss', 'validation/main/z_loss',
                      'main/loss', 'validation/main/loss', 'elapsed_time']  # the article's columns first
    with numpy.load(os.path.join(out, 'snapshot_epoch_2'), allow_pickle=False) as snapshot:
        plotted = json.loads(str(snapshot['extensions/PlotReport/_plot_loss.png']))
    assert sorted(plotted) == ['main/loss', 'validation/main/loss']
    log = log_of(out)
    assert [value for _, value in plotted['validation/main/loss']] == [e['validation/main/loss'] for e in log]


@pytest.mark.parametrize('terminal,flags,bar', [(True, [], True), (True, ['--no-progress'], False), (False, [], False)])
def test_progress_bar_only_on_a_terminal_without_no_progress(monkeypatch, terminal, flags, bar):
    import sys
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: terminal, raising=False)
    args = train.parse_args(['--test', '--train-size', '7'] + flags)
    trainer = train.build_trainer(args, chainer.get_device('@numpy'))
    has_bar = True
    try:
        trainer.get_extension('ProgressBar')
    except ValueError:
        has_bar = False
    assert has_bar == bar
    printer = trainer.get_extension('PrintReport')
    assert isinstance(printer._out, train.PlainText) != terminal
    if bar:
        assert trainer.get_extension('ProgressBar')._update_interval == 10


def test_resume_auto_without_a_snapshot_still_protects_an_earlier_model(tmp_path, capsys):
    (tmp_path / 'model.npz').write_bytes(b'an earlier run')
    (tmp_path / 'log').write_text(json.dumps([{'epoch': 1}, {'epoch': 2}]))
    code, err = exit_of(TINY + ['-e', '1', '-o', str(tmp_path), '-r', 'auto'], capsys)
    assert code == 2 and err.count('\n') == 1 and '--force' in err and '-r auto' not in err
    assert (tmp_path / 'model.npz').read_bytes() == b'an earlier run'


@pytest.mark.parametrize('log', [True, False])
@pytest.mark.slow
def test_resume_auto_after_a_stop_before_the_first_snapshot_starts_again_from_epoch_1(log, tmp_path, capsys):
    out = tmp_path / 'run'
    train_main(TINY + ['-e', '1', '-o', str(out)], capsys)
    os.remove(out / 'snapshot_epoch_1')  # stopped between the model file and the snapshot
    if not log:
        os.remove(out / 'log')
    stdout = train_main(TINY + ['-e', '2', '-o', str(out), '-r', 'auto'], capsys)
    assert 'starting again from epoch 1' in stdout.splitlines()[0]
    assert [entry['epoch'] for entry in log_of(out)] == [1, 2]
    assert sorted(f for f in os.listdir(out) if f.startswith('snapshot')) == ['snapshot_epoch_1', 'snapshot_epoch_2']


@pytest.mark.slow
def test_a_run_removes_what_an_interrupted_write_left_and_keeps_the_users_files(two_epochs, tmp_path, capsys):
    out = tmp_path / 'run'
    shutil.copytree(two_epochs[0], out)
    leftovers = [out / '.model.4242.tmp.npz', out / 'figures' / '.epoch_002.4242.tmp.png', out / '.loss.17.tmp.png']
    for path in leftovers:
        path.write_bytes(b'')
    for folder in ('tmpsnapshot_epoch_2x8k2_a1', 'logab_12cd3'):
        (out / folder).mkdir()
        (out / folder / 'part').write_bytes(b'')
    kept = [out / 'notes.tmp.txt', out / '.model.tmp.npz', out / 'logbook']
    for path in kept:
        path.write_text('the user\'s')
    train_main(TINY + ['-e', '3', '-o', str(out), '-r', 'auto'], capsys)
    assert not any(os.path.exists(path) for path in leftovers)
    assert not any(name.startswith(('tmpsnapshot', 'logab')) for name in os.listdir(out))
    assert all(path.read_text() == 'the user\'s' for path in kept)


@pytest.mark.slow
def test_the_model_of_a_snapshot_is_the_model_file_of_its_epoch(two_epochs, tmp_path, capsys):
    import model_from_snapshot
    out, _ = two_epochs
    target = str(tmp_path / 'model_epoch_2.npz')
    model_from_snapshot.main([os.path.join(out, 'snapshot_epoch_2'), target])
    got, expected = load_model(target), load_model(os.path.join(out, 'model.npz'))
    assert (got.n_latent, got.n_in, got.centers) == (expected.n_latent, expected.n_in, expected.centers)
    for (name, a), (_, b) in zip(sorted(got.namedparams()), sorted(expected.namedparams())):
        numpy.testing.assert_array_equal(a.array, b.array, err_msg=name)
    with pytest.raises(SystemExit) as info:
        model_from_snapshot.main([os.path.join(out, 'snapshot_epoch_2'), target])  # never replaces a file
    assert info.value.code == 2 and 'exists' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        model_from_snapshot.main([os.path.join(out, 'model.npz'), str(tmp_path / 'x.npz')])
    assert 'holds no model of train.py' in capsys.readouterr().err


@pytest.mark.parametrize('decoder,held', [('fast', [1]), ('faithful', None)])
@pytest.mark.slow
def test_cpu_training_on_the_fast_path_holds_the_blas_to_one_thread(decoder, held, tmp_path, capsys, monkeypatch):
    """Between steps too (where the encoder multiplies): a two-thread BLAS call leaves OpenBLAS's helper
    thread spinning on a core, which slows the fast path's workers; the faithful path keeps the BLAS's threads."""
    threadpoolctl = pytest.importorskip('threadpoolctl')
    blas = lambda: sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'})
    if not blas():
        pytest.skip('no BLAS found by threadpoolctl')
    seen = []
    encode = SamplingVAE.encode
    monkeypatch.setattr(SamplingVAE, 'encode', lambda self, x: seen.append(blas()) or encode(self, x))
    with threadpoolctl.threadpool_limits(2, 'blas'):
        train_main(TINY + ['-e', '1', '--decoder', decoder, '-o', str(tmp_path)], capsys)
        assert blas() == [2]
    assert len(seen) > 4 and all(threads == (held or [2]) for threads in seen)


def comparable(log):
    """A log without its times, which differ between any two runs."""
    return [{key: value for key, value in entry.items() if key != 'elapsed_time'} for entry in log]


@pytest.mark.slow
@pytest.mark.parametrize('decoder', ['faithful', 'fast'])
def test_a_run_stopped_and_resumed_logs_what_the_run_that_was_not_stopped_logs(decoder, tmp_path, capsys):
    flags = TINY + ['--decoder', decoder]
    train_main(flags + ['-e', '4', '-o', str(tmp_path / 'whole')], capsys)
    train_main(flags + ['-e', '2', '-o', str(tmp_path / 'stopped')], capsys)
    train_main(flags + ['-e', '4', '-o', str(tmp_path / 'stopped'), '-r', 'auto'], capsys)
    assert comparable(log_of(tmp_path / 'stopped')) == comparable(log_of(tmp_path / 'whole'))
    whole, resumed = (load_model(str(tmp_path / run / 'model.npz')) for run in ('whole', 'stopped'))
    numpy.testing.assert_array_equal(resumed.decoder.linear1.W.array, whole.decoder.linear1.W.array)


@pytest.mark.slow
def test_a_snapshot_without_the_random_state_is_refused_as_not_resumable_exactly(two_epochs, tmp_path, capsys):
    snapshot = str(tmp_path / 'snapshot_epoch_2')
    with numpy.load(os.path.join(two_epochs[0], 'snapshot_epoch_2'), allow_pickle=False) as npz:
        numpy.savez(snapshot, **{k: npz[k] for k in npz.files if not k.startswith('extensions/RandomStreams/')})
    os.rename(snapshot + '.npz', snapshot)
    code, err = exit_of(TINY + ['-e', '3', '-o', str(tmp_path), '-r', snapshot], capsys)
    assert code == 2 and 'random state' in err and '--force' in err and err.count('\n') == 1


@gpu
@pytest.mark.gpu
@pytest.mark.slow
def test_a_run_stopped_and_resumed_on_a_gpu_logs_what_the_run_that_was_not_stopped_logs(tmp_path, capsys):
    flags = TINY + ['-g', '0']
    train_main(flags + ['-e', '4', '-o', str(tmp_path / 'whole')], capsys)
    train_main(flags + ['-e', '2', '-o', str(tmp_path / 'stopped')], capsys)
    train_main(flags + ['-e', '4', '-o', str(tmp_path / 'stopped'), '-r', 'auto'], capsys)
    assert comparable(log_of(tmp_path / 'stopped')) == comparable(log_of(tmp_path / 'whole'))


@pytest.mark.slow
def test_affine3x_logs_the_mean_pose_of_the_epochs_training_iterations(tmp_path):
    args = train.parse_args(['--model', 'affine3x', '--test', '-e', '2', '-b', '128', '--resolution', '8',
                             '-o', str(tmp_path), '--no-progress'])
    numpy.random.seed(0)
    trainer = train.build_trainer(args, chainer.get_device('@numpy'))
    seen = []

    @training.make_extension(trigger=(1, 'iteration'), priority=training.PRIORITY_WRITER + 10)
    def record(trainer):  # before any other extension of the iteration
        seen.append(float(trainer.observation['main/decoder/theta'].array))
    trainer.extend(record)
    trainer.run()
    per_epoch = len(seen) // 2
    logged = [entry['main/decoder/theta'] for entry in log_of(tmp_path)]
    numpy.testing.assert_allclose(logged, [numpy.mean(seen[:per_epoch]), numpy.mean(seen[per_epoch:])], rtol=1e-6)
    assert logged[1] != 0


@pytest.mark.slow
def test_resuming_a_run_that_has_its_epochs_trains_nothing_and_says_so(two_epochs, tmp_path, capsys):
    out = tmp_path / 'run'
    shutil.copytree(two_epochs[0], out)
    before = (out / 'model.npz').read_bytes()
    stdout = train_main(TINY + ['-e', '2', '-o', str(out), '-r', 'auto'], capsys)
    assert 'nothing to do' in stdout.splitlines()[-1] and 'model saved' not in stdout
    assert (out / 'model.npz').read_bytes() == before and len(log_of(out)) == 2
