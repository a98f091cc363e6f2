"""A failed write (a full disk) is one line naming the file, leaves no partial file and keeps the earlier one."""
import errno
import os
import subprocess
import sys

import numpy
import pytest

import svae
from svae import figures
from svae.files import WriteError, atomic_path, write_text
import train
from conftest import ROOT, says
from model import SamplingVAE
from model_files import load_model, save_model

TINY = ['--test', '-z', '2', '-b', '128', '--train-size', '7', '--resolution', '12x10', '--no-progress']


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')


def test_atomic_path_replaces_only_a_complete_file(tmp_path):
    target = tmp_path / 'out.txt'
    write_text(str(target), 'first')
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            assert tmp.endswith('.txt') and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, 'w').write('half')
            raise RuntimeError('the writer fails half way')
    assert target.read_text() == 'first' and os.listdir(tmp_path) == ['out.txt']
    with pytest.raises(WriteError) as error:
        with atomic_path(str(target)) as tmp:
            open(tmp, 'w').write('half')
            full_disk()
    assert says(error.value, target, 'No space left on device')
    assert target.read_text() == 'first' and os.listdir(tmp_path) == ['out.txt']
    with atomic_path(str(target)):
        pass  # nothing written: the target stays
    assert target.read_text() == 'first'
    write_text(str(target), 'second')
    assert target.read_text() == 'second' and os.listdir(tmp_path) == ['out.txt']


def test_a_model_file_and_a_figure_are_never_half_written(tmp_path, monkeypatch):
    numpy.random.seed(0)
    model, path = SamplingVAE(2), str(tmp_path / 'model.npz')
    save_model(model, path)
    before = load_model(path).decoder.linear1.W.array.copy()

    def half_then_full(file, **arrays):
        open(file, 'wb').write(b'PK\x03\x04 half')
        full_disk()
    monkeypatch.setattr(numpy, 'savez_compressed', half_then_full)
    with pytest.raises(WriteError, match=f'cannot write {path}: No space left on device'):
        save_model(SamplingVAE(2), path)
    numpy.testing.assert_array_equal(load_model(path).decoder.linear1.W.array, before)
    image = str(tmp_path / 'a.png')
    figures.save_image(image, numpy.zeros((4, 6)))
    monkeypatch.setattr(figures.plt, 'imsave', lambda file, *a, **k: open(file, 'wb').write(b'\x89PNG half') and full_disk())
    with pytest.raises(WriteError):
        figures.save_image(image, numpy.ones((4, 6)))
    assert figures.plt.imread(image).shape[:2] == (4, 6)
    assert sorted(os.listdir(tmp_path)) == ['a.png', 'model.npz']


@pytest.mark.slow
def test_training_on_a_full_disk_is_one_line_and_keeps_the_last_epoch(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'run'
    train.main(TINY + ['-e', '1', '-o', str(out)])
    before = load_model(str(out / 'model.npz')).decoder.linear1.W.array.copy()
    files = sorted(os.listdir(out))
    capsys.readouterr()
    monkeypatch.setattr(numpy, 'savez_compressed', full_disk)  # snapshots and model files alike
    with pytest.raises(SystemExit) as exit_info:
        train.main(TINY + ['-e', '2', '-o', str(out), '-r', 'auto'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count('\n') == 1
    assert err.startswith('train.py: error: cannot write ') and 'No space left on device' in err
    numpy.testing.assert_array_equal(load_model(str(out / 'model.npz')).decoder.linear1.W.array, before)
    assert sorted(os.listdir(out)) == files  # no temporary file or directory left behind


def tmpfs(path, size):
    path.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)], capture_output=True)
    if result.returncode:
        pytest.skip('cannot mount a small tmpfs here (needs root)')


@pytest.mark.slow
@pytest.mark.parametrize('size', ['1m', '3m'])
def test_a_real_full_disk(tmp_path, size):
    disk = tmp_path / 'disk'
    tmpfs(disk, size)
    try:
        result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *TINY, '-e', '2',
                                 '-o', str(disk / 'out')], capture_output=True, text=True)
        assert result.returncode == 1 and result.stderr.count('\n') == 1, result.stderr
        assert 'No space left on device' in result.stderr and 'Traceback' not in result.stderr
        leftovers = [name for _, dirs, names in os.walk(disk) for name in dirs + names if 'tmp' in name]
        assert leftovers == []
        if (disk / 'out' / 'model.npz').exists():
            load_model(str(disk / 'out' / 'model.npz'))  # complete, never half written
    finally:
        subprocess.run(['umount', str(disk)])
