"""scatter_client against a real scatterd and the farm (fixtures in conftest.py)."""
from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from typing import Iterator, List

import pytest

from conftest import T1, T2, T3, farm_stats
from scatter_client import (AsyncClient, BadRequest, Client, MaxAttempts, Request, Result, ScatterError, TaskFuture)


def mixed_urls(n: int) -> List[str]:
    """n distinct URLs alternating between T1 and T3 (T2 is the slow host)."""
    return [f"http://{T1 if i % 2 == 0 else T3}/item/{i}" for i in range(n)]


def account(results: List[Result], urls: List[str]) -> collections.Counter:
    seen = collections.Counter(r.url for r in results)
    assert len(results) == len(urls), f"{len(results)} results for {len(urls)} requests"
    assert set(seen) == set(urls) and max(seen.values()) == 1, "a request answered twice or never"
    return collections.Counter(r.code for r in results)


def no_violations() -> None:
    for t in (T1, T2, T3):
        assert farm_stats(t)["violations"] == 0, f"rate-limit violations at {t}"


def test_fetch_one_request_and_the_calls(daemon):
    with Client(daemon.sock) as c:
        assert c.info["protocol"] == 1 and c.info["workers"] == 2
        assert c.connections == 2, "one connection per worker socket"
        r = c.fetch(f"http://{T1}/item/7", headers={"X-Test": "1"}, race=2, timeout=10, max_attempts=3)
        assert r.ok and r.status == 200 and b"item 7" in r.body and r.proxy.startswith("socks5://")
        assert r.attempts >= 1 and r.header("content-length") is not None
        # the target's own answer is returned as it came (a status in no list)
        assert c.fetch(f"http://{T1}/status/404").status == 404
        # method and body reach the target: the farm answers 405 to anything but GET/HEAD
        assert c.fetch(Request(f"http://{T1}/item/8", method="POST", body=b"x=1")).status == 405
        assert c.fetch(f"http://{T1}/item/9", method="HEAD").body == b""
        st = c.status()
        assert st["status"]["workers"] == 2 and st["status"]["tasks"]["completed"] >= 4
        assert "budget" in st["worker_memory"]
        names = {h["name"] for h in c.hosts()}
        assert T1 in names
        page = c.proxies(limit=10)
        assert page["total"] == 100 and len(page["proxies"]) == 10 and page["next_offset"] == 10
        assert c.proxies(limit=5, offset=98)["next_offset"] == 100
        cfg = c.config()
        assert "[scatter]" in cfg["worker"] and f"[host:{T2}]" in cfg["master"]


def test_errors_are_exceptions_named_after_the_codes(daemon):
    with Client(daemon.sock) as c:
        with pytest.raises(MaxAttempts) as ei:
            c.fetch(f"http://{T3}/status/503", max_attempts=1, race=1)
        e = ei.value
        assert e.code == "max_attempts" and e.host == T3 and e.attempts == 1
        assert "503" in e.last_error and e.message
        # refused by the daemon's validation, with its message
        with pytest.raises(BadRequest) as bi:
            c.fetch(f"http://{T1}/item/1", method="get")
        assert "method" in bi.value.message
        # refused before it is sent: nothing the daemon would take
        with pytest.raises(BadRequest, match="race must be 1..64"):
            c.fetch(f"http://{T1}/item/1", race=65)
        with pytest.raises(ScatterError, match="max_request_body"):
            c.fetch(Request(f"http://{T1}/item/1", method="POST", body=b"x" * (c.info["max_request_body"] + 1)))
        # fetch_many turns each into one failed result and goes on
        out = list(c.fetch_many([f"http://{T1}/item/1", "ftp://nowhere/", Request("", method="GET")]))
        codes = sorted(r.code for r in out)
        assert codes == ["bad_request", "bad_request", "ok"], codes


def test_fetch_many_sync_thousands(daemon):
    urls = mixed_urls(3000)
    consumed = 0
    peak = 0
    results: List[Result] = []

    def feed() -> Iterator[str]:
        nonlocal consumed
        for u in urls:
            consumed += 1
            yield u

    t0 = time.monotonic()
    with Client(daemon.sock) as c:
        for r in c.fetch_many(feed(), window=400):
            peak = max(peak, consumed - len(results))
            results.append(r)
    codes = account(results, urls)
    print(f"# sync: {len(results)} in {time.monotonic() - t0:.1f} s, {dict(codes)}, peak outstanding {peak}")
    assert codes["ok"] >= 0.99 * len(urls), codes
    assert peak <= 400, f"the input ran {peak} ahead of the results (window 400)"
    no_violations()


