"""What the scripts share: argument parsing and errors that answer in one line, device choice, paths."""
import argparse
import contextlib
import datetime
import os
import shlex
import subprocess
import sys
import tempfile

import svae
from svae import ROOT

# The pretrained model committed with the checkout: the article's run (results/README.md).
PRETRAINED = os.path.join(ROOT, 'results', 'article_50_epochs', 'model.npz')
# Without -m: the model train.py writes by default in the current directory, else the pretrained one.
DEFAULT_MODELS = (os.path.join('result', 'model.npz'), PRETRAINED)


class UsageError(svae.Error):
    """A mistake of the user's; main() prints it as one line and exits with status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


def fail(prog, message, status=2):
    sys.stderr.write(f'{prog}: error: {message}\n')
    sys.exit(status)


@contextlib.contextmanager
def one_line_errors(prog, hint=''):
    """Where each script's main ends on what went wrong: a user's mistake, a missing or corrupt file, a
    failed write (svae.Error and its kinds) is one line on stderr and the error's exit status (2, or 1
    for a failed write), never a traceback. `hint` follows the message of a mistake or a missing file."""
    try:
        yield
    except svae.Error as e:
        fail(prog, str(e) + (hint if e.status == 2 else ''), status=e.status)


def model_path(given):
    """-m, or the first default model that exists; a UsageError naming where it looked otherwise."""
    if given:
        return given
    for path in DEFAULT_MODELS:
        if os.path.isfile(path):
            return path
    looked = ' and '.join(os.path.abspath(p) for p in DEFAULT_MODELS)
    raise UsageError(f'no model file given (-m) and none at {looked}')


def model_label(path):
    """A model file's name for the outputs drawn from it (renders/MODEL/...): the folder of a model.npz
    (result, article_50_epochs, ...), else the file's own name without .npz."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == 'model' else stem


def renders_path(model_path, name):
    """renders/MODEL/NAME in the current directory, where a script writes what it drew from a model when no
    -o is given: the same command with another model (the pretrained one, then one trained here) writes
    another file, so that both stay."""
    return os.path.join('renders', model_label(model_path), name)


def shown_path(path):
    """A path as a user reads it: relative to the current directory when it lies below it, else absolute."""
    relative = os.path.relpath(os.path.abspath(path))
    return os.path.abspath(path) if relative.startswith(os.pardir) else relative


def _int_at_least(text, lowest, name):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f'{text} must be a {name} integer')
    return value


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not value >= 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'{text} must be a non-negative number')
    return value


def positive_float(text):
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f'{text} must be a positive number')
    return value


def positive_int(text):
    return _int_at_least(text, 1, 'positive')


def non_negative_int(text):
    return _int_at_least(text, 0, 'non-negative')


MAX_SIDE = 1 << 15  # 32768 pixels a side: beyond that a render takes hours on any machine


def resolution(text):
    """'168' -> (168, 168); '320x200' -> (height 200, width 320), as WxH."""
    parts = text.lower().split('x')
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a resolution: give N or WxH, e.g. 168 or 320x200') from None
    width, height = sizes[0], sizes[-1]
    if min(width, height) <= 0:
        raise argparse.ArgumentTypeError(f'{text!r}: width and height must be positive')
    if max(width, height) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f'{text!r}: at most {MAX_SIDE} pixels a side')
    return height, width


def pose(text):
    """--pose: 'encoded', 'removed', or 'S,DEG,TX,TY' -> (scale > 0, degrees, tx, ty in (-1, 1))."""
    if text in ('encoded', 'removed'):
        return text
    try:
        scale, degrees, tx, ty = (float(part) for part in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give 'encoded', 'removed' or S,DEG,TX,TY, "
                                         'e.g. 1.2,30,0,0.1') from None
    if not scale > 0 or not (abs(tx) < 1 and abs(ty) < 1) or not abs(degrees) < float('inf'):
        raise argparse.ArgumentTypeError(f'{text!r}: the scale must be positive and the shifts within (-1, 1)')
    return scale, degrees, tx, ty


