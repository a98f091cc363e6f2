"""Writing files so that a failure (a full disk, a vanished directory) loses nothing: every writer writes a
temporary file beside its target and renames it over the target only once it is complete."""
import contextlib
import glob
import os

import svae


TEMPORARY_MARK = '.tmp'  # atomic_path's temporary files are .NAME.PID.tmp.EXT


class WriteError(svae.Error):
    """A file that could not be written; the message names it and says why, in one line."""
    status = 1


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path`, with its extension (numpy and matplotlib choose the format by it).
    Makes the directory if needed. If the block wrote it, it replaces `path` when the block ends; if the block fails, it is removed and
    the earlier `path`, if any, stays as it was. An OSError becomes a WriteError naming `path`."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp = os.path.join(directory, f'.{stem}.{os.getpid()}{TEMPORARY_MARK}{extension}')
    try:
        os.makedirs(directory, exist_ok=True)
        yield tmp
        if os.path.exists(tmp):
            os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f'cannot write {path}: {e.strerror or e}') from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    return path


def remove_temporary_files(directory):
    """Remove the temporary files that atomic_path leaves in `directory` when its process was killed mid-write."""
    for path in glob.glob(os.path.join(glob.escape(directory), f'.*.[0-9]*{TEMPORARY_MARK}.*')):
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def new_directories_removed_on_failure(directory):
    """If the block fails, the directories it created on the way to `directory` are removed again (those left
    empty), so that a failed command leaves nothing behind."""
    missing, path = [], os.path.abspath(directory)
    while not os.path.exists(path):
        missing.append(path)  # deepest first, the order of removal
        path = os.path.dirname(path)
    try:
        yield
    except BaseException:
        for path in missing:
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise
