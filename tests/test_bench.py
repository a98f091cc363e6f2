"""experiments/bench.py: the decoder's FLOP by hand, a ceiling no burst of other load can lower, the BLAS named;
bench_pair.py's paired steps."""
import os

import pytest

import bench


def test_decoder_flop_per_image_by_hand():
    # widths 10 -> 256 -> 256 -> 256 -> 1, forward and twice more backward, at 784 points
    assert bench.decoder_flop_per_image(8) == 3 * 2 * (10 * 256 + 256 * 256 + 256 * 256 + 256) * 784


def test_the_ceiling_is_the_best_sgemm_measured_and_fractions_are_of_it():
    row = {'train_images_per_s_b64': 300.0, 'train_images_per_s_b100': 320.0}
    result = bench.with_ceiling({'sgemm_gflops_measured': [82.0, 210.0, 205.0], 'rows': [row]})
    assert result['sgemm_gflops'] == 210.0
    assert result['ceiling_images_per_s'] == pytest.approx(210e9 / bench.decoder_flop_per_image(8))
    assert row['ceiling_fraction_b64'] == pytest.approx(300.0 / result['ceiling_images_per_s'])
    assert row['ceiling_fraction_b100'] == pytest.approx(320.0 / result['ceiling_images_per_s'])


def test_the_ceiling_is_the_best_of_whole_batch_and_blocked_sgemm():
    """The fast path multiplies in per-core blocks; where those run faster than the BLAS's own threads, they set
    the ceiling, so that no path is reported above it."""
    row = {'train_images_per_s_b64': 300.0, 'train_images_per_s_b100': 320.0}
    result = bench.with_ceiling({'sgemm_gflops_measured': [200.0, 190.0], 'blocked_sgemm_gflops_measured': [150.0, 215.0],
                                 'rows': [row]})
    assert result['sgemm_gflops'] == 215.0
    assert row['ceiling_fraction_b64'] == pytest.approx(300.0 * bench.decoder_flop_per_image(8) / 215e9)


