#!/usr/bin/env python3
"""Recovery benchmark: medic vs Monit on the same faults, side by side.

Both sides supervise the same program (`medic demo-service`) on their own
loopback port. Trials are interleaved (for each round and fault: one medic
trial and one Monit trial, the order alternating) so both sides see the same
machine noise, while only one fault is in flight at a time: on a 2-core
machine, two restarts at once would slow each other down.

Per trial the harness
  1. waits until the side's service is healthy and has been up for at least
     MIN_UPTIME (11 s: past medic's default back-off `min_uptime` of 10 s and
     Monit's 3 s start timeout, so trials are independent), medic has no open
     incident and Monit reports the service fine and monitored;
  2. sleeps a random 0-1 s, so the fault lands at a random phase of both
     daemons' 1 s cycles;
  3. records the fault time (time.time() right before injecting) and injects
     it: SIGKILL of the service pid, or POST /fault/500, or POST /fault/hang;
  4. as an outside observer, starts a GET /health every 20 ms (each on its own
     connection and thread, 1 s client timeout, so a hung request does not
     delay the next one) and takes the first 200 answer as "verified
     recovery"; it then checks that /metrics' demo_start_time_seconds differs
     from the faulted process's (a new process answered);
  5. reads each side's own account: medic's incident (opened_at = detection,
     first `action` event, `verify` event "verified") from its API; for Monit
     the ms timestamp its start/stop program logs as its first statement
     (Monit acts in the same cycle it detects, so this is its detection time),
     plus the demo's "SIGTERM: demo service shutting down" log line on both
     sides (500/hang).

Stdlib only. Usage: see run.sh (`bench.py --help`).
"""

import argparse
import csv
import datetime
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = ["kill", "500", "hang"]
MIN_UPTIME = 11.0
POLL = 0.020
RECOVERY_TIMEOUT = 30.0
CSV_FIELDS = [
    "round", "fault", "side", "fault_at", "old_pid", "new_pid",
    "detect_s", "action_s", "sigterm_s", "new_start_s", "recovered_s",
    "medic_verified_s", "monit_stop_done_s", "monit_start_prog_s", "restarts", "sigkill", "failed_polls_after", "restarted_again",
    "detail", "ok",
]
AFTER_WATCH = 3.0


def log(msg):
    ts = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"[{ts}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- HTTP ----

def http_req(port, method, path, timeout):
    """One request on a fresh connection: (status, body, time received)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Connection": "close"})
        r = conn.getresponse()
        body = r.read()
        return r.status, body, time.time()
    finally:
        conn.close()


def health(port, timeout=0.5):
    try:
        return http_req(port, "GET", "/health", timeout)[0]
    except (OSError, http.client.HTTPException):
        return None


def start_time(port, timeout=1.0):
    """demo_start_time_seconds of the process answering on port, or None."""
    try:
        st, body, _ = http_req(port, "GET", "/metrics", timeout)
    except (OSError, http.client.HTTPException):
        return None
    if st != 200:
        return None
    m = re.search(rb"^demo_start_time_seconds (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def api_json(port, path, timeout=2.0):
    st, body, _ = http_req(port, "GET", path, timeout)
    if st != 200:
        raise RuntimeError(f"GET {path}: {st} {body[:200]!r}")
    return json.loads(body)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------ processes ----

class Procs:
    """Every process group the harness starts, recorded (also in a file, for
    run.sh's trap) so all of them are stopped by pgid, even on failure."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.started = []  # (name, Popen)

    def start(self, name, argv, logpath, env=None):
        out = open(logpath, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True, env=env)
        out.close()
        self.started.append((name, p))
        with open(self.pidfile, "a") as f:
            f.write(f"pgid {p.pid} {name}\n")
        return p

    def stop_all(self):
        for name, p in reversed(self.started):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 8
        for name, p in reversed(self.started):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; SIGKILL its group")
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def kill_port_owners(ports):
    """Last resort: SIGKILL, by pid, any demo-service still running with one
    of this run's listen addresses in its argv."""
    wanted = {f"127.0.0.1:{p}" for p in ports}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if "demo-service" in argv and any(a in wanted for a in argv):
            try:
                os.kill(int(name), signal.SIGKILL)
                log(f"killed leftover demo-service pid {name}")
            except ProcessLookupError:
                pass


def pid_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


# ------------------------------------------------------------ log lines ----

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SIGTERM_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+Z)\s.*SIGTERM: demo service shutting down")


