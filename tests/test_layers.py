"""Imports point one way: the svae helpers at the bottom (none imports the model), the article's model above
them, its other implementations and rendering above it, the model files above those, the scripts on top;
no script imports another. And every module imports from anywhere, in a fresh interpreter."""
import ast
import glob
import os
import subprocess
import sys

import pytest

from conftest import ROOT

LAYERS = {
    'svae': 0,
    'model': 1,
    'affine_model': 2, 'decoders': 2, 'fast_decoder': 2, 'fitting': 2, 'rendering': 2,
    'model_files': 3,
}
SCRIPT_LAYER = 4
MODULES = sorted(glob.glob(os.path.join(ROOT, 'svae', '*.py')) + [os.path.join(ROOT, f'{name}.py') for name in LAYERS
                                                                   if name != 'svae'])
SCRIPTS = sorted([os.path.join(ROOT, 'train.py'), os.path.join(ROOT, 'render.py')]
                 + glob.glob(os.path.join(ROOT, 'experiments', '**', '*.py'), recursive=True)
                 + glob.glob(os.path.join(ROOT, 'tools', '*.py')) + glob.glob(os.path.join(ROOT, 'web', '*.py')))
SCRIPT_NAMES = {os.path.splitext(os.path.basename(path))[0] for path in SCRIPTS}


def layer_of(path):
    name = os.path.splitext(os.path.relpath(path, ROOT))[0].split(os.sep)[0]
    return LAYERS.get(name, SCRIPT_LAYER)


def project_imports(path):
    """The modules of this project a file imports (their top-level names), wherever in the file."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split('.')[0])
    return {name for name in names if name in LAYERS or name in SCRIPT_NAMES or name == 'experiments'}


@pytest.mark.parametrize('path', MODULES + SCRIPTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_imports_point_down(path):
    own = layer_of(path)
    for name in project_imports(path):
        assert name not in SCRIPT_NAMES and name != 'experiments', f'{path} imports the script {name}'
        below = LAYERS[name] < own or (name == 'svae' and own == 0)
        assert below, f'{os.path.relpath(path, ROOT)} (layer {own}) imports {name} (layer {LAYERS[name]})'


def test_the_layers_hold_every_module():
    top_level = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, '*.py'))}
    assert top_level - {'setup', 'train', 'render'} == set(LAYERS) - {'svae'}


@pytest.mark.slow
def test_every_module_imports_from_outside_the_checkout(tmp_path):
    modules = ['svae.' + os.path.splitext(os.path.basename(p))[0] for p in MODULES if os.sep + 'svae' + os.sep in p]
    modules += [name for name in LAYERS if name != 'svae']
    result = subprocess.run([sys.executable, '-c', 'import ' + ', '.join(modules)], cwd=tmp_path,
                            capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert result.returncode == 0, result.stderr
