"""Peak memory of a measurement: resident set size sampled while a model is built, trained and sampled."""

from __future__ import annotations

import gc
import os
import platform
import resource
import threading

MEMORY_METHOD = ("resident set size from /proc/self/statm, sampled every 10 ms while the model is built, trained and "
                 "sampled, minus the RSS just before (after gc and malloc_trim): memory that an earlier model freed "
                 "and the allocator kept is reused without being counted, so an in-process figure is a lower bound. "
                 "tf.config.experimental.get_memory_info has no allocator statistics for CPU:0")


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def max_rss_bytes() -> int:
    """The process's high-water mark so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


def release_free_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc `malloc_trim`), so that
    RSS measured next starts low instead of counting what earlier models freed."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class MemoryWatcher:
    """`with MemoryWatcher() as w:` … `w.peak_increase_mb`: peak RSS inside the block minus RSS before it.

    A daemon thread samples /proc/self/statm every `interval` seconds (it holds the GIL
    only to read a few bytes; TensorFlow kernels run without it). Without /proc (not
    Linux) it falls back to the change in ru_maxrss, which only sees new process peaks.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.start = self.peak = None
        self._stop = threading.Event()

    def __enter__(self):
        release_free_memory()
        self.start = rss_bytes()
        self._start_maxrss = max_rss_bytes()
        self.peak = self.start
        if self.start is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            now = rss_bytes()
            if now is not None and now > self.peak:
                self.peak = now

    def __exit__(self, *exc):
        self._stop.set()
        if self.start is not None:
            self._thread.join()
            now = rss_bytes()
            self.peak = max(self.peak, now or 0)
        return False

    @property
    def method(self) -> str:
        return "rss_sampled" if self.start is not None else "ru_maxrss_delta"

    @property
    def peak_increase_mb(self) -> float:
        if self.start is not None:
            return (self.peak - self.start) / 2**20
        return (max_rss_bytes() - self._start_maxrss) / 2**20
