"""svae/measure.py: PSNR and the clipped NLL by hand, and the interpolation baselines' conventions."""
import numpy
import pytest
from PIL import Image

from svae import measure


def test_psnr_and_nll_by_hand():
    truth = numpy.full((2, 4, 4), 0.5, numpy.float32)
    assert measure.psnr(truth + 0.1, truth) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    p = numpy.full_like(truth, 0.25)
    assert measure.bernoulli_nll(p, truth) == pytest.approx(-(0.5 * numpy.log(0.25) + 0.5 * numpy.log(0.75)))
    assert numpy.isfinite(measure.bernoulli_nll(numpy.zeros_like(truth), truth))  # clipped, not infinite


def test_psnr_is_the_mean_over_images_of_each_images_psnr():
    truth = numpy.zeros((2, 3, 5), numpy.float32)
    prediction = truth.copy()
    prediction[0] += 0.1   # MSE 0.01: 20 dB
    prediction[1] += 0.01  # MSE 0.0001: 40 dB (the PSNR of the mean MSE would be 22.97 dB)
    assert measure.psnr(prediction, truth) == pytest.approx(30.0, abs=1e-4)
    assert measure.psnr(truth, truth) == pytest.approx(120.0)  # MSE floored at 1e-12


def test_nll_clips_both_ends_at_eps():
    assert measure.EPS == 1e-3
    one, zero = numpy.ones((1, 2, 2), numpy.float32), numpy.zeros((1, 2, 2), numpy.float32)
    assert measure.bernoulli_nll(zero, one) == pytest.approx(-numpy.log(1e-3), rel=1e-6)
    assert measure.bernoulli_nll(one, zero) == pytest.approx(-numpy.log(1e-3), rel=1e-4)
    assert measure.bernoulli_nll(zero, zero) == pytest.approx(-numpy.log(1 - 1e-3), rel=1e-4)
    mixed = numpy.array([[[0.9, 0.2]]], numpy.float32)
    assert measure.bernoulli_nll(mixed, numpy.array([[[1.0, 0.0]]])) == \
        pytest.approx(-(numpy.log(0.9) + numpy.log(0.8)) / 2, rel=1e-6)


def test_baselines_use_pixel_centres():
    ramp = numpy.tile(numpy.arange(14, dtype=numpy.float32) / 16, (1, 14, 1))  # value = column index / 16
    nearest = measure.resize(ramp, 28, 'nearest')[0]
    numpy.testing.assert_array_equal(nearest, numpy.repeat(numpy.repeat(ramp[0], 2, axis=0), 2, axis=1))
    # output column j has its centre at input coordinate (j + 0.5) / 2 - 0.5
    j = numpy.arange(6, 22)  # away from the edges, which Lanczos's 3-pixel reach sees from further in
    # bilinear and Keys' a = -0.5 reproduce a ramp; a = -0.75 and Lanczos only nearly (an aligned-corners
    # grid would be up to 0.009 off in these columns)
    for method, atol in (('bilinear', 1e-4), ('bicubic', 1e-4), ('bicubic a=-0.75', 0.003), ('lanczos', 0.002)):
        numpy.testing.assert_allclose(measure.resize(ramp, 28, method)[0][5, j], ((j + 0.5) / 2 - 0.5) / 16,
                                      atol=atol, err_msg=method)


def test_every_baseline_is_float32_in_the_range_of_the_truth():
    step = numpy.zeros((2, 7, 7), numpy.float32)
    step[:, :, 3:] = 1.0  # a hard edge: cubic and Lanczos kernels overshoot it
    assert list(measure.RESAMPLERS) == ['nearest', 'bilinear', 'bicubic', 'bicubic a=-0.75', 'lanczos']
    for method, resample in measure.RESAMPLERS.items():
        out = measure.resize(step, 28, method)
        assert out.shape == (2, 28, 28) and out.dtype == numpy.float32
        assert out.min() >= 0 and out.max() <= 1
        numpy.testing.assert_array_equal(out, numpy.clip(resample(step, 28), 0, 1))
    assert measure.RESAMPLERS['lanczos'](step, 28).max() > 1  # clipping is what keeps them in range


def test_cubic_convolution_weights_by_hand():
    """Keys' kernel: at t = 0.25 with a = -0.75 the four weights, computed from its two pieces by hand."""
    a, t = -0.75, 0.25
    near = lambda x: (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    far = lambda x: a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
    numpy.testing.assert_allclose(measure.cubic_weights(numpy.array([t]), a)[0],
                                  [far(1 + t), near(t), near(1 - t), far(2 - t)], rtol=1e-12)
    assert measure.cubic_weights(numpy.array([0.0]), a)[0].tolist() == [0, 1, 0, 0]  # interpolates
    numpy.testing.assert_allclose(measure.cubic_weights(numpy.linspace(0, 1, 7), a).sum(axis=1), 1, rtol=1e-12)


def test_bicubic_075_upsamples_x2_as_the_kernel_says_and_repeats_the_edge():
    """Output column j samples input coordinate (j + 0.5) / 2 - 0.5: fraction 0.25 or 0.75 of the way
    between neighbours; beyond the border the edge pixel is repeated. On a non-symmetric row."""
    row = numpy.array([0.1, 0.9, 0.3, 0.6, 0.2], numpy.float32)
    image = numpy.tile(row, (1, 3, 1))
    got = measure.bicubic_075(image, 10)  # (1, 10, 10): rows are constant, so only the columns matter
    padded = numpy.concatenate([[row[0]] * 2, row, [row[-1]] * 2]).astype(numpy.float64)
    expected = []
    for j in range(10):
        source = (j + 0.5) / 2 - 0.5
        left = int(numpy.floor(source))
        weights = measure.cubic_weights(numpy.array([source - left]), -0.75)[0]
        expected.append(weights @ padded[left - 1 + 2:left + 3 + 2])
    numpy.testing.assert_allclose(got[0, 4], expected, rtol=1e-6)
    numpy.testing.assert_allclose(got[0, 0], got[0, 9], rtol=1e-6)
    down = measure.bicubic_075(image.transpose(0, 2, 1), 10)  # the row as a column (5 x 3): now only the rows matter
    numpy.testing.assert_allclose(down[0, :, 4], expected, rtol=1e-6)


def test_pillow_resamplers_are_pillows():
    image = numpy.random.RandomState(1).uniform(size=(1, 7, 5)).astype(numpy.float32)
    expected = numpy.asarray(Image.fromarray(image[0]).resize((28, 28), Image.LANCZOS))
    numpy.testing.assert_array_equal(measure.RESAMPLERS['lanczos'](image, 28)[0], expected)
