#!/usr/bin/env python3
"""load.py — the client side of scripts/soak.sh: a mixed, bounded load on one scatterd.

Four kinds of clients run at once until --seconds have passed, then the driver stops starting
new work, lets what runs finish (each piece is bounded in time) and exits:

  well-behaved  LANES loops of `scatterctl fetch -i LIST --jsonl OUT`, each batch its own
                process, URL list and output; after each batch the output is checked: one line
                per URL number, none twice, none missing, every error a protocol code (a code
                the client made up locally, such as "disconnected", means the daemon never
                answered). One JSON line per batch goes to OUT/batches.jsonl.
  no-reader     one connection at a time submits NOREAD_TASKS tasks and never reads a byte of
                the replies, holds the connection NOREAD_HOLD_S seconds, then closes.
  disconnect    a connection submits a few tasks and goes away mid-task: at once, after a
                random pause, after reading some replies, or by shutdown(SHUT_WR).
  malformed     a connection sends one broken frame (garbage, 0xc1, oversized str32/bin32/
                array32/map32 headers, nesting deeper than 8, a top-level non-map, a valid
                request followed by garbage, a frame cut short). For every frame that is
                malformed as sent (not merely cut short), docs/PROTOCOL.md §2 promises a
                bad_request reply and a close: each case records whether that happened.

Live counters are rewritten atomically to OUT/driver.json once a second (the soak's per-minute
line reads them). SIGTERM or SIGINT ends every child process this driver started, by pid, and
exits 143 / 130. Python 3 standard library only: the few msgpack maps are packed by hand.
"""
import argparse
import json
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

# The protocol's error codes (docs/PROTOCOL.md §3). Anything else in a fetch result was made up
# by the client library (for example "disconnected": the daemon never answered that task).
PROTOCOL_CODES = {"bad_request", "pool_full", "circuit_open", "max_attempts", "timeout",
                  "cancelled", "too_large", "shutting_down", "internal"}

FETCH_HARD_LIMIT_S = 300  # a batch of <= 400 tasks with a 60 s task timeout ends far sooner


def pack(o):
    """Minimal msgpack encoder for the maps this driver sends (str keys, uint, str, bytes)."""
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if o < 0:
            raise ValueError("negative ints are not needed here")
        if o < 0x80:
            return bytes([o])
        for tag, fmt, lim in ((0xcc, ">B", 1 << 8), (0xcd, ">H", 1 << 16), (0xce, ">I", 1 << 32)):
            if o < lim:
                return bytes([tag]) + struct.pack(fmt, o)
        return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            return b"\xc4" + bytes([n]) + bytes(o)
        if n < 65536:
            return b"\xc5" + struct.pack(">H", n) + bytes(o)
        return b"\xc6" + struct.pack(">I", n) + bytes(o)
    if isinstance(o, (list, tuple)):
        n = len(o)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o).__name__)