def test_fetch_many_async_thousands(daemon):
    urls = mixed_urls(3000)

    async def run() -> List[Result]:
        out: List[Result] = []
        # a window over pool_capacity (1,000) earns pool_full, which is never reported (the
        # default window, three quarters of the pool, would not)
        async with AsyncClient(daemon.sock, window=2500) as c:
            assert c.info["workers"] == 2
            async for r in c.fetch_many(urls, window=2500):
                out.append(r)
                if len(out) == 1000:
                    st = await c.status()  # a call in the middle of the stream
                    assert st["status"]["tasks"]["submitted"] >= 1000
            assert c.outstanding == 0
        return out

    t0 = time.monotonic()
    results = asyncio.run(asyncio.wait_for(run(), 50))
    codes = account(results, urls)
    resubmitted = sum(1 for r in results if r.resubmits)
    print(f"# async: {len(results)} in {time.monotonic() - t0:.1f} s, {dict(codes)}, {resubmitted} resubmitted")
    assert codes["ok"] >= 0.99 * len(urls), codes
    assert resubmitted > 0, "no pool_full with 2,500 tasks outstanding: the test tested nothing"
    no_violations()


def test_cancel_sync(daemon):
    # T2 allows each proxy one request per 5 s: 300 tasks there mostly wait in the daemon
    urls = [f"http://{T2}/item/{i}" for i in range(300)]
    with Client(daemon.sock) as c:
        before = c.status()["status"]["tasks"]["cancelled"]
        ids = [c.submit(u, timeout=30) for u in urls]
        t0 = time.monotonic()
        got: List[Result] = []
        while time.monotonic() - t0 < 0.5:
            r = c.next_result(0.05)
            if r:
                got.append(r)
        for i in ids:
            c.cancel(i)
        while c.outstanding:
            r = c.next_result(10)
            assert r is not None, "a cancelled task never answered"
            got.append(r)
        assert c.next_result(0) is None
        codes = account(got, urls)
        assert codes["cancelled"] >= 150, codes
        assert set(codes) <= {"ok", "cancelled"}, codes
        assert c.status()["status"]["tasks"]["cancelled"] - before >= codes["cancelled"] - 5
        # the client works on after the cancellation
        assert c.fetch(f"http://{T1}/item/11").ok


def test_cancel_async(daemon):
    async def run() -> collections.Counter:
        async with AsyncClient(daemon.sock) as c:
            futs: List[TaskFuture] = [await c.submit(f"http://{T2}/item/{1000 + i}") for i in range(200)]
            await asyncio.sleep(0.3)
            for f in futs[:100]:
                c.cancel(f)
            for f in futs[100:150]:
                f.cancel()  # cancelling the future cancels the task in the daemon
            rest = await asyncio.wait_for(asyncio.gather(*futs[:100], *futs[150:], return_exceptions=True), 20)
            codes = collections.Counter(r.code for r in rest if isinstance(r, Result))
            assert len(rest) == 150 and sum(codes.values()) == 150, rest[:3]
            assert codes["cancelled"] >= 80, codes
            for f in futs[150:]:
                c.cancel(f)
            t0 = time.monotonic()
            while c.outstanding and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.05)
            assert c.outstanding == 0, "the daemon did not answer the cancelled futures' tasks"
            return codes

    codes = asyncio.run(run())
    print(f"# async cancel: {dict(codes)}")


def test_worker_killed_mid_batch(daemon):
    urls = [f"http://{T1 if i % 2 else T3}/item/{10000 + i}" for i in range(3000)]
    results: List[Result] = []
    victim = daemon.worker_pids()[0]
    with Client(daemon.sock, reconnect=10) as c:
        for r in c.fetch_many(urls, window=1000):
            results.append(r)
            if len(results) == 800:
                os.kill(victim, signal.SIGKILL)
    codes = account(results, urls)
    resubmitted = sum(1 for r in results if r.resubmits)
    print(f"# killed worker {victim}: {dict(codes)}, {resubmitted} resubmitted")
    assert codes["ok"] >= 0.99 * len(urls), codes
    assert resubmitted > 0, "the killed worker owed nothing: the test did not test anything"
    for _ in range(50):
        now = daemon.worker_pids()
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2 and victim not in now, f"workers {now}"
    daemon.workers = now
    no_violations()


def test_example_fetch_jsonl(daemon, tmp_path):
    import json
    import subprocess
    import sys
    src = tmp_path / "urls.txt"
    src.write_text("# a comment\n" + "\n".join(mixed_urls(200)) + f"\n\nhttp://{T1}/status/404\nftp://bad/\n")
    out = tmp_path / "out.jsonl"
    ex = os.path.join(os.path.dirname(__file__), "..", "examples", "fetch_jsonl.py")
    p = subprocess.run([sys.executable, ex, "-s", daemon.sock, str(src), str(out)], capture_output=True,
                       text=True, timeout=30)
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert p.returncode == 1, p.stderr  # the ftp:// line failed
    assert len(lines) == 202 and sorted(l["n"] for l in lines) == list(range(2, 202)) + [203, 204]
    bad = [l for l in lines if not l["ok"]]
    assert [(l["url"], l["error"]) for l in bad] == [("ftp://bad/", "bad_request")]
    assert {l["status"] for l in lines if l["ok"]} == {200, 404}
    assert "202 tasks, 201 ok, 1 failed" in p.stderr
