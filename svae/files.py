"""Writing files so that a failure (a full disk, a vanished directory) loses nothing: every writer writes a
temporary file beside its target and renames it over the target only once it is complete."""
import contextlib
import os


class WriteError(Exception):
    """A file that could not be written; the message names it and says why, in one line."""


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path`, with its extension (numpy and matplotlib choose the format by it).
    If the block wrote it, it replaces `path` when the block ends; if the block fails, it is removed and
    the earlier `path`, if any, stays as it was. An OSError becomes a WriteError naming `path`."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp = os.path.join(directory, f'.{stem}.{os.getpid()}.tmp{extension}')
    try:
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
