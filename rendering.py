"""Drawing a model at any resolution and over any region of the plane, in bands of rows so that memory does
not grow with the image."""
import svae
import numpy

import chainer
import chainer.functions as F

from model import latent_means, pixel_coordinates


def render(decoder, z, height, width, region=(-1.0, -1.0, 1.0, 1.0), centers=False, max_points=1 << 16, pose=None):
    """Probabilities (N, 1, height, width) as a NumPy array over region = (u0, v0, u1, v1): u from u0
    (top row) to u1 (bottom row), v from v0 (left column) to v1 (right column). Evaluated in bands of
    rows of at most max_points points so memory does not grow with the image. With the default region
    and centers=False this is exactly the article's SamplingDecoder.__call__. `pose`: the raw pose
    parameters (N, 4) an affine3x decoder (affine_model.py) maps each digit's points with."""
    xp = decoder.xp
    z = xp.asarray(z.array if isinstance(z, chainer.Variable) else z, dtype=numpy.float32)
    latent = (z,) if pose is None else (z, xp.asarray(pose, dtype=numpy.float32))
    u0, v0, u1, v1 = region
    u = pixel_coordinates(xp, height, u0, u1, centers)
    v = pixel_coordinates(xp, width, v0, v1, centers)
    rows = max(1, max_points // (width * len(z)))
    out = numpy.empty((len(z), 1, height, width), dtype=numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for top in range(0, height, rows):
            logits = decoder.sample_points(*latent, u[top:top + rows], v)
            out[:, :, top:top + rows] = chainer.backend.CpuDevice().send(F.sigmoid(logits).array)
    return out


def model_render(model, x, size, batch=256):
    """The model's probabilities at size x size for images x (encoded at z = mu), on the model's grid."""
    return numpy.concatenate([render(model.decoder, latent_means(model, x[i:i + batch]), size, size,
                                     centers=model.centers)[:, 0] for i in range(0, len(x), batch)])
