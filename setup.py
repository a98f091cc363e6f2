"""pip install -e . (see README: Chainer 7.8.1's own build needs PIP_CONSTRAINT=constraints.txt)."""
from setuptools import setup

setup(
    name='sampling-vae',
    version='0.1.0',
    description='Resolution-independent image representation with a neural network: a sampling VAE on MNIST',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    py_modules=['compat', 'model', 'fastpath', 'data', 'cli', 'figures', 'train', 'render', 'evaluate', 'convert_model', 'export_web', 'sweep'],
    python_requires='>=3.9',
    install_requires=['chainer==7.8.1', 'numpy', 'matplotlib'],
    extras_require={
        'cuda12': ['cupy-cuda12x'],
        'cuda13': ['cupy-cuda13x'],
        'test': ['pytest', 'selenium'],  # selenium drives Chromium in tests/test_explorer.py
    },
)
