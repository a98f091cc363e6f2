"""MNIST from the file shipped in data/, as chainer.datasets.get_mnist(withlabel=True, ndim=3) gives it."""
import hashlib
import os

import numpy

import compat  # noqa: F401
import chainer

MNIST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'mnist.npz')
MNIST_SHA256 = '06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64'


class DataFileError(Exception):
    """The data file is missing or corrupt; the message says which in one line."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_mnist_arrays(path=MNIST_PATH):
    """(x_train, y_train, x_test, y_test): float32 (N, 1, 28, 28) in [0, 1] and int32 labels."""
    if not os.path.isfile(path):
        raise DataFileError(f'MNIST file {path} is missing (it ships with the repository: git checkout data/mnist.npz)')
    if sha256_of(path) != MNIST_SHA256:
        raise DataFileError(f'MNIST file {path} is corrupt (sha256 differs from {MNIST_SHA256})')
    with numpy.load(path, allow_pickle=False) as npz:
        images = [npz[k].astype(numpy.float32)[:, None] for k in ('x_train', 'x_test')]
        labels = [npz[k].astype(numpy.int32) for k in ('y_train', 'y_test')]
    for x in images:
        x *= 1.0 / 255.0  # the same float32 rounding as chainer.datasets.get_mnist
    return images[0], labels[0], images[1], labels[1]


def get_mnist(path=MNIST_PATH, withlabel=True):
    """(train, test) datasets like chainer.datasets.get_mnist(withlabel, ndim=3)."""
    x_train, y_train, x_test, y_test = load_mnist_arrays(path)
    if not withlabel:
        return x_train, x_test
    return chainer.datasets.TupleDataset(x_train, y_train), chainer.datasets.TupleDataset(x_test, y_test)