def read_from(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def size_of(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


LISTEN_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+Z)\s.*demo service listening.*\bpid=(\d+)")


def iso_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def listening_after(path, offset, after):
    """(time, pid) of every 'demo service listening' line after `after`."""
    out = []
    for line in read_from(path, offset).splitlines():
        m = LISTEN_LINE.match(ANSI.sub("", line))
        if m and iso_ts(m.group(1)) >= after:
            out.append((iso_ts(m.group(1)), int(m.group(2))))
    return out


def first_sigterm(path, offset, after):
    """Time of the first 'SIGTERM: demo service shutting down' line after `after`."""
    for line in read_from(path, offset).splitlines():
        m = SIGTERM_LINE.match(ANSI.sub("", line))
        if m:
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            if t >= after:
                return t
    return None


# ---------------------------------------------------------------- sides ----

class Side:
    name = ""

    def __init__(self, args, procs, port, workdir):
        self.args, self.procs, self.port, self.dir = args, procs, port, workdir
        os.makedirs(workdir, exist_ok=True)

    def fill(self, template, out, **values):
        with open(os.path.join(HERE, template)) as f:
            text = f.read()
        for k, v in values.items():
            text = text.replace(f"@{k}@", str(v))
        if "@" in re.sub(r"#.*", "", text):
            raise RuntimeError(f"{template}: unfilled placeholder")
        with open(out, "w") as f:
            f.write(text)
        return out


class MedicSide(Side):
    name = "medic"

    def setup(self):
        self.api = free_port()
        rb = os.path.join(self.dir, "runbooks")
        os.makedirs(rb, exist_ok=True)
        self.config = self.fill("medic.yaml.tmpl", os.path.join(self.dir, "medic.yaml"),
                                DIR=self.dir, PORT=self.port, MEDIC_API_PORT=self.api)
        self.fill("restart-demo.yaml.tmpl", os.path.join(rb, "restart-demo.yaml"), PORT=self.port)
        self.demo_log = os.path.join(self.dir, "demo.log")
        r = subprocess.run([self.args.medic_bin, "check", "--config", self.config],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"medic check failed:\n{r.stdout}{r.stderr}")

    def start(self):
        env = dict(os.environ, NO_COLOR="1")
        self.proc = self.procs.start("medic", [self.args.medic_bin, "run", "--config", self.config],
                                     os.path.join(self.dir, "medic.log"), env=env)

    def alive(self):
        return self.proc.poll() is None

    def pid(self):
        for s in api_json(self.api, "/api/v1/services")["services"]:
            if s["name"] == "demo" and s.get("running"):
                return s["pid"]
        return None

    def incidents(self, state):
        return api_json(self.api, f"/api/v1/incidents?state={state}")["incidents"]

    def not_ready_reason(self):
        if self.incidents("open"):
            return "medic has an open incident"
        return None

    def before(self):
        self.max_id = max((i["id"] for i in self.incidents("all")), default=0)
        self.log_off = size_of(self.demo_log)

    def collect(self, t_fault, row):
        """Wait until every incident opened for this fault is resolved, then
        read detection, first action and verification from medic's API."""
        deadline = time.time() + 40
        new = []
        while time.time() < deadline:
            new = [i for i in self.incidents("all") if i["id"] > self.max_id]
            if new and all(i["state"] == "resolved" for i in new):
                break
            time.sleep(0.2)
        else:
            row["detail"] += f"incidents not all resolved: {[(i['id'], i['state']) for i in new]}; "
            row["ok"] = 0
        if not new:
            row["ok"] = 0
            return
        opened, actions, verified, dets, restarts = [], [], [], [], 0
        for inc in new:
            d = api_json(self.api, f"/api/v1/incidents/{inc['id']}")
            opened.append(d["incident"]["opened_at"])
            dets.append(d["incident"]["detector"])
            for ev in d["timeline"]:
                if ev["kind"] == "action" and ev["message"].startswith("running "):
                    actions.append(ev["at"])
                    restarts += 1
                if ev["kind"] == "verify" and ev["message"].startswith("verified"):
                    verified.append(ev["at"])
        row["detect_s"] = min(opened) / 1000 - t_fault
        if actions:
            row["action_s"] = min(actions) / 1000 - t_fault
        if verified:
            row["medic_verified_s"] = min(verified) / 1000 - t_fault
        row["restarts"] = restarts
        row["detail"] += "incidents " + ",".join(f"{i['id']}:{dt}" for i, dt in zip(new, dets)) + "; "
        row["sigkill"] = int("did not stop within its grace period" in read_from(
            os.path.join(self.dir, "medic.log"), self.medic_log_off))
        t = first_sigterm(self.demo_log, self.log_off, t_fault)
        if t is not None:
            row["sigterm_s"] = t - t_fault

    def mark_logs(self):
        self.medic_log_off = size_of(os.path.join(self.dir, "medic.log"))


class MonitSide(Side):
    name = "monit"

    def setup(self):
        self.http = free_port()
        self.rc = self.fill("monitrc.tmpl", os.path.join(self.dir, "monitrc"),
                            DIR=self.dir, PORT=self.port, MONIT_HTTP_PORT=self.http,
                            HERE=HERE, MEDIC_BIN=self.args.medic_bin)
        os.chmod(self.rc, 0o600)
        self.demo_log = os.path.join(self.dir, "demo.log")
        self.actions = os.path.join(self.dir, "actions.log")
        self.pidfile = os.path.join(self.dir, "demo.pid")
        r = subprocess.run([self.args.monit, "-t", "-c", self.rc], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"monit -t failed:\n{r.stdout}{r.stderr}")

    def start(self):
        self.proc = self.procs.start(
            "monit (under subreaper.py)",
            [sys.executable, os.path.join(HERE, "subreaper.py"), os.path.join(self.dir, "monit.fgpid"),
             self.args.monit, "-I", "-c", self.rc],
            os.path.join(self.dir, "monit.stdout"))

    def alive(self):
        return self.proc.poll() is None

    def pid(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        argv = pid_cmdline(pid)
        return pid if f"127.0.0.1:{self.port}" in argv else None

    def not_ready_reason(self):
        try:
            st, body, _ = http_req(self.http, "GET", "/_status?format=xml", 2.0)
        except (OSError, http.client.HTTPException) as e:
            return f"monit httpd: {e}"
        m = re.search(rb'<service type="3">\s*<name>demo</name>(.*?)</service>', body, re.S)
        if not m:
            return "monit: no status for demo"
        svc = m.group(1)
        status = re.search(rb"<status>(\d+)</status>", svc)
        monitor = re.search(rb"<monitor>(\d+)</monitor>", svc)
        if not status or status.group(1) != b"0":
            return "monit: demo status not 0"
        if not monitor or monitor.group(1) != b"1":
            return "monit: demo not monitored"
        return None

    def before(self):
        self.log_off = size_of(self.demo_log)
        self.act_off = size_of(self.actions)

    def mark_logs(self):
        self.monit_log_off = size_of(os.path.join(self.dir, "monit.log"))

    def collect(self, t_fault, row):
        acts = []
        deadline = time.time() + 10
        while time.time() < deadline:
            acts = []
            for line in read_from(self.actions, self.act_off).splitlines():
                parts = line.split()
                if len(parts) == 2:
                    acts.append((parts[0], float(parts[1])))
            if any(a == "start" for a, _ in acts):
                break
            time.sleep(0.1)
        if acts:
            row["detect_s"] = acts[0][1] - t_fault
            row["action_s"] = acts[0][1] - t_fault
        else:
            row["ok"] = 0
            row["detail"] += "no Monit action logged; "
        row["restarts"] = sum(1 for a, _ in acts if a == "start")
        done = [t for a, t in acts if a in ("gone", "kill9")]
        if done:
            row["monit_stop_done_s"] = done[0] - t_fault
        starts = [t for a, t in acts if a == "start"]
        if starts:
            row["monit_start_prog_s"] = starts[0] - t_fault
        row["sigkill"] = int(any(a == "kill9" for a, _ in acts))
        mlog = read_from(os.path.join(self.dir, "monit.log"), self.monit_log_off)
        first = next((ln for ln in mlog.splitlines() if "'demo'" in ln), "")
        row["detail"] += "monit.log: " + re.sub(r"^\[[^\]]*\]\s*", "", first).strip() + "; "
        t = first_sigterm(self.demo_log, self.log_off, t_fault)
        if t is not None:
            row["sigterm_s"] = t - t_fault


# ---------------------------------------------------------------- trial ----

def wait_ready(side, min_uptime, timeout=90):
    """Healthy, up for min_uptime, and the daemon sees nothing wrong."""
    deadline = time.time() + timeout
    reason = "?"
    while time.time() < deadline:
        if not side.alive():
            raise RuntimeError(f"{side.name} daemon exited")
        reason = None
        st = start_time(side.port)
        if health(side.port) != 200 or st is None:
            reason = "service not healthy"
        elif time.time() - st < min_uptime:
            time.sleep(min(1.0, min_uptime - (time.time() - st)) + 0.01)
            continue
        else:
            try:
                reason = side.not_ready_reason()
                if reason is None and side.pid() is None:
                    reason = "no service pid"
            except (OSError, RuntimeError, http.client.HTTPException, ValueError) as e:
                reason = str(e)
        if reason is None:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{side.name}: not ready after {timeout} s: {reason}")


def observe_recovery(port, old_start, t_fault):
    """First 200 from /health after the fault (from a new process)."""
    first = []
    lock = threading.Lock()
    done = threading.Event()

    def one():
        try:
            st, _, t = http_req(port, "GET", "/health", 1.0)
        except (OSError, http.client.HTTPException):
            return
        if st == 200:
            with lock:
                first.append(t)
            done.set()

    while not done.is_set() and time.time() - t_fault < RECOVERY_TIMEOUT:
        if threading.active_count() < 200:
            threading.Thread(target=one, daemon=True).start()
        done.wait(POLL)
    if not done.is_set():
        return None, None
    time.sleep(0.05)  # let near-simultaneous answers land
    with lock:
        t_ok = min(first)
    new_start = start_time(port)
    return t_ok, new_start


def watch_after(port, t_ok):
    """Keep polling /health for AFTER_WATCH s after the recovery: how many
    polls failed (a second restart shows here and in the demo log)."""
    failed = 0
    while time.time() < t_ok + AFTER_WATCH:
        if health(port, timeout=0.5) != 200:
            failed += 1
        time.sleep(POLL)
    return failed


def run_trial(side, fault, rnd, args):
    wait_ready(side, args.min_uptime)
    time.sleep(random.uniform(0, 1.0))
    old_start = start_time(side.port)
    old_pid = side.pid()
    side.before()
    side.mark_logs()
    row = {k: "" for k in CSV_FIELDS}
    row.update(round=rnd, fault=fault, side=side.name, old_pid=old_pid, ok=1, detail="")

    t_fault = time.time()
    if fault == "kill":
        os.kill(old_pid, signal.SIGKILL)
    else:
        st, body, _ = http_req(side.port, "POST", f"/fault/{fault}", 2.0)
        if st != 200:
            raise RuntimeError(f"fault injection failed: {st} {body!r}")
    row["fault_at"] = f"{t_fault:.3f}"

    t_ok, new_start = observe_recovery(side.port, old_start, t_fault)
    if t_ok is None:
        row["ok"] = 0
        row["detail"] += f"not recovered within {RECOVERY_TIMEOUT} s; "
    else:
        row["recovered_s"] = t_ok - t_fault
        if new_start is None or new_start == old_start:
            row["ok"] = 0
            row["detail"] += "200 did not come from a new process; "
        else:
            row["failed_polls_after"] = watch_after(side.port, t_ok)
    # Processes started since the fault, from the service's own log lines
    # ("demo service listening ... pid=N", µs timestamps): the first is the
    # replacement; more than one means the service was restarted again.
    started = listening_after(side.demo_log, side.log_off, t_fault)
    if started:
        row["new_start_s"] = started[0][0] - t_fault
        row["new_pid"] = started[0][1]
        row["restarted_again"] = int(len(started) > 1)
        if len(started) > 1:
            row["detail"] += f"{len(started)} processes started: pids {[p for _, p in started]}; "
    else:
        row["ok"] = 0
        row["detail"] += "no new process in the service log; "
    side.collect(t_fault, row)
    for k in ("detect_s", "action_s", "sigterm_s", "new_start_s", "recovered_s", "medic_verified_s",
              "monit_stop_done_s", "monit_start_prog_s"):
        if isinstance(row[k], float):
            row[k] = f"{row[k]:.3f}"
    log(f"round {rnd} {fault:>4} {side.name:>5}: detect {row['detect_s'] or '-'} s, "
        f"recovered {row['recovered_s'] or '-'} s, restarts {row['restarts']}, "
        f"restarted again {row['restarted_again']}, ok {row['ok']}")
    return row


# --------------------------------------------------------------- report ----

def fnum(x):
    return f"{x:.3f}"


def fratio(a, b):
    if not a or not b or b["median"] <= 0:
        return "n/a"
    r = a["median"] / b["median"]
    return "< 0.01" if r < 0.01 else f"{r:.2f}"


def pctl(xs, p):
    """Nearest-rank percentile."""
    xs = sorted(xs)
    k = max(1, int(-(-p * len(xs) // 100)))
    return xs[k - 1]


def summary(rows, side, fault, key, minus=None):
    """Stats of column `key` (minus column `minus`, per trial) over good trials."""
    xs = [float(r[key]) - (float(r[minus]) if minus else 0.0) for r in rows
          if r["side"] == side and r["fault"] == fault and r["ok"] in (1, "1") and r[key] != ""
          and (minus is None or r[minus] != "")]
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "p90": pctl(xs, 90)}


def count(rows, side, fault, key, at_least):
    return sum(1 for r in rows if r["side"] == side and r["fault"] == fault
               and r[key] not in ("", None) and int(r[key]) >= at_least)


def cell(s):
    if s is None:
        return "n/a"
    return f"**{fnum(s['median'])}** ({fnum(s['min'])}–{fnum(s['max'])}, p90 {fnum(s['p90'])})"


def report(rows, meta):
    out = []
    w = out.append
    w("# Recovery benchmark: medic vs Monit (kill / 500 / hang)")
    w("")
    w("Tables generated by `bench/recovery/bench.py`; re-running the command below replaces")
    w("this file (any hand-written notes at the end belong to the run shown here).")
    w("")
    w("## Run")
    w("")
    for k, v in meta.items():
        w(f"- **{k}**: {v}")
    w("")
    w("## Results")
    w("")
    w("Seconds from fault injection; each cell is **median** (min–max, p90) over the")
    w("trials that recovered. `recovery` is what the outside observer saw (first `200`")
    w("from /health served by a new process, polled every 20 ms); it is measured the")
    w("same way for both sides. Ratio = medic median / Monit median (goal: ≤ 0.50).")
    w("")
    verdicts = []
    for fault in [f for f in FAULTS if any(r["fault"] == f for r in rows)]:
        rm = summary(rows, "medic", fault, "recovered_s")
        rn = summary(rows, "monit", fault, "recovered_s")
        dm = summary(rows, "medic", fault, "detect_s")
        dn = summary(rows, "monit", fault, "detect_s")
        n_m = sum(1 for r in rows if r["side"] == "medic" and r["fault"] == fault)
        n_n = sum(1 for r in rows if r["side"] == "monit" and r["fault"] == fault)
        ok_m = rm["n"] if rm else 0
        ok_n = rn["n"] if rn else 0
        w(f"### {fault}")
        w("")
        w("| | medic | Monit | medic / Monit |")
        w("|---|---|---|---|")
        ratio_d = fratio(dm, dn)
        ratio_r = fratio(rm, rn)
        w(f"| detection | {cell(dm)} | {cell(dn)} | {ratio_d} |")
        w(f"| recovery (observer) | {cell(rm)} | {cell(rn)} | **{ratio_r}** |")
        w(f"| first action (medic: restart step begins; Monit: = detection) | "
          f"{cell(summary(rows, 'medic', fault, 'action_s'))} | "
          f"{cell(summary(rows, 'monit', fault, 'action_s'))} | |")
        w(f"| first SIGTERM to the service | {cell(summary(rows, 'medic', fault, 'sigterm_s'))} | "
          f"{cell(summary(rows, 'monit', fault, 'sigterm_s'))} | |")
        w(f"| new process started | {cell(summary(rows, 'medic', fault, 'new_start_s'))} | "
          f"{cell(summary(rows, 'monit', fault, 'new_start_s'))} | |")
        w(f"| medic `verified` event | {cell(summary(rows, 'medic', fault, 'medic_verified_s'))} | | |")
        w(f"| trials recovered | {ok_m}/{n_m} | {ok_n}/{n_n} | |")
        w(f"| trials with more than one restart | {count(rows, 'medic', fault, 'restarts', 2)} | "
          f"{count(rows, 'monit', fault, 'restarts', 2)} | |")
        w(f"| trials where the recovered process was restarted again within {AFTER_WATCH:g} s | "
          f"{count(rows, 'medic', fault, 'restarted_again', 1)} | "
          f"{count(rows, 'monit', fault, 'restarted_again', 1)} | |")
        w("")
        w("Where the time goes (median of the per-trial differences, s):")
        w("")
        w("| phase | medic | Monit |")
        w("|---|---|---|")
        phases = [("fault → detection", "detect_s", None),
                  ("detection → new process started", "new_start_s", "detect_s")]
        if fault != "kill":
            phases.append(("↳ of which Monit's own wait: its stop program saw the service gone "
                           "(or sent SIGKILL) → it ran the start program",
                           "monit_start_prog_s", "monit_stop_done_s"))
        phases.append(("new process started → first 200", "recovered_s", "new_start_s"))
        for label, key, minus in phases:
            a = summary(rows, "medic", fault, key, minus)
            b = summary(rows, "monit", fault, key, minus)
            w(f"| {label} | {fnum(a['median']) if a else '—'} | {fnum(b['median']) if b else 'n/a'} |")
        w("")
        if rm and rn:
            ratio = rm["median"] / rn["median"]
            verdicts.append(f"- {fault}: ratio {ratio:.2f} → goal "
                            + ("**met**" if ratio <= 0.5 else "**missed**"))
    w("### Goal: recovery in at most half of Monit's time")
    w("")
    out.extend(verdicts)
    w("")
    w("## What each number is")
    w("")
    w("- **fault time**: `time.time()` in the harness right before `kill -9 <pid>` or")
    w("  `POST /fault/500|hang` (the service's pid comes from medic's `/api/v1/services`")
    w("  or Monit's pidfile).")
    w("- **detection, medic**: the earliest `opened_at` (ms) of the incidents opened for")
    w("  the fault (`demo-process-down` from the supervisor for kill, `demo-unhealthy`")
    w("  from the 1 s probe for 500/hang).")
    w("- **detection, Monit**: the time its start program (kill: Monit sees the pid gone")
    w("  and starts) or stop program (500/hang: failed HTTP test → restart = stop, start)")
    w("  logs as its first statement (`$EPOCHREALTIME`, a bash builtin, µs). Monit acts in")
    w("  the cycle it detects, so this is its detection plus a fork/exec of bash (a few ms).")
    w("  Cross-check: the demo's `SIGTERM: demo service shutting down` log line (row")
    w("  `first SIGTERM`), and monit.log (second resolution, in the CSV `detail`).")
    w("- **recovery**: outside observer, identical for both sides (see above).")
    w("- **new process started**: the replacement's own log line `demo service listening")
    w("  ... pid=N` (µs timestamp; the port is bound by then). The observer also checks")
    w("  that the process answering after recovery has a new `demo_start_time_seconds`.")
    w("- **restarted again**: more than one process started after the fault (from the")
    w("  same log lines, up to 3 s after recovery); `failed_polls_after` in the CSV counts")
    w("  /health polls that failed in those 3 s.")
    w("- **medic `verified`**: medic's own `verify` timeline event (its runbook polls")
    w("  /health every 100 ms after the restart step).")
    w("")
    w("Raw per-trial data: `bench/results/recovery.csv` (`detail` has medic's incident ids")
    w("and detectors, or Monit's first log line for the fault).")
    w("")
    return "\n".join(out)


# ----------------------------------------------------------------- main ----

def machine_meta(args):
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open(args.medic_bin, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    repo = os.path.dirname(os.path.dirname(HERE))
    commit = sh("git", "-C", repo, "rev-parse", "--short", "HEAD")
    dirty = sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no")
    profile = args.profile or ("release" if "/release/" in args.medic_bin_source
                               else "debug" if "/debug/" in args.medic_bin_source else "unknown")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"`{args.command}`",
        "machine": f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        "load average at start (1/5/15 min)": load,
        "medic binary": f"**{profile}** build, `{args.medic_bin_source}` (copied for the run; "
                        f"sha256 {digest}…)" + (f"; {args.bin_note}" if args.bin_note else ""),
        "repository at run time": f"HEAD {commit}" + (", working tree has uncommitted changes" if dirty else ""),
        "Monit": sh(args.monit, "-V").splitlines()[0] if sh(args.monit, "-V") else "?",
        "Monit runs under": "`subreaper.py` (PR_SET_CHILD_SUBREAPER; orphaned services reaped at once)",
        "trials per fault and side": str(args.trials),
        "design": "interleaved: per round and fault one medic trial and one Monit trial, "
                  "order alternating; one fault in flight at a time; a random 0–1 s wait "
                  f"before each fault; each service up ≥ {args.min_uptime:g} s before its next fault",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--medic-bin", required=True, help="medic binary used by both sides")
    ap.add_argument("--medic-bin-source", default="", help="where the binary came from (for the report)")
    ap.add_argument("--profile", default="", help="debug or release (default: from the source path)")
    ap.add_argument("--bin-note", default="", help="free text on how the binary was built (for the report)")
    ap.add_argument("--monit", default=shutil.which("monit") or "/usr/bin/monit")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--min-uptime", type=float, default=MIN_UPTIME)
    ap.add_argument("--work", required=True, help="scratch directory (logs, configs, state)")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--command", default="bench/recovery/run.sh")
    args = ap.parse_args()
    args.medic_bin = os.path.abspath(args.medic_bin)
    args.medic_bin_source = args.medic_bin_source or args.medic_bin
    faults = args.faults.split(",")

    meta = machine_meta(args)
    log(f"load average at start: {meta['load average at start (1/5/15 min)']}")
    procs = Procs(os.path.join(args.work, "pids"))
    medic = MedicSide(args, procs, free_port(), os.path.join(args.work, "medic-side"))
    monit = MonitSide(args, procs, free_port(), os.path.join(args.work, "monit-side"))
    ports = [medic.port, monit.port]
    rows = []

    def on_term(_sig, _frm):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        for side in (medic, monit):
            side.setup()
            side.start()
        log(f"medic: demo on :{medic.port}, API on :{medic.api}; "
            f"Monit: demo on :{monit.port}, httpd on :{monit.http}; work dir {args.work}")
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            wr.writeheader()
            for rnd in range(1, args.trials + 1):
                for fi, fault in enumerate(faults):
                    order = (medic, monit) if (rnd + fi) % 2 == 0 else (monit, medic)
                    for side in order:
                        row = run_trial(side, fault, rnd, args)
                        rows.append(row)
                        wr.writerow(row)
                        f.flush()
        with open("/proc/loadavg") as f:
            meta["load average at end"] = " ".join(f.read().split()[:3])
        with open(args.md, "w") as f:
            f.write(report(rows, meta))
        log(f"wrote {args.csv} and {args.md}")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        procs.stop_all()
        kill_port_owners(ports)


if __name__ == "__main__":
    sys.exit(main())