class Driver:
    def __init__(self, a):
        self.a = a
        self.out = a.out
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()  # no new work
        self.abort = threading.Event()  # SIGTERM: end everything now
        self.children = set()
        self.sockets = [a.sock] + ["%s.%d" % (a.sock, w) for w in range(1, a.workers + 1)]
        self.c = {
            "batches": 0, "batches_bad": 0, "wb_tasks": 0, "wb_ok": 0, "wb_failed": 0,
            "wb_unanswered": 0, "wb_missing": 0, "wb_duplicate": 0,
            "noread_conns": 0, "noread_tasks": 0,
            "disc_conns": 0, "disc_tasks": 0, "disc_replies_read": 0,
            "malformed": 0, "malformed_expected": 0, "malformed_bad": 0, "truncated": 0,
            "connect_errors": 0,
        }
        self.item_next = {}
        self.t0 = time.monotonic()

    # ---- helpers ----

    def add(self, **kv):
        with self.lock:
            for k, v in kv.items():
                self.c[k] += v

    def log_event(self, name, obj):
        obj = dict(obj, t=round(time.monotonic() - self.t0, 2), phase="warmup" if self.a.warmup else "load")
        with self.lock:
            with open(os.path.join(self.out, name), "a") as f:
                f.write(json.dumps(obj, sort_keys=True) + "\n")

    def write_counters(self):
        ru_self = resource.getrusage(resource.RUSAGE_SELF)
        ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the scatterctl runs that ended
        with self.lock:
            snap = dict(self.c, t=round(time.monotonic() - self.t0, 1),
                        cpu_s=round(ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime, 1))
        tmp = os.path.join(self.out, "driver.json.tmp")
        with open(tmp, "w") as f:
            json.dump(snap, f, sort_keys=True)
        os.replace(tmp, os.path.join(self.out, "driver.json"))

    def url(self, kind):
        """A URL with an item number unique per kind, round-robin over the targets."""
        base = {"wb": 0, "noread": 600000, "disc": 800000}[kind]
        with self.lock:
            n = self.item_next.get(kind, 0)
            self.item_next[kind] = n + 1
        span = 200000 if kind != "wb" else 600000
        t = self.a.targets[n % len(self.a.targets)]
        return "http://%s/item/%d" % (t, base + (n % span))

    def connect(self, path=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path or self.rng.choice(self.sockets))
        except OSError:
            s.close()
            self.add(connect_errors=1)  # a worker socket is briefly missing after a kill
            return None
        return s

    def sleep(self, secs):
        """Sleeps unless aborted; True if the whole time passed."""
        return not self.abort.wait(secs)

    # ---- well-behaved: scatterctl fetch ----

    def lane(self, k):
        b = 0
        while not self.stop.is_set() and not self.abort.is_set():
            b += 1
            self.fetch_batch(k, b, self.rng.randint(self.a.batch_min, self.a.batch_max))
            self.sleep(self.a.batch_pause)

    def fetch_batch(self, k, b, n):
        tag = "lane%d-batch%03d" % (k, b)
        lst = os.path.join(self.out, "fetch", tag + ".urls")
        res = os.path.join(self.out, "fetch", tag + ".jsonl")
        err = os.path.join(self.out, "fetch", tag + ".err")
        urls = [self.url("wb") for _ in range(n)]
        with open(lst, "w") as f:
            f.write("\n".join(urls) + "\n")
        # the lanes differ a little so that more client paths run: default window and race,
        # a small window, and a fixed race width
        extra = [[], ["--window", "40"], ["--race", "2"]][(k - 1) % 3]
        cmd = [self.a.scatterctl, "-s", self.a.sock, "fetch", "-q", "-i", lst, "--jsonl", res] + extra
        t0 = time.monotonic()
        with open(err, "w") as ef:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
            with self.lock:
                self.children.add(p)
            rc, hung = None, False
            while rc is None:
                try:
                    rc = p.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if self.abort.is_set() or time.monotonic() - t0 > FETCH_HARD_LIMIT_S:
                        hung = not self.abort.is_set()
                        p.kill()
                        rc = p.wait()
            with self.lock:
                self.children.discard(p)
        if self.abort.is_set():
            return
        self.check_batch(tag, n, res, rc, hung, time.monotonic() - t0)

    def check_batch(self, tag, n, res, rc, hung, secs):
        seen = {}
        ok = failed = unanswered = 0
        errors = {}
        try:
            with open(res) as f:
                for line in f:
                    o = json.loads(line)
                    seen[o["n"]] = seen.get(o["n"], 0) + 1
                    if o["ok"]:
                        ok += 1
                    else:
                        failed += 1
                        errors[o["error"]] = errors.get(o["error"], 0) + 1
                        if o["error"] not in PROTOCOL_CODES:
                            unanswered += 1
        except (OSError, ValueError, KeyError) as e:
            errors["(unreadable output: %s)" % e] = 1
        missing = sum(1 for i in range(1, n + 1) if i not in seen)
        dup = sum(c - 1 for c in seen.values() if c > 1)
        stray = sum(1 for i in seen if not 1 <= i <= n)
        # fetch exits 0 when all ok, 1 when some task failed; anything else is a client error
        bad = missing or dup or stray or unanswered or hung or rc not in (0, 1) or (rc == 1) != (failed > 0)
        rec = {"batch": tag, "urls": n, "lines": sum(seen.values()), "missing": missing,
               "duplicate": dup, "stray": stray, "ok": ok, "failed": failed,
               "unanswered": unanswered, "errors": errors, "rc": rc, "hung": hung,
               "secs": round(secs, 2), "bad": bool(bad)}
        self.log_event("batches.jsonl", rec)
        if not bad and not self.a.keep_batches:
            for f in (res, res[: -len(".jsonl")] + ".urls", res[: -len(".jsonl")] + ".err"):
                try:
                    os.unlink(f)
                except OSError:
                    pass
        self.add(batches=1, batches_bad=1 if bad else 0, wb_tasks=n, wb_ok=ok, wb_failed=failed,
                 wb_unanswered=unanswered, wb_missing=missing, wb_duplicate=dup)

    # ---- a client that never reads ----

    def noread_once(self, ntasks, hold):
        s = self.connect(self.rng.choice(self.sockets[1:]))
        if not s:
            return
        sent = 0
        try:
            # a small receive buffer so that the daemon's side fills early
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            for i in range(1, ntasks + 1):
                s.sendall(pack({"op": "submit", "id": i, "url": self.url("noread")}))
                sent += 1
        except OSError as e:
            self.log_event("clients.jsonl", {"kind": "noread", "sent": sent, "error": str(e)})
        self.add(noread_conns=1, noread_tasks=sent)
        self.sleep(hold)
        s.close()

    def noread_loop(self):
        while not self.stop.is_set() and not self.abort.is_set():
            self.noread_once(self.a.noread_tasks, self.a.noread_hold)
            self.sleep(max(0.0, self.a.noread_every - self.a.noread_hold))

    # ---- clients that disconnect mid-task ----

    def disconnect_once(self, how):
        s = self.connect()
        if not s:
            return
        n = self.rng.randint(3, 40)
        read = 0
        try:
            s.sendall(b"".join(pack({"op": "submit", "id": 1000 + i, "url": self.url("disc"),
                                     "timeout_ms": 30000}) for i in range(n)))
            if how == "pause":
                time.sleep(self.rng.uniform(0.05, 1.5))
            elif how == "some_replies":
                # read a little of what comes back (a few replies, or 2 s), then go
                s.settimeout(0.5)
                end = time.monotonic() + 2
                while time.monotonic() < end and read < 3:
                    try:
                        b = s.recv(4096)
                    except socket.timeout:
                        continue
                    if not b:
                        break
                    read += 1
            elif how == "shut_wr":
                # half-close counts as close (§6): the server cancels, flushes, then closes
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                while s.recv(65536):
                    read += 1
        except OSError as e:
            self.log_event("clients.jsonl", {"kind": "disconnect", "how": how, "error": str(e)})
        s.close()
        self.add(disc_conns=1, disc_tasks=n, disc_replies_read=read)

    def disconnect_loop(self):
        hows = ["now", "pause", "some_replies", "shut_wr"]
        i = 0
        while not self.stop.is_set() and not self.abort.is_set():
            self.disconnect_once(hows[i % len(hows)])
            i += 1
            self.sleep(self.rng.uniform(0.5, 2 * self.a.disconnect_every))

    # ---- malformed frames ----

    def malformed_cases(self):
        sub = pack({"op": "submit", "id": 5, "url": self.url("disc")})
        garbage = bytes([0xc1]) + bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 63)))
        # (name, bytes, malformed as sent => bad_request + close promised, hold seconds)
        return [
            ("garbage_c1", garbage, True, 0),
            ("http_text", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True, 0),
            ("top_level_array", b"\x93\x01\x02\x03", True, 0),
            ("str32_4GiB", b"\x81\xa2op\xdb\xff\xff\xff\xff" + b"x" * 64, True, 0),
            ("bin32_1GiB", b"\x81\xa4body\xc6\x40\x00\x00\x00" + b"\0" * 4096, True, 0),
            ("array32_2e31", b"\xdd\x80\x00\x00\x00", True, 0),
            ("map32_2e31", b"\xdf\x7f\xff\xff\xff", True, 0),
            ("depth_12", b"\x81\xa1a" + b"\x91" * 12 + b"\x01", True, 0),
            ("valid_then_c1", pack({"op": "status", "id": 9}) + b"\xc1", True, 0),
            ("truncated_close", sub[: self.rng.randint(1, len(sub) - 1)], False, 0),
            ("truncated_hold", sub[: self.rng.randint(1, len(sub) - 1)], False, 5),
        ]

    def malformed_once(self, name, data, promised, hold):
        s = self.connect()
        if not s:
            return
        got, closed, err = b"", False, None
        try:
            s.sendall(data)
            if hold:
                self.sleep(hold)
            else:
                s.settimeout(3)
                while True:  # a promised close comes within 3 s, else it counts as missing
                    b = s.recv(65536)
                    if not b:
                        closed = True
                        break
                    got += b
        except socket.timeout:
            pass
        except OSError as e:
            # the daemon may close while we still write (then there is no reply to read)
            err = str(e)
            closed = True
        s.close()
        self.add(malformed=1, truncated=0 if promised else 1)
        if promised:
            kept = closed and (b"bad_request" in got or err is not None)
            self.add(malformed_expected=1, malformed_bad=0 if kept else 1)
            if not kept:
                self.log_event("clients.jsonl", {"kind": "malformed", "case": name, "closed": closed,
                                                 "reply_bytes": len(got), "error": err,
                                                 "bad_request": b"bad_request" in got})

    def malformed_loop(self):
        i = 0
        while not self.stop.is_set() and not self.abort.is_set():
            cases = self.malformed_cases()
            self.malformed_once(*cases[i % len(cases)])
            i += 1
            self.sleep(self.rng.uniform(0.5, 2 * self.a.malformed_every))

    # ---- warm-up: each kind once, so the idle band is measured on a process that has seen them

    def warmup(self):
        self.fetch_batch(0, 0, self.a.batch_max)
        self.noread_once(50, 3)
        for how in ["now", "pause", "some_replies", "shut_wr"]:
            self.disconnect_once(how)
        for case in self.malformed_cases():
            self.malformed_once(*case)

    def run(self):
        os.makedirs(os.path.join(self.out, "fetch"), exist_ok=True)
        ticker = threading.Thread(target=self.tick, daemon=True)
        ticker.start()
        if self.a.warmup:
            self.warmup()
        else:
            threads = [threading.Thread(target=self.lane, args=(k,)) for k in range(1, self.a.lanes + 1)]
            threads += [threading.Thread(target=f) for f in
                        (self.noread_loop, self.disconnect_loop, self.malformed_loop)]
            for t in threads:
                t.start()
            deadline = self.t0 + self.a.seconds
            while not self.abort.is_set() and time.monotonic() < deadline:
                self.abort.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            self.stop.set()
            for t in threads:
                t.join()
        self.write_counters()

    def tick(self):
        while True:
            self.write_counters()
            time.sleep(1)

    def terminate(self, signum):
        self.abort.set()
        self.stop.set()
        with self.lock:
            kids = list(self.children)
        for p in kids:
            try:
                p.kill()
            except OSError:
                pass
        os._exit(128 + signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sock", required=True, help="the daemon's main socket")
    ap.add_argument("--workers", type=int, default=2, help="worker sockets are SOCK.1 .. SOCK.N")
    ap.add_argument("--scatterctl", required=True)
    ap.add_argument("--target", dest="targets", action="append", required=True, help="IP:PORT, repeatable")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", action="store_true", help="run each kind of client once, then exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lanes", type=int, default=3)
    ap.add_argument("--batch-min", type=int, default=100)
    ap.add_argument("--batch-max", type=int, default=300)
    ap.add_argument("--batch-pause", type=float, default=2.0)
    ap.add_argument("--keep-batches", action="store_true",
                    help="keep the URL list and output of every batch (default: only of failed ones)")
    ap.add_argument("--noread-tasks", type=int, default=200)
    ap.add_argument("--noread-hold", type=float, default=40)
    ap.add_argument("--noread-every", type=float, default=60)
    ap.add_argument("--disconnect-every", type=float, default=2.0)
    ap.add_argument("--malformed-every", type=float, default=2.0)
    a = ap.parse_args()
    d = Driver(a)
    signal.signal(signal.SIGTERM, lambda s, f: d.terminate(s))
    signal.signal(signal.SIGINT, lambda s, f: d.terminate(s))
    d.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
