"""Keep TensorFlow's C++ start-up log lines off the command line's stderr.

TensorFlow 2.21 writes lines such as

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796646479.186607    3956 port.cc:153] oneDNN custom operations are on. ...
    E0000 00:00:1796646482.023187    3956 cuda_platform.cc:52] failed call to cuInit: ...

from C++, straight to file descriptor 2, some of them before absl logging is
initialised, where `TF_CPP_MIN_LOG_LEVEL` is not yet read: setting it does not
silence them. No Python-level setting reaches them, so `filtered_stderr` puts a
pipe in front of descriptor 2 before TensorFlow loads. A thread copies everything
that comes through to the real stderr except those lines (`is_tf_log_line`);
Python's own output (tracebacks, tfgen's one-line errors, warnings) passes
unchanged. On leaving the block, descriptor 2 is the real stderr again and what
was still in the pipe is written out before the block returns.

Only the command line does this: a library must not take over its caller's stderr.
`tfgen --tf-logs ...` or `TFGEN_TF_LOGS=1` shows TensorFlow's lines again.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import threading

#: The lines dropped: absl's log format (severity letter, MMDD, a space), the notice absl prints
#: before it is initialised, the second line of TensorFlow's CPU-instructions notice, and the
#: older `2026-01-01 12:00:00.000000: I tensorflow/...` format of TensorFlow's own logger.
TF_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] )"
)
#: Environment variable that turns the filter off (as `tfgen --tf-logs` does).
ENV_SHOW = "TFGEN_TF_LOGS"
#: A line with no newline yet is written out once nothing more came for this long: a C++ log line
#: arrives in one write, and a prompt or a progress display without newline must not wait forever.
PARTIAL_LINE_SECONDS = 0.2


def is_tf_log_line(line: bytes) -> bool:
    """Whether `line` is one of TensorFlow's C++ log lines (or absl's notice about them)."""
    return TF_LOG_LINE.match(line) is not None


def show_requested(flag: bool = False) -> bool:
    """Whether TensorFlow's lines should be shown: the `--tf-logs` flag or `TFGEN_TF_LOGS=1`."""
    return flag or os.environ.get(ENV_SHOW, "").strip().lower() in ("1", "true", "yes", "on")


class LineFilter:
    """Feed bytes in, get every line that is not a TensorFlow log line written out.

    Whole lines are judged; a partial line is held until its newline comes or `flush()`
    is called (the reader calls it when the pipe has been quiet for a moment), after
    which the rest of that line passes unjudged.
    """

    def __init__(self, write):
        self.write = write
        self.pending = b""
        self.passing = False  # inside a line already written out in part

    def feed(self, data: bytes) -> None:
        while data:
            newline = data.find(b"\n")
            if newline < 0:
                if self.passing:
                    self.write(data)
                else:
                    self.pending += data
                return
            line, data = self.pending + data[:newline + 1], data[newline + 1:]
            self.pending = b""
            if self.passing or not is_tf_log_line(line):
                self.write(line)
            self.passing = False

    def flush(self) -> None:
        """Write out a held partial line (it is not a log line: those arrive whole)."""
        if self.pending and not is_tf_log_line(self.pending):
            self.write(self.pending)
            self.passing = True
        self.pending = b""


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except InterruptedError:
            continue
        except OSError:  # the real stderr is gone (a closed pipe): nothing left to tell
            return


def _copy(read_fd: int, filt: LineFilter) -> None:
    while True:
        ready, _, _ = select.select([read_fd], [], [], PARTIAL_LINE_SECONDS)
        if not ready:
            filt.flush()
            continue
        data = os.read(read_fd, 65536)
        if not data:  # every writer closed: the block has ended
            filt.flush()
            return
        filt.feed(data)


@contextlib.contextmanager
def filtered_stderr(enabled: bool = True):
    """Within the block, file descriptor 2 (C++ and Python alike) goes through `LineFilter`.

    Does nothing when not `enabled`, or where descriptor 2 cannot be replaced (no stderr,
    no `select` on pipes). On exit the real stderr is restored and the thread has written
    everything it was given, so output order with what follows the block is kept.
    """
    if not enabled or os.name != "posix":
        yield
        return
    try:
        real = os.dup(2)
    except OSError:  # no descriptor 2 at all
        yield
        return
    read_fd, write_fd = os.pipe()
    filt = LineFilter(lambda data: _write_all(real, data))
    thread = threading.Thread(target=_copy, args=(read_fd, filt), name="tfgen-stderr-filter", daemon=True)
    thread.start()
    _flush_python_stderr()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        _flush_python_stderr()
        os.dup2(real, 2)  # closes the pipe's last write end (unless a child process still holds it)
        thread.join(timeout=5.0)
        os.close(real)
        if not thread.is_alive():
            os.close(read_fd)


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
