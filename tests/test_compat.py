"""The shim makes chainer import on NumPy 2 (no numpy.sctypes) and leaves NumPy 1.x alone."""
import subprocess
import sys

from conftest import ROOT



def python(code):
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout



def test_chainer_imports_without_numpy_sctypes():
    """As on NumPy 2: sctypes missing; the shim restores it and chainer imports."""
    out = python('import numpy\n'
                 'if hasattr(numpy, "sctypes"): del numpy.sctypes\n'
                 'from svae import compat; import chainer, chainer.functions\n'
                 'print(sorted(numpy.sctypes), numpy.float32 in numpy.sctypes["float"])')
    assert out.strip() == "['complex', 'float', 'int', 'others', 'uint'] True"



def test_existing_sctypes_is_left_alone():
    """As on NumPy 1.x: numpy.sctypes exists and must not be replaced."""
    out = python('import numpy\n'
                 'mine = {"int": [numpy.int64], "uint": [], "float": [numpy.float64], "complex": [], "others": []}\n'
                 'numpy.sctypes = mine\n'
                 'from svae import compat; import chainer\n'
                 'print(numpy.sctypes is mine)')
    assert out.strip() == 'True'



def test_chainer_imports_without_numpy_distutils_or_pkg_resources():
    """As on Python >= 3.12 or setuptools >= 81: both imports fail; chainer still imports."""
    out = python('import sys\n'
                 'sys.modules["numpy.distutils"] = None\n'
                 'sys.modules["pkg_resources"] = None\n'
                 'from svae import compat; import chainer\n'
                 'print(chainer.__version__)')
    assert out.strip() == '7.8.1'
