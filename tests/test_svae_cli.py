"""svae/cli.py's helpers one by one: the boundaries of every check, device choice, paths."""
import argparse
import datetime
import os
import shlex
import subprocess
import sys
import types

import numpy
import pytest

import svae
from conftest import says
import chainer

from svae import cli
import fast_decoder
import model
import model_files


def type_error(check, text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        check(text)
    return str(info.value)


def test_integer_flags_at_their_boundaries():
    assert cli.positive_int('1') == 1 and cli.positive_int('+7') == 7
    assert type_error(cli.positive_int, '0') == '0 must be a positive integer'
    assert cli.non_negative_int('0') == 0
    assert type_error(cli.non_negative_int, '-1') == '-1 must be a non-negative integer'
    assert type_error(cli.positive_int, '2.5') == "'2.5' is not an integer"


def test_non_negative_float_at_its_boundaries():
    assert cli.non_negative_float('0') == 0.0 and cli.non_negative_float('0.25') == 0.25
    assert type_error(cli.non_negative_float, '-0.5') == '-0.5 must be a non-negative number'
    assert type_error(cli.non_negative_float, 'nan') == 'nan must be a non-negative number'
    assert type_error(cli.non_negative_float, 'inf') == 'inf must be a non-negative number'
    assert type_error(cli.non_negative_float, 'lots') == "'lots' is not a number"


def test_pose_is_a_name_or_four_numbers_within_their_bounds():
    assert cli.pose('encoded') == 'encoded' and cli.pose('removed') == 'removed'
    assert cli.pose('1.5,-30,0.99,-0.25') == (1.5, -30.0, 0.99, -0.25)
    assert cli.pose('0.01,720,-0.99,0.99') == (0.01, 720.0, -0.99, 0.99)
    form = "give 'encoded', 'removed' or S,DEG,TX,TY, e.g. 1.2,30,0,0.1"
    for text in ('posed', '1,2,3', '1,2,3,4,5', '1;0;0;0', ''):
        assert type_error(cli.pose, text) == f'{text!r}: {form}'
    bounds = 'the scale must be positive and the shifts within (-1, 1)'
    for text in ('0,0,0,0', '-1,0,0,0', 'nan,0,0,0', '1,0,1,0', '1,0,-1,0', '1,0,0,1', '1,0,0,-1', '1,0,nan,0',
                 '1,0,0,nan', '1,inf,0,0', '1,-inf,0,0', '1,nan,0,0'):
        assert type_error(cli.pose, text) == f'{text!r}: {bounds}'


def test_model_label_names_the_folder_of_a_model_npz_else_the_file(tmp_path, monkeypatch):
    assert cli.model_label(os.path.join('result', 'model.npz')) == 'result'
    assert cli.model_label(os.path.join('results', 'article_50_epochs', 'model.npz')) == 'article_50_epochs'
    assert cli.model_label(os.path.join('result', 'digits.npz')) == 'digits'
    assert cli.model_label(os.path.join('result', 'model_v2.npz')) == 'model_v2'
    (tmp_path / 'run').mkdir()
    monkeypatch.chdir(tmp_path / 'run')
    assert cli.model_label('model.npz') == 'run'


def test_load_any_model_reads_either_kind_with_the_decoder_asked(tmp_path):
    from affine_model import AffineSamplingVAE
    numpy.random.seed(0)
    article, affine = model.SamplingVAE(3), AffineSamplingVAE(2)
    affine.e5_affine.b.array[:] = [0.2, 0.6, 0.3, -0.2]  # not the initial pose, so a fresh model would differ
    for m, name in ((article, 'article.npz'), (affine, 'affine.npz')):
        model_files.save_model(m, str(tmp_path / name))
    for decoder in (fast_decoder.FastSamplingDecoder, model.SamplingDecoder):
        loaded = model_files.load_any_model(str(tmp_path / 'article.npz'), decoder)
        assert type(loaded.decoder) is decoder and loaded.n_latent == 3
        numpy.testing.assert_array_equal(loaded.decoder.linear2.W.array, article.decoder.linear2.W.array)
    loaded = model_files.load_any_model(str(tmp_path / 'affine.npz'), fast_decoder.FastSamplingDecoder)
    assert type(loaded) is AffineSamplingVAE and loaded.n_latent == 2
    numpy.testing.assert_array_equal(loaded.e5_affine.b.array, affine.e5_affine.b.array)


def test_shown_path_is_relative_below_the_current_directory_else_absolute(tmp_path, monkeypatch):
    (tmp_path / 'here').mkdir()
    monkeypatch.chdir(tmp_path / 'here')
    assert cli.shown_path(os.path.join('result', 'model.npz')) == os.path.join('result', 'model.npz')
    assert cli.shown_path(str(tmp_path / 'here' / 'm.npz')) == 'm.npz'
    assert cli.shown_path(os.path.join('..', 'elsewhere', 'm.npz')) == str(tmp_path / 'elsewhere' / 'm.npz')


def test_resolution_is_width_by_height():
    assert cli.resolution('168') == (168, 168)
    assert cli.resolution('320x200') == (200, 320)  # (height, width) from WxH
    assert cli.resolution('5X3') == (3, 5)
    assert cli.resolution(f'{cli.MAX_SIDE}x1') == (1, cli.MAX_SIDE)
    assert cli.MAX_SIDE == 32768
    assert type_error(cli.resolution, f'1x{cli.MAX_SIDE + 1}') == "'1x32769': at most 32768 pixels a side"
    assert type_error(cli.resolution, f'{cli.MAX_SIDE + 1}x1') == "'32769x1': at most 32768 pixels a side"
    assert type_error(cli.resolution, '0x5') == "'0x5': width and height must be positive"
    assert type_error(cli.resolution, '5x0') == "'5x0': width and height must be positive"
    assert type_error(cli.resolution, '1x2x3') == \
        "'1x2x3' is not a resolution: give N or WxH, e.g. 168 or 320x200"
    assert type_error(cli.resolution, 'x5').startswith("'x5' is not a resolution")


def test_parser_error_is_one_line_and_status_2(capsys):
    parser = cli.ArgumentParser(prog='tool.py')
    parser.add_argument('-n', type=cli.positive_int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(['-n', '0'])
    assert info.value.code == 2
    assert says(capsys.readouterr().err, 'tool.py: error: ', '-n', '0', 'positive integer')


def test_fail_writes_one_line_with_the_status_asked(capsys):
    with pytest.raises(SystemExit) as info:
        cli.fail('tool.py', 'something went wrong')
    assert info.value.code == 2 and says(capsys.readouterr().err, 'tool.py: error: something went wrong')
    with pytest.raises(SystemExit) as info:
        cli.fail('tool.py', 'stopped', status=1)
    assert info.value.code == 1


def test_device_and_decoder_flags_default_to_the_cpu():
    parser = cli.ArgumentParser()
    cli.add_device_flag(parser)
    cli.add_decoder_flag(parser)
    args = parser.parse_args([])
    assert args.gpu == -1 and args.decoder is None
    assert parser.parse_args(['-g', '2', '--decoder', 'faithful']).gpu == 2
    with pytest.raises(SystemExit):
        parser.parse_args(['--decoder', 'quick'])


class FakeRuntime:
    def __init__(self, count):
        self.count = count

    def getDeviceCount(self):
        if isinstance(self.count, Exception):
            raise self.count
        return self.count


def fake_cupy(monkeypatch, count):
    cupy = types.ModuleType('cupy')
    cupy.cuda = types.SimpleNamespace(runtime=FakeRuntime(count))
    monkeypatch.setitem(sys.modules, 'cupy', cupy)


def usage_error(call, *args):
    with pytest.raises(cli.UsageError) as info:
        call(*args)
    return str(info.value)


def test_device_for_the_cpu_and_each_missing_gpu(monkeypatch):
    assert cli.device_for(-1).xp is numpy and cli.device_for(-5).xp is numpy
    monkeypatch.setitem(sys.modules, 'cupy', None)  # import cupy raises ImportError
    assert says(usage_error(cli.device_for, 0), '-g 0', 'CuPy', "pip install -e '.[cuda13]'", '-g -1')
    fake_cupy(monkeypatch, RuntimeError('no driver'))
    assert says(usage_error(cli.device_for, 0), '-g 0', 'no usable GPU', 'no driver')
    fake_cupy(monkeypatch, 2)
    assert says(usage_error(cli.device_for, 2), '-g 2', 'ids 0..1')
    used = []
    gpu = types.SimpleNamespace(use=lambda: used.append('use'))
    monkeypatch.setattr(chainer, 'get_device', lambda spec: used.append(spec) or gpu)
    assert cli.device_for(1) is gpu and used == ['@cupy:1', 'use']  # the GPU asked for, made current


def test_decoder_class_for_every_choice_and_device():
    cpu = chainer.get_device('@numpy')
    gpu = types.SimpleNamespace(xp=object())  # anything whose array module is not NumPy
    assert fast_decoder.decoder_class(None, cpu) is fast_decoder.FastSamplingDecoder
    assert fast_decoder.decoder_class('fast', cpu) is fast_decoder.FastSamplingDecoder
    assert fast_decoder.decoder_class('faithful', cpu) is model.SamplingDecoder
    assert fast_decoder.decoder_class(None, gpu) is model.SamplingDecoder
    assert fast_decoder.decoder_class('fast', gpu) is fast_decoder.FastSamplingDecoder
    assert fast_decoder.decoder_class('faithful', gpu) is model.SamplingDecoder


def test_available_memory_reads_memavailable():
    with open('/proc/meminfo') as f:
        expected = next(int(line.split()[1]) for line in f if line.startswith('MemAvailable:')) * 1024
    assert abs(cli.available_memory() - expected) < 2 ** 28  # the same figure, give or take a moment's change


def test_available_memory_is_memavailable_in_bytes_else_free_pages(tmp_path):
    meminfo = tmp_path / 'meminfo'
    meminfo.write_text('MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:    1234567 kB\n')
    assert cli.available_memory(str(meminfo)) == 1234567 * 1024
    free = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    assert abs(cli.available_memory(str(tmp_path / 'no_proc_here')) - free) < 2 ** 30


def test_check_memory_refuses_above_80_percent(monkeypatch):
    monkeypatch.setattr(cli, 'available_memory', lambda: 10 * 2 ** 30)
    cli.check_memory(8 * 2 ** 30, 'a render')  # exactly 80%: allowed
    assert says(usage_error(cli.check_memory, 8 * 2 ** 30 + 1, 'a render'), 'a render', '8.0 GiB', '10.0 GiB')


def test_writable_directory_creates_nested_directories_and_leaves_nothing(tmp_path):
    path = str(tmp_path / 'a' / 'b')
    assert cli.writable_directory(path) == path
    assert os.path.isdir(path) and os.listdir(path) == []
    cli.writable_directory(path)  # an existing directory is fine
    (tmp_path / 'file').write_text('')
    assert says(usage_error(cli.writable_directory, str(tmp_path / 'file' / 'sub')), tmp_path / 'file' / 'sub',
                'Not a directory')


def test_writable_directory_probes_the_directory_itself_and_keeps_a_users_files(tmp_path):
    (tmp_path / '.write_test').write_text('a file of the user\'s')
    cli.writable_directory(str(tmp_path))
    assert os.listdir(tmp_path) == ['.write_test'] and (tmp_path / '.write_test').read_text() == 'a file of the user\'s'
    if sys.platform.startswith('linux'):  # /proc/self: a directory where no file can be made, even by root
        assert says(usage_error(cli.writable_directory, '/proc/self'), '/proc/self', 'cannot write')


def test_check_output_file_messages(tmp_path):
    assert says(usage_error(cli.check_output_file, str(tmp_path), ('.png', '.gif')), tmp_path, 'directory', '.png or .gif')
    assert says(usage_error(cli.check_output_file, str(tmp_path / 'x'), ('.md', '.txt')), tmp_path / 'x', '.md or .txt')
    assert says(usage_error(cli.check_output_file, str(tmp_path / 'x.gif'), ('.png',)), tmp_path / 'x.gif', 'not .gif')
    cli.check_output_file(str(tmp_path / 'new' / 'x.PNG'), ('.png',))  # the case of an extension does not matter
    assert not os.path.exists(tmp_path / 'new')  # checked, not made: the writer makes it
    (tmp_path / 'file').write_text('')
    with pytest.raises(cli.UsageError):
        cli.check_output_file(str(tmp_path / 'file' / 'new' / 'x.png'), ('.png',))


def test_command_line_can_be_pasted_back_into_a_shell(monkeypatch):
    argv = ['-o', 'my results/report.md', '--seed', '4']
    line = cli.command_line('experiments/superres.py', argv)
    assert line == "python experiments/superres.py -o 'my results/report.md' --seed 4"
    assert shlex.split(line)[2:] == argv
    monkeypatch.setattr(sys, 'argv', ['superres.py', '-n', '3'])
    assert cli.command_line('experiments/superres.py') == 'python experiments/superres.py -n 3'
    assert cli.command_line('experiments/superres.py', []) == 'python experiments/superres.py'  # given, though empty


def test_provenance_names_the_commit_and_today(monkeypatch):
    from svae import ROOT as here
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here, capture_output=True, text=True)
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                           capture_output=True, text=True).stdout.strip()
    today = datetime.date.today().isoformat()
    if head.returncode == 0:
        expected = head.stdout.strip() + (' with uncommitted changes' if dirty else '')
        assert cli.provenance() == f'commit {expected}, {today}'

    def fake_git(args, **kwargs):
        assert kwargs == {'cwd': here, 'capture_output': True, 'text': True, 'check': True}
        assert args in (['git', 'rev-parse', '--short', 'HEAD'], ['git', 'status', '--porcelain', '--untracked-files=no'])
        out = {'rev-parse': 'abc1234\n', 'status': ' M model.py\n'}[args[1]]
        return types.SimpleNamespace(stdout=out)
    monkeypatch.setattr(subprocess, 'run', fake_git)
    assert cli.provenance() == f'commit abc1234 with uncommitted changes, {today}'
    monkeypatch.setattr(subprocess, 'run', lambda args, **kwargs: types.SimpleNamespace(
        stdout={'rev-parse': 'abc1234\n', 'status': '\n'}[args[1]]))
    assert cli.provenance() == f'commit abc1234, {today}'

    def no_git(*args, **kwargs):
        raise subprocess.CalledProcessError(128, args[0])
    monkeypatch.setattr(subprocess, 'run', no_git)
    assert cli.provenance() == f'commit unknown, {today}'
