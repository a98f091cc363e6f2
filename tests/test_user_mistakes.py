"""Every user mistake: one line on stderr, exit status 2, no traceback; and every script's --help, which
documents every flag and its default (rendering the help also catches a stray '%', on which argparse
fails only then)."""
import argparse
import os
import subprocess
import sys

import numpy
import pytest

import svae
import chainer

import convert_model
from svae import data
import superres
import export_web
import render
from svae import cli
import train
from conftest import HAVE_GPU, ROOT, says
from decoders import opt_in_decoder
from model import SamplingVAE
from model_files import save_model
import fast_decoder


class CreatesFileWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('models')
    numpy.random.seed(0)
    good = str(d / 'good.npz')
    save_model(SamplingVAE(4), good)
    arrays = dict(numpy.load(good))
    files = {'good': good, 'dir': str(d)}
    files['corrupt'] = str(d / 'random_bytes.npz')
    with open(files['corrupt'], 'wb') as f:
        f.write(os.urandom(1000))
    files['truncated'] = str(d / 'truncated.npz')
    with open(good, 'rb') as f, open(files['truncated'], 'wb') as g:
        g.write(f.read()[:5000])
    files['wrong_keys'] = str(d / 'wrong_keys.npz')
    numpy.savez(files['wrong_keys'], n_latent=numpy.array(4), weights=numpy.zeros(3))
    files['no_latent'] = str(d / 'no_latent.npz')
    numpy.savez(files['no_latent'], **{k: v for k, v in arrays.items() if k != 'n_latent'})
    files['other_latent'] = str(d / 'other_latent.npz')
    numpy.savez(files['other_latent'], **dict(arrays, n_latent=numpy.array(8)))
    files['pickled'] = str(d / 'pickled.npz')
    files['pickle_victim'] = str(d / 'created_by_unpickling')
    numpy.savez(files['pickled'], **dict(arrays, extra=numpy.array([CreatesFileWhenUnpickled(files['pickle_victim'])],
                                                                   dtype=object)))
    files['not_a_dir'] = str(d / 'plain_file')
    open(files['not_a_dir'], 'w').close()
    files['snapshot'] = str(d / 'snapshot_epoch_3')
    with open(files['snapshot'], 'wb') as f:
        numpy.savez(f, **{'updater/model:main/' + k: v for k, v in arrays.items()})
    files['fourier'] = str(d / 'fourier.npz')
    save_model(SamplingVAE(4, decoder_class=opt_in_decoder(2)), files['fourier'])
    files['earlier_run'] = str(d / 'earlier_run')
    os.makedirs(files['earlier_run'])
    save_model(SamplingVAE(4), os.path.join(files['earlier_run'], 'model.npz'))
    return files


