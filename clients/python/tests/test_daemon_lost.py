"""The daemon going away in the middle of a batch: a clear exception, no hang, and every
request accounted for (answered, or listed as unanswered)."""
from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from typing import Iterator, List

import pytest

from conftest import T1, T2
from scatter_client import AsyncClient, Client, ConnectError, Disconnected, Result


def urls(n: int) -> List[str]:
    # mostly the slow host, so a good part of the batch is still running when the daemon goes
    return [f"http://{T2 if i % 4 else T1}/item/{20000 + i}" for i in range(n)]


def test_sigterm_mid_batch_sync(fresh_daemon):
    batch = urls(3000)
    consumed = 0

    def feed() -> Iterator[str]:
        nonlocal consumed
        for u in batch:
            consumed += 1
            yield u

    results: List[Result] = []
    unanswered: List[object] = []
    t0 = time.monotonic()
    with Client(fresh_daemon.sock, reconnect=2) as c:
        try:
            for r in c.fetch_many(feed(), window=1000):
                results.append(r)
                if len(results) == 100:
                    fresh_daemon.proc.send_signal(signal.SIGTERM)
        except Disconnected as e:
            unanswered = e.unanswered
            assert "lost every connection" in str(e)
        took = time.monotonic() - t0
        with pytest.raises(Disconnected):
            c.fetch(f"http://{T1}/item/1")
    codes = collections.Counter(r.code for r in results)
    print(f"# SIGTERM: {dict(codes)}, {len(unanswered)} unanswered, {consumed} of {len(batch)} read, {took:.1f} s")
    assert len(results) + len(unanswered) == consumed, "a request neither answered nor listed as unanswered"
    assert len({r.url for r in results} | {u.url for u in unanswered}) == consumed
    assert set(codes) <= {"ok", "shutting_down", "cancelled"}, codes
    assert codes["shutting_down"] + codes["cancelled"] + len(unanswered) > 0
    assert took < 25, f"took {took:.1f} s"
    assert fresh_daemon.proc.wait(10) == 0


def test_sigkill_mid_batch_async(fresh_daemon):
    batch = urls(2000)

    async def run():
        out: List[Result] = []
        async with AsyncClient(fresh_daemon.sock, reconnect=2) as c:
            with pytest.raises(Disconnected) as ei:
                async for r in c.fetch_many(batch, window=1000):
                    out.append(r)
                    if len(out) == 50:
                        for p in [fresh_daemon.proc.pid] + fresh_daemon.worker_pids():
                            os.kill(p, signal.SIGKILL)
            with pytest.raises(Disconnected):
                await c.submit(f"http://{T1}/item/1")
        return out, ei.value

    t0 = time.monotonic()
    out, e = asyncio.run(asyncio.wait_for(run(), 30))
    took = time.monotonic() - t0
    print(f"# SIGKILL: {len(out)} answered, {len(e.unanswered)} unanswered, {took:.1f} s: {e}")
    assert len(e.unanswered) > 0
    answered = {r.url for r in out}
    assert not answered & {u.url for u in e.unanswered}
    assert len(out) + len(e.unanswered) <= len(batch)
    assert took < 20, f"took {took:.1f} s"
    with pytest.raises(ConnectError):
        Client(fresh_daemon.sock, connect_timeout=1)
