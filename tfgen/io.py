"""Files: atomic writes, the one file lock, and loading a `.keras` file with a one-line error.

Everything tfgen writes that a user may rely on (configs, checkpoints, models,
sample grids) goes to a temporary file in the same directory first and is then
renamed over the target; `os.replace` is atomic on POSIX and Windows.
`stale_temporaries` finds those a killed process left behind.

`file_lock` is the advisory lock guarding a run directory and the evaluator
cache; `load_keras_file` turns any failure to read a model file into one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffix); rename it to `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=_temporary_suffix(path), dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _temporary_prefix(path: Path) -> str:
    return f".{path.stem}."


def _temporary_suffix(path: Path) -> str:
    return path.suffix or ".tmp"


def stale_temporaries(path) -> list[Path]:
    """Temporary files of `atomic_path(path)` left beside `path` by a process killed mid-write."""
    path = Path(path)
    return sorted(path.parent.glob(f"{_temporary_prefix(path)}*{_temporary_suffix(path)}"))


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_model(model, path) -> None:
    """`model.save` to a `.keras` file, atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class LockHeldError(RuntimeError):
    """`file_lock(..., wait=False)` found the lock taken; `holder` is the pid written in the file ("?" if none)."""

    def __init__(self, path, holder: str):
        super().__init__(f"{path} is locked by process {holder}")
        self.path, self.holder = Path(path), holder


@contextlib.contextmanager
def file_lock(path, wait: bool = True, remove: bool = True):
    """Hold an exclusive advisory lock (`flock`) on the file `path` for the `with` block.

    The kernel releases a flock when its process ends, however it ends (Ctrl-C, a
    crash, kill -9), so a lock file left by a dead process never blocks. The file
    holds the holder's pid. `wait=False`: raise `LockHeldError` at once if another
    holder has it. `remove`: delete the file on the way out, so that a finished
    job leaves no `.lock` behind.

    Removing a lock file races with a process that opened it just before: that
    process may then lock the removed file while a third one creates and locks a
    new file at `path`, and both would believe they hold the lock. Hence the file
    is removed while still locked, and a locker checks, once it holds the lock,
    that the file it locked is still the one at `path`, and starts again if not.
    (No locking where `fcntl` is missing: Windows.)
    """
    path = Path(path)
    fd = _locked_fd(path, wait)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # before the lock goes: see above
        os.close(fd)  # releases the lock


def _locked_fd(path: Path, wait: bool) -> int:
    """A descriptor of the file now at `path`, locked by this process."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LockHeldError(path, holder) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed it while we waited: lock the file at `path` now


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def load_keras_file(path, action: str = "load", error: type[Exception] = ValueError, **kwargs):
    """`keras.saving.load_model(path, **kwargs)`; a missing, truncated or foreign file is one line.

    A missing file is a `FileNotFoundError`; any other failure an `error` saying
    "cannot {action} {path}: the file is truncated or not a Keras model (...)".
    """
    import keras

    import tfgen.models  # noqa: F401  (registers the families with Keras; the command line imports tfgen without them)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: nothing to {action}")
    try:
        return keras.saving.load_model(path, **kwargs)
    except Exception as err:  # a truncated or foreign file: say which, on one line
        detail = " ".join(str(err).split())[:300]
        raise error(f"cannot {action} {path}: the file is truncated or not a Keras model "
                    f"({type(err).__name__}: {detail})") from None
