#!/usr/bin/env python3
"""Run a command as a child subreaper (prctl PR_SET_CHILD_SUBREAPER).

Usage: subreaper.py PIDFILE CMD [ARGS...]

Orphans of CMD's children (e.g. a service that Monit's start program put in
the background) are reparented to this process instead of PID 1, and are
reaped at once, so a killed service never lingers as a zombie that Monit
would have to wait for. This is the best case for Monit (COMPONENTS.md §4).

On SIGTERM/SIGINT: forward SIGTERM to CMD, wait up to 5 s (then SIGKILL), and
then kill every remaining child of this process (by pid). Writes CMD's pid to
PIDFILE. Exits with CMD's exit status.
"""
import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children_of(ppid):
    """Pids whose parent is ppid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            # Field 4 (ppid) follows the ")" that closes the command name.
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == ppid:
                out.append(int(name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    pidfile, cmd = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("subreaper: prctl failed: errno", ctypes.get_errno(), file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        try:
            os.execv(cmd[0], cmd)
        finally:
            os._exit(127)
    with open(pidfile, "w") as f:
        f.write(f"{child}\n")

    def on_term(_sig, _frm):
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass
        signal.alarm(5)

    def on_alarm(_sig, _frm):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGALRM, on_alarm)

    status = 0
    child_done = False
    while True:
        try:
            # Blocks until any child or adopted orphan exits: reaped at once.
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            child_done = True
            status = os.waitstatus_to_exitcode(st)
        if child_done:
            # CMD is gone: take its orphans (the service) down too, by pid.
            for p in children_of(os.getpid()):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
