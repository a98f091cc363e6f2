"""MNIST from the file shipped in data/, as chainer.datasets.get_mnist(withlabel=True, ndim=3) gives it."""
import hashlib
import os

import svae
from svae import ROOT
import numpy

MNIST_PATH = os.path.join(ROOT, 'data', 'mnist.npz')
MNIST_TEST_SIZE = 10000
MNIST_SHA256 = '06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64'

# The article's published figures (data/article/, MIT licence there): after epoch N, the MNIST test
# digits of these indices in row-major order (matched pixel for pixel against x_test).
ARTICLE_DIR = os.path.join(ROOT, 'data', 'article')
ARTICLE_DIGITS = {
    1: [9077, 3578, 7837, 9242, 9267, 425, 4701, 3548, 2207, 2506, 5126, 3833, 3638, 1072, 8952, 9231],
    50: [8066, 1211, 9647, 2345, 6370, 2133, 6067, 9695, 1931, 4832, 9342, 8556, 3488, 2090, 7461, 7632],
}


class DataFileError(svae.Error):
    """The data file is missing or corrupt; the message says which in one line."""


def sha256_of(path):
    with open(path, 'rb') as f:  # at once: the file is 11 MB
        return hashlib.sha256(f.read()).hexdigest()


def load_mnist(split='train', path=None):
    """(images, labels) of one split: float32 (N, 1, 28, 28) in [0, 1] and int32 labels."""
    path = path or MNIST_PATH
    if not os.path.isfile(path):
        raise DataFileError(f'MNIST file {path} is missing (it ships with the repository: git checkout data/mnist.npz)')
    if sha256_of(path) != MNIST_SHA256:
        raise DataFileError(f'MNIST file {path} is corrupt (sha256 differs from {MNIST_SHA256})')
    with numpy.load(path) as npz:  # NumPy's default allow_pickle=False: no object arrays, no code
        images = npz[f'x_{split}'].astype(numpy.float32)[:, None]
        labels = npz[f'y_{split}'].astype(numpy.int32)
    images *= 1.0 / 255.0  # the same float32 rounding as chainer.datasets.get_mnist
    return images, labels


def downsample(images, size):
    """Area averaging of (N, C, 28, 28) images to (N, C, size, size); size must divide the side."""
    n, c, height, width = images.shape
    if height % size or width % size:
        raise ValueError(f'{size} does not divide {height}x{width}')
    return images.reshape(n, c, size, height // size, size, width // size).mean(axis=(3, 5))


def article_figure(epoch):
    """The article's published renders after `epoch` (1 or 50): (16, 168, 168) grey values in [0, 1]."""
    from PIL import Image  # Pillow comes with matplotlib
    path = os.path.join(ARTICLE_DIR, f'epoch_{epoch}.png')
    grid = numpy.asarray(Image.open(path).convert('L'), dtype=numpy.float32) / 255.0
    cells = grid.reshape(4, 168, 4, 168).transpose(0, 2, 1, 3)
    return cells.reshape(16, 168, 168)
