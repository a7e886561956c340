"""`bot.py serve --workers N`: N worker processes on one listening socket, kept running.

The parent binds the port once and forks N workers that all accept on that socket (the
kernel hands each connection to one of them). The workers share nothing but PostgreSQL and
Redis: conversations, de-duplication claims, rate limits and the scheduler's leader lease
live in Redis, everything else in the database. The parent only supervises: a worker that
dies (a crash, `kill -9`, the OOM killer) is started again at once (after a growing pause if
it keeps dying right after its start), and SIGTERM/SIGINT stop every worker gracefully
(each finishes its requests and drains its outbox, as a single `serve` does).

One shared socket rather than a socket per worker with SO_REUSEPORT: with SO_REUSEPORT the
connections waiting in a dead worker's own accept queue are reset with it; on one shared
queue the other workers take them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

QUICK_DEATH = 2.0     # s: a worker dying sooner than this after its start is crash-looping
MAX_PAUSE = 10.0      # s: the longest pause before starting a crash-looping worker again
BACKLOG = 2048


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def serve_workers(host: str, port: int, n: int, run: Callable[[socket.socket], None]) -> int:
    """Run `run(sock)` in `n` forked workers until SIGTERM/SIGINT; 0 when they all stopped."""
    sock = listen(host, port)
    children: dict[int, tuple[int, float]] = {}  # pid → (slot, started at)
    pauses: dict[int, float] = {}
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                run(sock)
            except BaseException:  # noqa: BLE001 - reported, then the worker exits
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        children[pid] = (slot, time.monotonic())
        log.info("workers.started", extra={"slot": slot, "pid": pid})

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(n):
        spawn(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        slot, started = children.pop(pid)
        if stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        quick = time.monotonic() - started < QUICK_DEATH
        pause = min(MAX_PAUSE, max(0.1, pauses.get(slot, 0.0) * 2)) if quick else 0.0
        pauses[slot] = pause
        log.warning("workers.died", extra={"slot": slot, "pid": pid, "exit": code, "restart_in": pause})
        if pause:
            time.sleep(pause)
        if not stopping:
            spawn(slot)
    sock.close()
    return 0
