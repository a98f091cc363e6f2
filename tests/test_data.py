import numpy
import pytest

import data


def test_mnist_matches_chainers_get_mnist_layout():
    (x_train, y_train), (x_test, y_test) = data.load_mnist('train'), data.load_mnist('test')
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == numpy.float32 and y_train.dtype == numpy.int32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert list(y_train[:5]) == [5, 0, 4, 1, 9] and list(y_test[:5]) == [7, 2, 1, 0, 4]
    assert abs(x_train.mean() - 0.1307) < 1e-4 and abs(x_train.std() - 0.3081) < 1e-4
    # chainer.datasets.get_mnist scales as raw.astype(float32) then *= 1 / 255., in place (float32)
    with numpy.load(data.MNIST_PATH) as raw:
        expected = raw['x_test'][:100].astype(numpy.float32)[:, None]
    expected *= 1.0 / 255.0
    numpy.testing.assert_array_equal(x_test[:100], expected)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(data.DataFileError, match='missing'):
        data.load_mnist('test', str(tmp_path / 'nope.npz'))
    bad = tmp_path / 'mnist.npz'
    bad.write_bytes(b'not mnist')
    with pytest.raises(data.DataFileError, match='corrupt'):
        data.load_mnist('test', str(bad))
