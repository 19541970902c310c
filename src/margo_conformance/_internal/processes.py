"""Child processes that do not outlive the suite process that started them.

A pytest run, a registry, a reference WFM or device started by the suite must not be left running
when the suite is killed (a CI timeout, ``kill``, a closed terminal). On Linux the kernel can send a
signal to a child when its parent ends (``PR_SET_PDEATHSIG``); util-linux's ``setpriv --pdeathsig``
sets it in the child before ``exec``, without Python's thread-unsafe ``preexec_fn``. Where setpriv is
missing the command runs as given, and the explicit clean-up paths remain the only guard.

The signal follows the *thread* that started the child: start long-lived children from a thread that
lives as long as they should (the main thread, or a pool worker that waits for them).
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Sequence

_SETPRIV = shutil.which("setpriv")


def tied_to_parent(command: Sequence[str]) -> list[str]:
    """``command``, prefixed so that it receives SIGTERM when the process that starts it ends."""
    if _SETPRIV is None:
        return list(command)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *command]


def interrupt_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C in this process (main thread only), so that ``finally`` blocks
    and pytest's teardown run: a terminated run still stops its devices and removes its containers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
