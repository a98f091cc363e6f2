import os

import svae
import chainer
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cupy_gpu():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


HAVE_GPU = _cupy_gpu()
gpu = pytest.mark.skipif(not HAVE_GPU, reason='needs CuPy and a GPU')


@pytest.fixture
def xp_devices():
    """numpy always, cupy where a GPU exists: the same test runs on both."""
    devices = [chainer.get_device('@numpy')]
    if HAVE_GPU:
        devices.append(chainer.get_device('@cupy:0'))
    return devices


def says(message, *gists):
    """Whether a message is one line that says each of `gists` (the file it names, the value refused, the remedy):
    what a user needs from it, not its wording."""
    message = str(message).rstrip('\n')
    return '\n' not in message and all(str(gist) in message for gist in gists)
