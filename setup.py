"""pip install -e . installs the dependencies and makes the checkout's modules (the model, its files, rendering,
the fast decoder and the svae helpers) importable from anywhere; the scripts run from the checkout, as
nanoGPT's do. Chainer 7.8.1's own build needs PIP_CONSTRAINT=constraints.txt (README)."""
from setuptools import setup

setup(
    name='sampling-vae',
    version='0.1.0',
    description='Resolution-independent image representation with a neural network: a sampling VAE on MNIST',
    license='MIT',
    py_modules=['model', 'affine_model', 'fast_decoder', 'model_files', 'rendering', 'fitting', 'decoders'],
    packages=['svae'],
    python_requires='>=3.9',  # a GPU: >= 3.10, which CuPy 14 needs
    # threadpoolctl: holds the BLAS to one thread while each core trains on its own blocks (fast_decoder.py)
    install_requires=['chainer==7.8.1', 'numpy', 'matplotlib', 'threadpoolctl'],
    extras_require={
        # [ctk]: the CUDA libraries from pip, so that an NVIDIA driver is all the machine needs
        'cuda12': ['cupy-cuda12x[ctk]'],
        'cuda13': ['cupy-cuda13x[ctk]'],
        # selenium drives Chromium in tests/test_explorer.py
        'test': ['pytest', 'selenium'],
    },
)
