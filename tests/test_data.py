import numpy
import pytest

from conftest import says
from svae import data


@pytest.mark.slow
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


def test_data_file_messages_name_the_file_and_what_is_wrong(tmp_path):
    missing = str(tmp_path / 'nope.npz')
    with pytest.raises(data.DataFileError) as info:
        data.load_mnist('test', missing)
    assert says(info.value, missing, 'missing', 'git checkout data/mnist.npz')
    bad = tmp_path / 'mnist.npz'
    bad.write_bytes(b'not mnist')
    with pytest.raises(data.DataFileError) as info:
        data.load_mnist('test', str(bad))
    assert says(info.value, bad, 'corrupt', data.MNIST_SHA256)


def test_sha256_of_a_file(tmp_path):  # the digest as sha256sum prints it
    content = numpy.random.RandomState(0).bytes(3 * (1 << 20) + 17)
    path = tmp_path / 'blob'
    path.write_bytes(content)
    assert data.sha256_of(str(path)) == '91a71dd79243f700686826f9683a2b8f508d061a784110212e23f0767c4e851d'


def test_a_file_with_pickled_objects_is_not_unpickled_even_with_the_right_sha256(tmp_path, monkeypatch):
    """Behind the sha256 check a second guard: np.load never unpickles (an object array could run code)."""
    path = tmp_path / 'mnist.npz'
    numpy.savez(path, x_test=numpy.array([[1, 2], 'not an image'], dtype=object), y_test=numpy.zeros(1))
    monkeypatch.setattr(data, 'MNIST_SHA256', data.sha256_of(str(path)))
    with pytest.raises(ValueError, match='allow_pickle=False'):
        data.load_mnist('test', str(path))


def test_labels_and_the_default_path():
    images, labels = data.load_mnist('test')
    assert len(images) == len(labels) == data.MNIST_TEST_SIZE == 10000
    with numpy.load(data.MNIST_PATH) as raw:
        numpy.testing.assert_array_equal(labels, raw['y_test'])
        assert raw['x_test'][7].tobytes() == numpy.rint(images[7, 0] * 255).astype(numpy.uint8).tobytes()


def test_downsample_of_a_non_square_image_and_a_size_that_does_not_divide():
    x = numpy.arange(2 * 4 * 8, dtype=numpy.float32).reshape(1, 2, 4, 8)  # two channels, 4 rows, 8 columns
    out = data.downsample(x, 2)
    assert out.shape == (1, 2, 2, 2) and out.dtype == numpy.float32
    # channel 1, lower-right block: rows 2-3, columns 4-7 of the second channel
    assert out[0, 1, 1, 1] == x[0, 1, 2:, 4:].mean()
    assert out[0, 0, 0, 1] == x[0, 0, :2, 4:].mean()
    with pytest.raises(ValueError) as info:
        data.downsample(numpy.zeros((1, 1, 28, 28), numpy.float32), 3)
    assert str(info.value) == '3 does not divide 28x28'
    with pytest.raises(ValueError, match='^4 does not divide 4x6$'):
        data.downsample(numpy.zeros((1, 1, 4, 6), numpy.float32), 4)  # divides the height, not the width
    with pytest.raises(ValueError, match='^4 does not divide 6x4$'):
        data.downsample(numpy.zeros((1, 1, 6, 4), numpy.float32), 4)


def test_the_default_split_is_train():
    images, labels = data.load_mnist()
    assert images.shape == (60000, 1, 28, 28) and list(labels[:3]) == [5, 0, 4]