def add_device_flag(parser):
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help="GPU id, negative for the CPU (default -1). A GPU needs CuPy: pip install -e '.[cuda13]' "
                             "or '.[cuda12]'")


def add_decoder_flag(parser):
    parser.add_argument('--decoder', choices=('fast', 'faithful'), default=None,
                        help="faithful: the article's decoder code literally; fast: fast_decoder.py, the same function "
                             "(default: fast on CPU, faithful on GPU until the fast path is verified on one)")


def device_for(gpu):
    """The chainer device for -g, or a UsageError that says what is missing."""
    import chainer  # here, so that a script that reads files only (bench_summary.py) does not load Chainer
    if gpu < 0:
        return chainer.get_device('@numpy')
    try:
        import cupy
    except Exception as e:  # ImportError, or a CuPy that cannot find CUDA
        raise UsageError(f'-g {gpu} needs CuPy, which cannot be imported ({type(e).__name__}); install it '
                         "(pip install -e '.[cuda13]', or '.[cuda12]' for a CUDA 12 driver) or use -g -1 for the CPU"
                         ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise UsageError(f'-g {gpu}: CuPy finds no usable GPU ({type(e).__name__}: {e})') from None
    if gpu >= count:
        raise UsageError(f'-g {gpu}: no such GPU (this machine has {count}: ids 0..{count - 1})')
    device = chainer.get_device(f'@cupy:{gpu}')
    device.use()
    return device


def available_memory(meminfo='/proc/meminfo'):
    """Bytes of memory available now (Linux MemAvailable; elsewhere free physical pages)."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def check_memory(n_bytes, what):
    """Refuse, in one line, work whose arrays would not fit in memory."""
    available = available_memory()
    if n_bytes > 0.8 * available:
        raise UsageError(f'{what} needs about {n_bytes / 2**30:.1f} GiB of memory, '
                         f'{available / 2**30:.1f} GiB is available: ask for a smaller size')


def writable_directory(path):
    """Create path if needed and check a file can be written there, or raise UsageError."""
    try:
        os.makedirs(path, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path)  # a name of its own: never a file of the user's
        os.close(handle)
        os.remove(probe)
    except OSError as e:
        raise UsageError(f'cannot write to output directory {path} ({e.strerror or e})') from None
    return path


def command_line(script, argv=None):
    """'python SCRIPT ARGS' as a shell would take it back (arguments quoted where needed); argv None: sys.argv's."""
    return 'python ' + shlex.join([script] + (sys.argv[1:] if argv is None else argv))


def provenance():
    """'commit abc1234, 2026-11-28' for labelling a result (commit 'unknown' outside a git checkout)."""
    here = ROOT
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += ' with uncommitted changes' if dirty else ''
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown'
    return f'commit {commit}, {datetime.date.today().isoformat()}'


def check_output_file(path, extensions):
    """Refuse, before any work, an output path that is a directory, has another type, or cannot be written."""
    if os.path.isdir(path):
        raise UsageError(f'output {path} is a directory; give a file name ending in {" or ".join(extensions)}')
    extension = os.path.splitext(path)[1].lower()
    if extension not in extensions:
        raise UsageError(f'output {path} must end in {" or ".join(extensions)}'
                         + (f', not {extension}' if extension else ''))
    writable_parent(os.path.dirname(os.path.abspath(path)))


def writable_parent(directory):
    """Check that `directory` can be made and written without making it (the writer makes it): a refused
    or failed command leaves no new directory behind."""
    existing = directory
    while not os.path.isdir(existing):
        if os.path.exists(existing) or os.path.dirname(existing) == existing:
            raise UsageError(f'cannot write to output directory {directory} ({existing} is not a directory)')
        existing = os.path.dirname(existing)
    writable_directory(existing)
