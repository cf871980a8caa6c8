"""``wait_for_ctrl_c()``: block the main thread until Ctrl-C, also in a process Ray has joined.

A blocking ``serve run`` waited for Ctrl-C in ``time.sleep(3600)``. Once Ray is connected, the
process has gRPC threads that leave SIGINT unblocked, and a signal that one of them takes (the
kernel hands a process its signal on another thread when the main one already has one pending;
``pthread_kill`` aims at one) only gets noted by Python's C-level handler, since Python
handlers run in the main thread. The main thread's sleep goes on, and ``KeyboardInterrupt``
came up to an hour later, the application deployed all that time.

Python also writes every signal it catches to its wakeup file descriptor, whichever thread
caught it. Waiting on that descriptor wakes the main thread, which then runs the handler.
"""

from __future__ import annotations

import select
import signal
import socket
from typing import NoReturn


def wait_for_ctrl_c() -> NoReturn:
    """Block until SIGINT's handler raises (``KeyboardInterrupt`` by default) in this thread,
    which must be the main one, whichever of the process's threads the signal reached."""
    wake_read, wake_write = socket.socketpair()  # a socket: Windows' wakeup fd must be one
    wake_write.setblocking(False)  # as Python's wakeup fd must be
    previous = signal.set_wakeup_fd(wake_write.fileno())
    try:
        while True:
            select.select([wake_read], [], [])
            wake_read.recv(512)  # the signals' numbers; the handler runs as this returns
    finally:
        signal.set_wakeup_fd(previous)
        wake_read.close()
        wake_write.close()