def test_training_rounds_each_timed_with_the_ceiling_measured_between_them_at_full_blas_threads():
    """Rounds run as train.py trains (the fast path's BLAS held to one thread); the sgemm between rounds gets the
    BLAS's own threads, else it would measure one core."""
    import threadpoolctl
    import chainer
    from svae import data
    blas_threads = lambda: [i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']
    outside, seen = blas_threads(), []
    x_train = data.load_mnist('train')[0][:40]
    throughputs = bench.train_throughput(x_train, chainer.get_device('@numpy'), 4, True, 1, 3, 2,
                                         lambda: seen.append(blas_threads()))
    assert len(throughputs) == 3 and all(t > 0 for t in throughputs)
    assert seen == [outside] * 3


@pytest.mark.slow
def test_on_cpu_each_step_is_a_sample_and_the_best_sets_the_fraction_of_the_ceiling(monkeypatch):
    """The best single step against the best single sgemm product; the epoch's time from the median step."""
    import chainer
    from svae import data
    x_train = data.load_mnist('train')[0][:40]
    steps = bench.train_throughput(x_train, chainer.get_device('@numpy'), 4, True, 1, 3, 2, lambda: None, each_step=True)
    assert len(steps) == 6 and all(t > 0 for t in steps)
    speeds = iter([[100.0, 300.0, 200.0], [90.0, 150.0, 120.0], [50.0, 70.0, 60.0], [40.0, 60.0, 50.0]])
    monkeypatch.setattr(bench, 'train_throughput', lambda *args, each_step: next(speeds) if each_step else None)
    monkeypatch.setattr(bench, 'sgemm_gflops', lambda xp: 100.0)
    monkeypatch.setattr(bench, 'blocked_sgemm_gflops', lambda: 90.0)
    for name in ('render_throughput', 'peak_train_memory'):
        monkeypatch.setattr(bench, name, lambda *args: 1.0)
    faithful, fast = bench.bench_device(chainer.get_device('@numpy'), quick=True)['rows']
    assert (faithful['train_images_per_s_b64'], faithful['train_images_per_s_b100']) == (300.0, 150.0)
    assert fast['train_images_per_s_b64_samples'] == [50.0, 70.0, 60.0]
    assert fast['ceiling_fraction_b64'] == pytest.approx(70.0 * bench.decoder_flop_per_image(8) / 100e9)
    assert faithful['epoch_seconds_b64'] == pytest.approx(60000 / 200.0)


def test_the_blas_is_named_with_its_kernel_threads_and_the_settings_that_chose_it(monkeypatch):
    import threadpoolctl
    monkeypatch.setattr(threadpoolctl, 'threadpool_info', lambda: [
        {'user_api': 'openmp', 'internal_api': 'openmp', 'version': None, 'num_threads': 2},
        {'user_api': 'blas', 'internal_api': 'openblas', 'version': '0.3.31', 'architecture': 'SkylakeX', 'num_threads': 2}])
    monkeypatch.delenv('OPENBLAS_L2_SIZE', raising=False)
    monkeypatch.setenv('OPENBLAS_CORETYPE', 'Haswell')
    assert bench.blas_description() == 'openblas 0.3.31, kernel SkylakeX, 2 threads (OPENBLAS_CORETYPE=Haswell)'
    monkeypatch.delenv('OPENBLAS_CORETYPE')
    assert bench.blas_description() == 'openblas 0.3.31, kernel SkylakeX, 2 threads'


def bench_run(sgemm, fast_b64, faithful_b64):
    row = lambda path, b64: {'path': path, 'train_images_per_s_b64': b64, 'train_images_per_s_b100': b64 + 10,
                             'ceiling_fraction_b64': b64 / 500, 'render_168_pixels_per_s': 6e5,
                             'render_1024_pixels_per_s': 5e5, 'peak_train_bytes_b64': 15 * 2**20,
                             'epoch_seconds_b64': 60000 / b64}
    return {'sgemm_gflops': sgemm, 'rows': [row('faithful', faithful_b64), row('fast', fast_b64)]}


def test_summary_gives_each_runs_numbers_and_their_range(tmp_path):
    import json
    import bench_summary
    files = []
    for k, (sgemm, fast, faithful) in enumerate([(348, 396, 220), (313, 350, 178)]):
        files.append(tmp_path / f'run{k}.json')
        files[-1].write_text(json.dumps([bench_run(sgemm, fast, faithful)]))
    lines = bench_summary.summary(bench_summary.load_runs(files)).splitlines()
    assert lines[0] == '2 runs; sgemm best per run: 348, 313 GFLOP/s'
    assert lines[1].startswith('faithful: b64 178-220 images/s (220, 178), b100 188-230, of ceiling 44, 36 %')
    assert lines[2].startswith('fast: b64 350-396 images/s (396, 350), b100 360-406, of ceiling 79, 70 %')
    assert lines[2].endswith('render 168 0.60, 0.60 Mpx/s, 1024 0.50, 0.50, peak 15 MiB, 152-171 s an epoch at batch 64')
    assert lines[3].endswith(f'{((396 + 350) / 2) / ((220 + 178) / 2):.2f}x')  # the ratio of the medians


def test_summary_of_a_missing_or_foreign_file_is_one_line(tmp_path, capsys):
    import bench_summary
    (tmp_path / 'other.json').write_text('{"rows": 1}')
    for name in ('missing.json', 'other.json'):
        with pytest.raises(SystemExit) as info:
            bench_summary.main([str(tmp_path / name)])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count('\n') == 1 and 'not the JSON of bench.py --json' in err


def test_paired_steps_alternate_the_order_and_report_the_median_ratio_pair_by_pair():
    import contextlib
    from fast_decoder_pieces import bench_pair
    order = []
    updaters = [type('Updater', (), {'update': lambda self, k=k: order.append(k)})() for k in (0, 1)]
    times = bench_pair.paired_step_ms(updaters, contextlib.nullcontext(), pairs=4, warmup=1)
    assert order == [0, 1] + [0, 1, 1, 0, 0, 1, 1, 0]  # warm-up, then the order swapped every pair
    assert [len(t) for t in times] == [4, 4]
    lines = bench_pair.report(['A a.py', 'B b.py'], [[100.0, 200.0, 100.0, 50.0], [90.0, 240.0, 105.0, 50.0]])
    assert lines.splitlines()[0] == 'A a.py: step min 50.0 ms, median 100.0 ms'
    assert lines.splitlines()[1] == 'B b.py: step min 50.0 ms, median 97.5 ms'
    assert lines.splitlines()[2].startswith('B / A, pair by pair: median 1.025, quartiles ')  # of 0.9, 1.2, 1.05, 1.0
    assert lines.endswith('(4 pairs)')


def test_paired_steps_of_the_same_file_end_to_end(capsys):
    from fast_decoder_pieces import bench_pair
    fastpath = os.path.join(os.path.dirname(bench.__file__), '..', 'fast_decoder.py')
    bench_pair.main([fastpath, fastpath, '--pairs', '2', '-b', '2'])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[2].startswith('B / A, pair by pair: median ') and out[2].endswith('(2 pairs)')


@pytest.mark.parametrize('content,message', [(None, 'no such file'), ('x = (', 'cannot be loaded'),
                                             ('x = 1', 'not a copy of svae/fast_decoder.py')])
def test_paired_steps_of_a_file_that_is_no_fastpath_is_one_line(tmp_path, capsys, content, message):
    from fast_decoder_pieces import bench_pair
    path = tmp_path / 'other.py'
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit:
        bench_pair.main([str(path), str(path)])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and len(err.splitlines()) == 1 and message in err and str(path) in err
