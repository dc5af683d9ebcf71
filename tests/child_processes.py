"""Child processes in tests: how long to wait for one, and a `tfgen train` that stops where the test acts.

A test never guesses how far a child has got from the time that has passed: on a busy machine
any guess is wrong. The child says when it reaches the point (a file it writes) and waits there
until the test has acted (a file the test writes), so the test acts at exactly that point.
"""

import subprocess
import sys
import time
from pathlib import Path

#: Seconds a test waits for a child process: far beyond what the slowest child needs on a
#: loaded CI machine (minutes), so that only a real hang reaches it, and fails the test
#: instead of hanging the whole job.
HANG_SECONDS = 20 * 60

HELD_TRAIN = """
import sys
import time
from pathlib import Path

from tfgen.callbacks import Throughput
from tfgen.cli import main

step, reached, go, hang_seconds = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
count = Throughput.on_train_batch_end


def hold(self, batch, logs=None):
    count(self, batch, logs)
    if int(self.model.optimizer.iterations) == step:
        reached.write_text("")
        deadline = time.monotonic() + hang_seconds
        while not go.exists() and time.monotonic() < deadline:  # signals are handled while it waits
            time.sleep(0.01)


Throughput.on_train_batch_end = hold
sys.exit(main(sys.argv[5:]))
"""


def start_train_held_at_step(step: int, args, scratch: Path, env=None) -> tuple:
    """`tfgen train ARGS` in a child process that, after its optimiser step `step`, creates
    scratch/reached and then waits until scratch/go exists (see `let_go`).

    Returns (process, reached, go). Its stdout is discarded, its stderr piped.
    """
    reached, go = Path(scratch) / "reached", Path(scratch) / "go"
    proc = subprocess.Popen([sys.executable, "-c", HELD_TRAIN, str(step), str(reached), str(go), str(HANG_SECONDS),
                             "train", *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    return proc, reached, go


def wait_until_reached(proc, reached: Path) -> None:
    """Return once the child has created `reached`; fail if it exits first (with its stderr) or hangs."""
    deadline = time.monotonic() + HANG_SECONDS
    while not reached.exists():
        assert proc.poll() is None, f"training exited early: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"{reached.name} not reached within {HANG_SECONDS} s"
        time.sleep(0.02)


def let_go(go: Path) -> None:
    """Let a held child (`start_train_held_at_step`) continue."""
    go.write_text("")
