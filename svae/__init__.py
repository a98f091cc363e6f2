"""Helpers below the model, none of which imports it: the Chainer shim (compat), MNIST and the article's
figures (data), atomic writes (files), image files (figures), measures (measure), the scripts' command
line (cli). Importing the package applies the shim, so `import svae` comes before `import chainer`."""
import os

from svae import compat  # noqa: F401  (the shim, applied once for every module)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: model.py, data/, results/


class Error(Exception):
    """What went wrong, in one line a user can act on; each script's main prints it and exits with `status`."""
    status = 2
