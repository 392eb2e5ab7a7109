"""Fixtures that start the farm and scatterd the way tests/integration/lib.sh does, on test
slot 27 (127.2.27.x: lib.sh maps slots above 25 there), and stop every process by pid.

Binaries come from the environment, as for the it_* tests: SCATTERD, SCATTER_FARM and
SCATTER_TOP (the repository, for scripts/farm.sh); clients/python/CMakeLists.txt passes them.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, Iterator, List, Optional

import pytest

from scatter_client import Client, ScatterError

SLOT = 27
NET = f"127.2.{SLOT}"
T1 = f"{NET}.10:18080"
T2 = f"{NET}.11:18080"      # slowed down by scatter's own rate limit: tasks there wait
T3 = f"{NET}.12:18080"      # for error answers (/status/503), away from T1's circuit
PROXY_IP = f"{NET}.1"
PBASE = 10000 + SLOT * 250


def _env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run through ctest (clients/python/CMakeLists.txt) or export it")
    return v


class Farm:
    def __init__(self, root: str) -> None:
        self.top = _env("SCATTER_TOP")
        _env("SCATTER_FARM")
        self.dir = os.path.join(root, "farm")
        subprocess.run([f"{self.top}/scripts/farm.sh", "up", "--out", self.dir, "--proxy-ip", PROXY_IP,
                        "--proxy-base-port", str(PBASE), "--target", T1, "--target", T2, "--target", T3,
                        "--proxies", "100", "--mix", "good=85,flaky=5,refuse=10", "--seed", "27",
                        "--interval-ms", "100", "--urls", "6000"], check=True, stdout=subprocess.DEVNULL,
                       timeout=30)
        with open(os.path.join(self.dir, "pid")) as f:
            self.pid = int(f.read())
        self.proxies = os.path.join(self.dir, "proxies.txt")
        with open(os.path.join(self.dir, "urls.txt")) as f:
            self.urls = [u.strip() for u in f if u.strip()]

    def urls_of(self, target: str, n: int) -> List[str]:
        return [f"http://{target}/item/{i}" for i in range(n)]

    def down(self) -> None:
        subprocess.run([f"{self.top}/scripts/farm.sh", "down", "--out", self.dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)


class Daemon:
    """scatterd -f with two workers on this slot's addresses."""

    def __init__(self, root: str, farm: Farm, name: str, extra: Optional[List[str]] = None) -> None:
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "scatter.sock")
        self.log = os.path.join(self.dir, "scatterd.log")
        ini = os.path.join(self.dir, "scatter.ini")
        lines = ["[scatter]", f'sources = "farm={farm.proxies}"', "allow_private_proxies = true",
                 f'socket_path = "{self.sock}"', f'pid_file = "{self.dir}/scatterd.pid"', "workers = 2",
                 f'log_file = "{self.log}"', f'http_listen = "{NET}.2:{8118 + len(os.listdir(root))}"',
                 f'metrics_listen = "{NET}.3:{9118 + len(os.listdir(root))}"',
                 "shutdown_grace = 2"] + (extra or []) + [
                 "[rate_limit]", "interval = 100", f"[host:{T2}]", "interval = 5000"]
        with open(ini, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.out = open(os.path.join(self.dir, "scatterd.out"), "w")
        self.proc = subprocess.Popen([_env("SCATTERD"), "-c", ini, "-f"], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"scatterd exited during start-up ({self.proc.returncode}): {self.tail()}")
            try:
                with Client(self.sock, connect_timeout=2) as c:
                    if c.status()["status"]["proxies"]["total"] >= 90:
                        break
            except ScatterError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"scatterd did not answer within 20 s: {self.tail()}")
            time.sleep(0.1)
        self.workers = self.worker_pids()

    def worker_pids(self) -> List[int]:
        r = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return sorted(int(p) for p in r.stdout.split())

    def tail(self, n: int = 30) -> str:
        text = ""
        for p in (self.log, os.path.join(self.dir, "scatterd.out")):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += "".join(f.readlines()[-n:])
        return text

    def stop(self, grace: float = 8.0) -> Optional[int]:
        """SIGTERM, SIGKILL after `grace`, then any worker left; the exit status (None if
        it had to be killed)."""
        workers = self.worker_pids() if self.proc.poll() is None else []
        rc: Optional[int] = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            rc = self.proc.returncode
        for p in workers + getattr(self, "workers", []):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.out.close()
        return rc

    def sanitizer_report(self) -> str:
        hits = []
        for p in (self.log, os.path.join(self.dir, "scatterd.out")):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    hits += [l for l in f if "AddressSanitizer" in l or "LeakSanitizer" in l or "runtime error:" in l]
        return "".join(hits)


@pytest.fixture(scope="session")
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="scatter-py.")
    yield d
    if os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"# kept {d}")


@pytest.fixture(scope="session")
def farm(workdir: str) -> Iterator[Farm]:
    f = Farm(workdir)
    try:
        yield f
    finally:
        f.down()


@pytest.fixture(scope="module")
def daemon(workdir: str, farm: Farm, request: pytest.FixtureRequest) -> Iterator[Daemon]:
    d = Daemon(workdir, farm, request.module.__name__.split(".")[-1])
    try:
        yield d
    finally:
        rc = d.stop()
        report = d.sanitizer_report()
        assert not report, f"sanitizer report from scatterd:\n{report}"
        assert rc == 0, f"scatterd exited {rc} on SIGTERM: {d.tail()}"


@pytest.fixture
def fresh_daemon(workdir: str, farm: Farm, request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """A daemon of its own, for a test that stops or breaks it."""
    d = Daemon(workdir, farm, request.node.name)
    try:
        yield d
    finally:
        d.stop()
        report = d.sanitizer_report()
        assert not report, f"sanitizer report from scatterd:\n{report}"


def farm_stats(target: str) -> Dict[str, object]:
    import json
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{target}/__farm/stats", timeout=5) as r:
        return json.loads(r.read())
