"""Support code of the sampling VAE: the compatibility shim, command-line helpers, MNIST, figures, the fast decoder."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: model.py, data/, results/