def run_main(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    return exit_info.value.code, err


NO_GPU = pytest.mark.skipif(HAVE_GPU, reason='checks the message of a machine without CuPy')

# (script, argv, words the one-line message must contain); {name} is a file from model_files
BAD_INPUTS = [
    ('train', ['-z', '0'], 'must be a positive integer'),
    ('train', ['-z', '-3'], 'must be a positive integer'),
    ('train', ['-z', 'abc'], 'not an integer'),
    ('train', ['-b', '0'], 'must be a positive integer'),
    ('train', ['-e', '0'], 'must be a positive integer'),
    ('train', ['-e', '-1'], 'must be a positive integer'),
    ('train', ['--resolution', '0'], 'must be positive'),
    ('train', ['--resolution', 'abc'], 'not a resolution'),
    ('train', ['--resolution', '10x'], 'not a resolution'),
    ('train', ['--resolution', '99999'], 'at most'),
    ('train', ['--no-such-flag'], 'unrecognized arguments'),
    ('train', ['-o', '{not_a_dir}/sub'], 'cannot write to output directory'),
    ('train', ['--test', '-r', '{dir}/missing_snapshot'], 'does not exist'),
    ('train', ['--test', '-r', '{corrupt}'], 'is corrupt or not a snapshot'),
    ('train', ['--test', '-r', '{good}'], 'cannot be resumed from'),
    pytest.param('train', ['-g', '0'], 'needs CuPy', marks=NO_GPU),
    pytest.param('train', ['-g', '7'], 'needs CuPy', marks=NO_GPU),
    ('render', ['--resolution', '0'], 'must be positive'),
    ('render', ['--resolution', '0x5'], 'must be positive'),
    ('render', ['--resolution', 'abc'], 'not a resolution'),
    ('render', ['--resolution', '10x'], 'not a resolution'),
    ('render', ['--resolution', '1x2x3'], 'not a resolution'),
    ('render', ['--resolution', '30000', '-m', '{good}'], 'GiB of memory'),
    ('render', ['-n', '0'], 'must be a positive integer'),
    ('render', ['--colormap', 'nope'], 'unknown colormap'),
    ('render', ['-m', '{dir}/missing.npz'], 'does not exist'),
    ('render', ['-m', '{dir}'], 'is a directory'),
    ('render', ['-m', '{corrupt}'], 'is corrupt or not an .npz file'),
    ('render', ['-m', '{truncated}'], 'is corrupt or not an .npz file'),
    ('render', ['-m', '{wrong_keys}'], 'does not match'),
    ('render', ['-m', '{no_latent}'], 'does not record its latent size'),
    ('render', ['-m', '{other_latent}'], 'does not match the sampling6x model with n_latent=8'),
    ('render', ['-m', '{pickled}'], 'pickled'),
    ('render', ['-m', '{good}', '-o', '{not_a_dir}/x.png'], 'cannot write to output directory'),
    pytest.param('render', ['-m', '{good}', '-g', '0'], 'needs CuPy', marks=NO_GPU),
    ('render', ['-m', '{good}', '-o', '{dir}'], 'is a directory; give a file name ending in .png'),
    ('render', ['-m', '{good}', '-o', '{dir}/no_extension'], 'must end in .png'),
    ('render', ['-m', '{good}', '-o', '{dir}/x.txt'], 'must end in .png, not .txt'),
    ('render', ['-m', '{good}', '--interpolate', '0', '1', '-o', '{dir}/x.png'], 'must end in .gif'),
    ('render', ['--sample', '4', '-n', '3'], '-n applies to reconstructions'),
    ('render', ['--traverse', '--frames', '3'], '--frames applies to --interpolate only'),
    ('render', ['--interpolate', '0', '1', '--index', '3'], '--index applies to --traverse only'),
    ('render', ['--seed', '3'], '--seed applies to --sample'),
    ('render', ['--interpolate', '0', '1', '--seed', '3'], '--seed applies to --sample'),
    ('render', ['-m', '{snapshot}'], 'is a training snapshot (for train.py -r), not a model file; use'),
    ('train', ['--test', '-o', '{earlier_run}'], 'holds an earlier run'),
    ('train', ['--test', '-o', '{earlier_run}', '-r', 'auto', '--force'], 'give one of them'),
    ('superres', ['-o', '{dir}/table.txt'], 'must end in .md'),
    ('superres', ['--figure', '{dir}'], 'is a directory'),
    ('convert_model', ['{good}', '{dir}/x.npz'], "is not a snapshot of the article's code"),
    ('export_web', ['-m', '{good}', '-o', '{dir}/page.htm'], 'must end in .html'),
    ('export_web', ['-m', '{snapshot}', '-o', '{dir}/page.html'], 'is a training snapshot'),
    ('export_web', ['--digits', '0'], 'must be a positive integer'),
    ('export_web', ['-m', '{fourier}', '-o', '{dir}/page.html'], 'train.py --fourier or --local-grid'),
]


@pytest.mark.parametrize('script,argv,message', BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(script, argv, message, model_files, capsys):
    main = {'train': train.main, 'render': render.main, 'superres': superres.main, 'convert_model': convert_model.main,
            'export_web': export_web.main}[script]
    code, err = run_main(main, [a.format(**model_files) for a in argv], capsys)
    assert code == 2
    assert err.count('\n') == 1 and err.startswith(f'{script}.py: error: ') and message in err, err
    assert 'Traceback' not in err


def test_pickled_model_never_runs_code(model_files, capsys):
    run_main(render.main, ['-m', model_files['pickled']], capsys)
    assert not os.path.exists(model_files['pickle_victim'])


def test_missing_or_corrupt_mnist_is_one_line(monkeypatch, tmp_path, model_files, capsys):
    monkeypatch.setattr(data, 'MNIST_PATH', str(tmp_path / 'gone.npz'))
    code, err = run_main(render.main, ['-m', model_files['good']], capsys)
    assert code == 2 and 'MNIST file' in err and 'missing' in err
    (tmp_path / 'gone.npz').write_bytes(b'x')
    code, err = run_main(train.main, ['--test', '-o', str(tmp_path / 'out')], capsys)
    assert code == 2 and 'corrupt' in err


@pytest.mark.slow
def test_a_real_process_prints_no_traceback(model_files):
    """The same through the interpreter, as a user sees it."""
    result = subprocess.run([sys.executable, 'render.py', '-m', model_files['corrupt']], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith('render.py: error: model file') and 'Traceback' not in result.stderr


def test_decoder_choice():
    import model
    cpu = chainer.get_device('@numpy')
    assert fast_decoder.decoder_class(None, cpu) is fast_decoder.decoder_class('fast', cpu) is fast_decoder.FastSamplingDecoder
    assert fast_decoder.decoder_class('faithful', cpu) is model.SamplingDecoder


@pytest.mark.slow
def test_a_python_without_the_environment_gets_one_line():
    """python -S leaves site-packages out, as the system Python of a user who skipped the venv."""
    result = subprocess.run([sys.executable, '-S', 'train.py', '--test'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count('\n') == 1
    assert result.stderr.startswith('train.py: error: ') and '.venv/bin/activate' in result.stderr


def test_missing_default_model_names_where_it_looked(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, 'DEFAULT_MODELS', ('result/model.npz', str(tmp_path / 'repo' / 'results' / 'model.npz')))
    code, err = run_main(render.main, [], capsys)
    assert code == 2 and says(err, 'render.py: error: ', '-m', tmp_path / 'result' / 'model.npz',
                              tmp_path / 'repo' / 'results' / 'model.npz')


def test_export_web_names_its_default_page_after_the_model(monkeypatch, tmp_path, model_files, capsys):
    """The pretrained model's page and a model trained here go to two files, as render.py's pictures do."""
    monkeypatch.chdir(tmp_path)
    for model, folder in ((cli.PRETRAINED, 'article_50_epochs'), (model_files['good'], 'good')):
        export_web.main(['-m', model, '--digits', '1'])
        out = os.path.join('renders', folder, 'explorer.html')
        assert capsys.readouterr().out.split('\n')[1].startswith(out + ' (')
        assert os.path.isfile(out)


SCRIPTS = ('train', 'render', 'superres', 'export_web', 'convert_model', 'bench_web', 'compare_article', 'poses',
           'model_from_snapshot')


def parser_of(script):
    """The parser script.parse_args builds, taken when it prints --help (which must not fail)."""
    module, seen = __import__(script), []
    original = argparse.ArgumentParser.print_help
    argparse.ArgumentParser.print_help = lambda self, file=None: seen.append(self)
    try:
        module.parse_args(['--help'])
    except SystemExit as e:
        assert e.code == 0
    finally:
        argparse.ArgumentParser.print_help = original
    return seen[0]


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_works_and_documents_every_flag(script):
    parser = parser_of(script)
    assert parser.prog == f'{script}.py' and parser.description
    for action in parser._actions:
        assert action.help, f'{script}.py {action.option_strings} has no help text'
        shown = isinstance(action.default, (int, float, str)) and not isinstance(action.default, bool)
        if shown and action.default not in ('', argparse.SUPPRESS) and not os.path.isabs(str(action.default)):
            assert 'default' in action.help, f'{script}.py {action.option_strings} does not say its default'


def test_a_failed_render_leaves_no_folder_behind(monkeypatch, tmp_path, model_files, capsys):
    monkeypatch.chdir(tmp_path)
    code, _ = run_main(render.main, ['-m', str(tmp_path / 'missing.npz')], capsys)
    assert code == 2 and os.listdir(tmp_path) == []

    def disk_full(path, *args, **kwargs):
        from svae.files import WriteError
        raise WriteError(f'cannot write {path}: No space left on device')
    monkeypatch.setattr(render.figures, 'save_image', disk_full)
    code, err = run_main(render.main, ['-m', model_files['good'], '-n', '1', '--resolution', '8'], capsys)
    assert code == 1 and 'No space left' in err and os.listdir(tmp_path) == []
    code, _ = run_main(render.main, ['-m', model_files['good'], '-n', '1', '--resolution', '8',
                                     '-o', str(tmp_path / 'a' / 'b' / 'x.png')], capsys)
    assert code == 1 and os.listdir(tmp_path) == []
