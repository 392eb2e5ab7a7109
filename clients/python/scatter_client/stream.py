"""The Redis stream mode (docs/PROTOCOL.md §8, docs/SCALING.md): tasks go to a stream that
every worker of several scatterd instances consumes, results come back on a stream of this
client's own. The same calls as :class:`Client` for running tasks (``submit``,
``next_result``, ``fetch``, ``fetch_many``) and the same :class:`Result` objects.

    from scatter_client import StreamClient
    with StreamClient("redis://10.0.0.5:6379") as c:
        for r in c.fetch_many(urls):
            ...

Needs the ``redis`` package (Debian: python3-redis). Delivery is at least once: a task taken
over after an instance died may be answered twice; the first result per task is kept and the
others are counted in :attr:`StreamClient.duplicates`. ``pool_full`` answers are resubmitted
after a growing, jittered pause, like the socket client. There is no ``cancel`` on a stream.
"""
from __future__ import annotations

import os
import random
import socket
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional

import msgpack

from ._core import (TASK_ID_BASE, Request, RequestLike, Result, Task, as_request, new_unpacker, pack_submit,
                    result_from_reply)
from .errors import ConnectError, ScatterError, WindowFull

DEFAULT_STREAM = "scatter:tasks"
DEFAULT_WINDOW = 1000
_READ_COUNT = 1000


class StreamClient:
    """A client of the Redis task stream. ``url``: ``redis://[:password@]host[:port][/db]``;
    ``stream``: the daemons' ``redis_stream``; ``window``: tasks outstanding at most."""

    def __init__(self, url: str, stream: str = DEFAULT_STREAM, *, window: int = DEFAULT_WINDOW,
                 block: float = 1.0) -> None:
        try:
            import redis  # noqa: WPS433 (optional dependency, needed only in this mode)
        except ImportError as e:
            raise ConnectError("the Redis stream mode needs the redis package (python3-redis)") from e
        self._redis_mod = redis
        self.stream = stream
        self.window = max(1, int(window))
        self.duplicates = 0
        self._block_ms = max(1, int(block * 1000))
        self._r = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            self._r.ping()
        except redis.RedisError as e:
            raise ConnectError(f"cannot connect to redis at {url}: {e}") from e
        self.reply_to = f"scatter:reply:{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._last = "0-0"
        self._next_id = TASK_ID_BASE
        self._tasks: Dict[int, Task] = {}
        self._backoff: Dict[int, int] = {}
        self._ready: Deque[Result] = deque()
        self._info = {"max_request_body": 0, "max_frame": 0}  # the daemons' own checks answer

    # ---- tasks ----

    def _add(self, frame: bytes) -> None:
        self._r.xadd(self.stream, {"task": frame, "reply_to": self.reply_to})

    def submit(self, request: RequestLike, **opts: Any) -> int:
        """Adds one task to the stream and returns its id; its result comes from
        :meth:`next_result`. Raises :class:`WindowFull` with ``window`` tasks outstanding."""
        if self.outstanding >= self.window:
            raise WindowFull(f"window of {self.window} tasks is full: take results first")
        req = as_request(request, opts)
        tid = self._next_id
        self._next_id += 1
        t = Task(id=tid, frame=pack_submit(tid, req, self._info), request=req)
        self._tasks[tid] = t
        self._add(t.frame)
        return tid

    @property
    def outstanding(self) -> int:
        """Tasks submitted and not yet returned by :meth:`next_result`."""
        return len(self._tasks) + len(self._ready)

    def _resend_due(self, now: float) -> Optional[float]:
        """Resubmits pool_full tasks whose pause ended; returns the next pause's end."""
        nxt = None
        for t in self._tasks.values():
            if t.not_before:
                if t.not_before <= now:
                    t.not_before = 0.0
                    t.resubmits += 1
                    self._add(t.frame)
                elif nxt is None or t.not_before < nxt:
                    nxt = t.not_before
        return nxt

    def _take(self, fields: Dict[bytes, bytes]) -> None:
        raw = fields.get(b"result")
        if raw is None:
            return
        up = new_unpacker(len(raw) + 1)
        up.feed(raw)
        try:
            o = next(up)
        except (StopIteration, ValueError, msgpack.UnpackException):
            return
        tid = o.get("id") if isinstance(o, dict) else None
        t = self._tasks.get(tid) if isinstance(tid, int) else None
        if t is None:
            self.duplicates += 1  # answered already: a takeover ran it twice
            return
        if o.get("ok") is not True and o.get("error") == "pool_full":
            n = self._backoff.get(tid, 0)
            pause = 0.05 * (2 ** min(n, 6))
            t.not_before = time.monotonic() + pause + random.uniform(0, pause / 2)
            self._backoff[tid] = n + 1
            return
        del self._tasks[tid]
        self._backoff.pop(tid, None)
        self._ready.append(result_from_reply(t, o))

    def _pump(self, deadline: Optional[float]) -> None:
        now = time.monotonic()
        nxt = self._resend_due(now)
        wait = 1.0 if deadline is None else max(0.0, deadline - now)
        if nxt is not None:
            wait = min(wait, max(0.001, nxt - now))
        got = self._r.xread({self.reply_to: self._last}, count=_READ_COUNT, block=max(1, int(wait * 1000)))
        ids: List[bytes] = []
        for _stream, entries in got or []:
            for eid, fields in entries:
                self._last = eid.decode() if isinstance(eid, bytes) else eid
                ids.append(eid)
                self._take(fields)
        if ids:
            self._r.xdel(self.reply_to, *ids)  # read results go: the stream holds only unread ones

    def next_result(self, timeout: Optional[float] = None) -> Optional[Result]:
        """The next finished task; None after ``timeout`` seconds (None: as long as it takes)
        or when nothing is outstanding."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._ready:
                return self._ready.popleft()
            if not self._tasks:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self._pump(deadline)

    def fetch(self, request: RequestLike, **opts: Any) -> Result:
        """Runs one request alone and returns its successful :class:`Result`; raises the
        error's exception otherwise. (Use one client per thread; results of other tasks
        submitted on this client meanwhile stay queued for :meth:`next_result`.)"""
        tid = self.submit(request, **opts)
        held: List[Result] = []
        try:
            while True:
                r = self.next_result()
                if r is None:
                    raise ScatterError("no result", code="internal")
                if r.id == tid:
                    return r.raise_for_error()
                held.append(r)
        finally:
            self._ready.extendleft(reversed(held))

    def fetch_many(self, requests: Iterable[RequestLike], window: Optional[int] = None,
                   **opts: Any) -> Iterator[Result]:
        """Runs every request and yields one :class:`Result` per request, in completion
        order, with at most ``window`` outstanding (default: the client's). A request refused
        before it was sent yields a failed result too."""
        win = max(1, min(window or self.window, self.window))
        it = iter(requests)
        more = True
        while True:
            while more and self.outstanding < win:
                item = next(it, None)
                if item is None:
                    more = False
                    break
                req = as_request(item, opts)
                try:
                    self.submit(req)
                except ScatterError as e:
                    yield Result(request=req, id=0, ok=False, code=e.code, message=e.message)
            r = self.next_result()
            if r is None:
                if not more:
                    return
                continue
            yield r

    # ---- lifetime ----

    def close(self) -> None:
        """Deletes the reply stream and closes the connection. Tasks still outstanding run
        on; their results are not read."""
        try:
            self._r.delete(self.reply_to)
        except self._redis_mod.RedisError:
            pass
        self._r.close()

    def __enter__(self) -> "StreamClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
