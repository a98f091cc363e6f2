"""Make Chainer 7.8.1 (its final release, 2020) import on today's Python and NumPy.

Import this module before `import chainer`. Both patches are no-ops where they are not needed.
"""
import importlib.util
import os
import sys
import types

# Not a patch: run by a Python without this project's packages (the system one instead of the set-up's
# .venv), say so in one line rather than with an import traceback.
if importlib.util.find_spec('numpy') is None or importlib.util.find_spec('chainer') is None:
    sys.stderr.write(f'{os.path.basename(sys.argv[0]) or "python"}: error: {sys.executable} has no Chainer/NumPy; '
                     'use the environment the set-up made: source .venv/bin/activate (or run .venv/bin/python)\n')
    sys.exit(2)

import numpy  # noqa: E402

# chainer/_environment_check.py imports numpy.distutils (gone on Python >= 3.12) and pkg_resources
# (gone in setuptools >= 81); it only prints macOS-BLAS and version warnings, so stand in a no-op.
_needs_stub = (importlib.util.find_spec('numpy.distutils') is None
               or importlib.util.find_spec('pkg_resources') is None)
if _needs_stub and 'chainer._environment_check' not in sys.modules:
    _check = types.ModuleType('chainer._environment_check')
    _check.check = lambda: None
    sys.modules['chainer._environment_check'] = _check

# chainer/functions/array/as_strided.py reads numpy.sctypes, removed in NumPy 2.0: give back the 1.x dict.
if not hasattr(numpy, 'sctypes'):
    numpy.sctypes = {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64, numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }
