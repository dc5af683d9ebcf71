"""tfgen.io: the file lock (removed when released, safe against a remover's race), stale temporaries,
and the one-line `.keras` loader."""

import fcntl
import os
import threading

import pytest

from child_processes import HANG_SECONDS
from tfgen import io as tio


def test_a_lock_is_exclusive_names_its_holder_and_is_removed_when_released(tmp_path):
    path = tmp_path / ".lock"
    with tio.file_lock(path):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(tio.LockHeldError) as caught:
            with tio.file_lock(path, wait=False):  # another open file: as another process would
                pass
        assert caught.value.holder == str(os.getpid())
    assert not path.exists()
    with tio.file_lock(path, remove=False):
        pass
    assert path.exists()
    with tio.file_lock(path, wait=False):  # a file left behind blocks nothing
        pass


def test_a_locker_that_waited_on_a_removed_file_locks_the_file_now_at_the_path(tmp_path, monkeypatch):
    """The race of removing lock files: B opens the lock file, A (its holder) removes it and lets go,
    B's flock then succeeds on a file no longer at the path, while C creates a new file there. B must
    notice and lock the new file, or B and C would both hold "the" lock."""
    path = tmp_path / ".lock"
    path.write_text("")
    removed = []

    class RemovedWhileWaiting:
        LOCK_EX, LOCK_NB = fcntl.LOCK_EX, fcntl.LOCK_NB

        @staticmethod
        def flock(fd, operation):
            if not removed:  # B has the file open and is about to lock it: its holder removes it now
                removed.append(path.stat().st_ino)
                path.unlink()
            return fcntl.flock(fd, operation)

    monkeypatch.setattr(tio, "fcntl", RemovedWhileWaiting)
    with tio.file_lock(path):  # B
        assert removed and path.exists()
        with pytest.raises(tio.LockHeldError):
            with tio.file_lock(path, wait=False):  # C, on the file at the path: B holds that one
                pass


def test_a_waiting_locker_gets_the_lock_once_released(tmp_path):
    path, order = tmp_path / ".lock", []

    def waiter():
        with tio.file_lock(path):
            order.append("waiter")

    with tio.file_lock(path):
        thread = threading.Thread(target=waiter)
        thread.start()
        order.append("holder")
    thread.join(timeout=HANG_SECONDS)
    assert order == ["holder", "waiter"] and not path.exists()


def test_stale_temporaries_are_the_temporary_files_of_atomic_writes(tmp_path):
    target = tmp_path / "state.json"
    (tmp_path / "other.json").write_text("{}")
    (tmp_path / ".other.x.json").write_text("{}")
    with tio.atomic_path(target) as tmp:  # what a kill -9 at this point would leave behind
        assert tio.stale_temporaries(target) == [tmp]
    assert tio.stale_temporaries(target) == [] and target.exists()


def test_a_bad_keras_file_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tio.load_keras_file(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file" * 10)
    with pytest.raises(LookupError) as caught:
        tio.load_keras_file(bad, "resume from", LookupError)
    message = str(caught.value)
    assert message.startswith(f"cannot resume from {bad}: the file is truncated") and "\n" not in message
