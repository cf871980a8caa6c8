"""A blocking ``serve run`` ends on Ctrl-C whichever thread the signal reaches: a process Ray
has joined has gRPC threads that leave SIGINT unblocked, and a main thread asleep in
``time.sleep`` slept on through a SIGINT one of them took (``serving/ctrl_c.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WAITER = textwrap.dedent(
    """
    import signal, threading
    from gradio_diffusion_preview.serving.ctrl_c import wait_for_ctrl_c

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal
    main = threading.main_thread()
    waiting = threading.Event()
    ended = threading.Event()
    sent = []

    def in_a_blocking_call(tid):
        # The main thread asleep in a system call (not waiting for the GIL: futex is 202).
        state = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()[0]
        call = open(f"/proc/self/task/{tid}/syscall").read().split()[0]
        return state == "S" and call not in ("202", "running")

    def ctrl_c_on_another_thread():
        waiting.wait()
        while not in_a_blocking_call(main.native_id):
            pass
        sent.append("to this thread")
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        if not ended.wait(60):  # a hang guard: the main thread missed it; end the wait there
            sent.append("to the main thread")
            signal.pthread_kill(main.ident, signal.SIGINT)

    threading.Thread(target=ctrl_c_on_another_thread, daemon=True).start()
    waiting.set()
    try:
        wait_for_ctrl_c()
    except KeyboardInterrupt:
        ended.set()
        print("ended by the signal sent", " then ".join(sent))
    """
)


def test_ctrl_c_that_reaches_another_thread_ends_the_wait():
    done = subprocess.run(
        [sys.executable, "-c", WAITER], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ended by the signal sent to this thread", done.stdout
