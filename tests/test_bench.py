"""experiments/bench.py: the decoder's FLOP by hand, a ceiling no burst of other load can lower, the BLAS named."""
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
