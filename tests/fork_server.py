"""A fork server for kill -9 matrices: import once, then run each job in a process of its own.

A worker script imports everything a job needs (seconds of CPU on a loaded 2-core machine, more than
the job), prints ``ready``, then for each stdin line forks a child that runs ``work(line.split())`` and
exits; once the child is gone (finished or SIGKILLed, as a crash would) it prints ``<exit_word> CODE``.
With ``session`` the child starts a session (process group) of its own and prints ``started PID``, so a
test can kill it with every process it started. Nothing may open a file, connection or thread before
forking.
"""

import os
import sys
import traceback
from collections.abc import Callable


def serve(work: Callable[[list[str]], None], *, session: bool = False, exit_word: str = "exit") -> None:
    """Run ``work`` in a forked child for every stdin line, until stdin closes."""
    print("ready", flush=True)
    for line in sys.stdin:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the job's own process: never returns into this loop
            code = 0
            try:
                if session:
                    os.setsid()
                    print(f"started {os.getpid()}", flush=True)
                work(line.split())
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"{exit_word} {os.waitstatus_to_exitcode(status)}", flush=True)
