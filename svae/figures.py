"""Images as files: grids with one pixel per rendered sample (no matplotlib axes, margins or resampling)."""
import os

import numpy
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from svae.files import atomic_path  # noqa: E402

BORDER = 2  # pixels between grid cells
BORDER_VALUE = 0.5  # mid grey, so cells stand apart in any colormap


def upscale_nearest(images, height, width):
    """Nearest-neighbour resize of (N, H, W) to (N, height, width), so originals line up with renders."""
    rows = (numpy.arange(height) * images.shape[1]) // height
    cols = (numpy.arange(width) * images.shape[2]) // width
    return images[:, rows][:, :, cols]


def tile(images, cols=None, border=BORDER, background=BORDER_VALUE):
    """(N, H, W) -> one 2-D image of `cols` columns, cells separated by a border."""
    n, h, w = images.shape
    cols = cols or int(numpy.ceil(numpy.sqrt(n)))
    rows = -(-n // cols)
    grid = numpy.full((rows * (h + border) - border, cols * (w + border) - border), background, numpy.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + border):r * (h + border) + h, c * (w + border):c * (w + border) + w] = image
    return grid


def side_by_side(left, right, border=4 * BORDER):
    """Two 2-D images joined left to right with a border, padded to the taller one."""
    height = max(left.shape[0], right.shape[0])
    out = numpy.full((height, left.shape[1] + border + right.shape[1]), BORDER_VALUE, numpy.float32)
    out[:left.shape[0], :left.shape[1]] = left
    out[:right.shape[0], left.shape[1] + border:] = right
    return out


def to_rgb(image, colormap='gray'):
    """2-D values in [0, 1] -> (H, W, 3) uint8 through a matplotlib colormap (a 256-entry table,
    so a large image costs 4 bytes a pixel, not the 32 of the colormap's float RGBA)."""
    table = (plt.get_cmap(colormap)(numpy.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(numpy.uint8)
    return table[(numpy.clip(image, 0.0, 1.0) * 255 + 0.5).astype(numpy.uint8)]


def _make_parent(path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def save_image(path, image, colormap='gray'):
    """Write a 2-D array in [0, 1] as a PNG of exactly its size; returns the path."""
    _make_parent(path)
    with atomic_path(path) as tmp:
        plt.imsave(tmp, to_rgb(image, colormap))
    return path


def comparison(originals, renders, cols=4):
    """The article's figure: originals (nearest-upscaled to the render size) left, renders right."""
    _, height, width = renders.shape
    cols = min(cols, len(renders))
    return side_by_side(tile(upscale_nearest(originals, height, width), cols), tile(renders, cols))


def article_layout(originals, *renders, cols=4):
    """The article's figure: originals (nearest-upscaled to the render size) above the renders (one or more
    sets), each a grid of `cols` columns on black without margins."""
    _, height, width = renders[0].shape
    grid = lambda images: tile(images, cols, border=0, background=0.0)
    return numpy.concatenate([grid(upscale_nearest(originals, height, width))] + [grid(r) for r in renders], axis=0)


def quantize(images):
    """Values in [0, 1] as a PNG written by save_image stores them (8 bits, rounded), back in [0, 1]."""
    return (numpy.clip(images, 0.0, 1.0) * 255 + 0.5).astype(numpy.uint8) / numpy.float32(255)


def save_gif(path, frames, fps, colormap='gray'):
    """An endlessly looping animated GIF of (N, H, W) frames in [0, 1]; returns the path."""
    from PIL import Image  # Pillow comes with matplotlib
    _make_parent(path)
    images = [Image.fromarray(to_rgb(frame, colormap)) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path
