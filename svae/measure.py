"""What the experiments measure with: PSNR, the clipped Bernoulli NLL and interpolation baselines
(experiments/superres.py, compare_article.py)."""
import functools

import numpy
from PIL import Image

EPS = 1e-3  # probabilities are clipped to [EPS, 1 - EPS] for the NLL, so exact 0s of an interpolation stay finite


def psnr(prediction, truth):
    """Mean over images of 10 log10(1 / MSE), in dB (pixel values in [0, 1])."""
    mse = ((prediction - truth) ** 2).reshape(len(truth), -1).mean(axis=1)
    return float(numpy.mean(10 * numpy.log10(1.0 / numpy.maximum(mse, 1e-12))))


def bernoulli_nll(p, truth):
    """Mean per-pixel -[x log p + (1 - x) log(1 - p)] in nats, p clipped to [EPS, 1 - EPS]."""
    p = numpy.clip(p, EPS, 1 - EPS)
    return float(numpy.mean(-(truth * numpy.log(p) + (1 - truth) * numpy.log(1 - p))))


# ---- interpolation baselines ----

def cubic_weights(t, a):
    """Keys' cubic convolution weights of the 4 neighbours at offsets -1, 0, 1, 2 for fractions t."""
    def kernel(x):
        x = numpy.abs(x)
        return numpy.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                           numpy.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
    return numpy.stack([kernel(t + 1), kernel(t), kernel(1 - t), kernel(2 - t)], axis=-1)


def cubic_matrix(size_in, size_out, a):
    """(size_out, size_in) matrix of cubic convolution with pixel-centre alignment and the edge pixels
    repeated beyond the border (PyTorch's bicubic with align_corners=False, OpenCV's INTER_CUBIC)."""
    source = (numpy.arange(size_out) + 0.5) * size_in / size_out - 0.5
    left = numpy.floor(source).astype(int)
    weights = cubic_weights(source - left, a)
    matrix = numpy.zeros((size_out, size_in))
    for k in range(4):
        numpy.add.at(matrix, (numpy.arange(size_out), numpy.clip(left - 1 + k, 0, size_in - 1)), weights[:, k])
    return matrix


def bicubic_075(images, size):
    """(N, h, w) -> (N, size, size) by bicubic convolution with a = -0.75 (PyTorch's and OpenCV's)."""
    rows, cols = cubic_matrix(images.shape[1], size, -0.75), cubic_matrix(images.shape[2], size, -0.75)
    return numpy.einsum('ij,njk,lk->nil', rows, images.astype(numpy.float64), cols).astype(numpy.float32)


def pillow(images, size, method):
    """(N, h, w) -> (N, size, size) with Pillow's resampler `method` (pixel-centre aligned)."""
    return numpy.stack([numpy.asarray(Image.fromarray(image.astype(numpy.float32)).resize((size, size), method))
                        for image in images])


# name -> resampler; every baseline is clipped to [0, 1], the range of the truth
RESAMPLERS = {'nearest': functools.partial(pillow, method=Image.NEAREST),
              'bilinear': functools.partial(pillow, method=Image.BILINEAR),
              'bicubic': functools.partial(pillow, method=Image.BICUBIC), 'bicubic a=-0.75': bicubic_075,
              'lanczos': functools.partial(pillow, method=Image.LANCZOS)}


def resize(images, size, method):
    """(N, h, w) -> (N, size, size) float32 in [0, 1] by one of RESAMPLERS."""
    return numpy.clip(RESAMPLERS[method](images, size), 0.0, 1.0).astype(numpy.float32)
