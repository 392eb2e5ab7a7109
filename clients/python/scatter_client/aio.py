"""The asyncio client: the same engine as :class:`scatter_client.Client`, driven by one reader
task per connection and a timer task for backoffs and reconnects."""
from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Set, Tuple, Union

import msgpack

from ._core import (LOST, PRE_HELLO_LIMIT, Core, RequestLike, Result, Task, as_request, default_window,
                    hello_reply, new_unpacker, pack_call, pack_submit, recv_limit, result_local, worker_paths)
from .client import carry_over
from .errors import ConnectError, Disconnected, ScatterError, error_from_reply
from .paths import check_server, socket_path as resolve_socket_path

_READ = 256 * 1024


class TaskFuture(asyncio.Future):  # type: ignore[type-arg]
    """The future of one submitted task; resolves to its :class:`Result` (failures included:
    ``(await fut).raise_for_error()`` turns one into its exception). ``task_id`` is the wire
    id. Cancelling the future cancels the task in the daemon."""

    task_id: int = 0


class _Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.task: Optional[asyncio.Task] = None  # type: ignore[type-arg]

    def close(self) -> None:
        self.writer.close()


async def _connect(path: str, timeout: float) -> Tuple[_Stream, Dict[str, Any], msgpack.Unpacker]:
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(s, path), timeout)
        check_server(s, path)
        reader, writer = await asyncio.open_unix_connection(sock=s)
    except asyncio.TimeoutError:
        s.close()
        raise ConnectError(f"cannot connect to {path}: no answer within {timeout:g} s") from None
    except OSError as e:
        s.close()
        raise ConnectError(f"cannot connect to {path}: {e.strerror or e}", errno=e.errno) from e
    except BaseException:
        s.close()
        raise
    st = _Stream(reader, writer)
    try:
        info, up = await asyncio.wait_for(_hello(st, path), timeout)
    except asyncio.TimeoutError:
        st.close()
        raise ConnectError(f"hello on {path}: no reply within {timeout:g} s") from None
    except BaseException:
        st.close()
        raise
    return st, info, up


async def _hello(st: _Stream, path: str) -> Tuple[Dict[str, Any], msgpack.Unpacker]:
    up = new_unpacker(PRE_HELLO_LIMIT)
    st.writer.write(pack_call("hello", 1, {}))
    try:
        while True:
            for msg in up:
                info = hello_reply(msg, path)
                if info is not None:
                    return info, up
            data = await st.reader.read(_READ)
            if not data:
                raise ConnectError(f"hello on {path}: connection closed")
            up.feed(data)
    except OSError as e:
        raise ConnectError(f"hello on {path}: {e.strerror or e}", errno=e.errno) from e
    except (ValueError, msgpack.UnpackException) as e:
        raise ConnectError(f"hello on {path}: malformed reply ({e})") from e


class AsyncClient:
    """An asyncio scatterd client with the promises of :class:`scatter_client.Client`.

    ``async with AsyncClient() as c: async for r in c.fetch_many(urls): ...``;
    ``fut = await c.submit(url)`` (waits for a window slot) then ``r = await fut``;
    ``c.cancel(fut)``; ``await c.status()``. Options as for :class:`Client`.
    """

    def __init__(self, socket_path: Optional[str] = None, *, window: Optional[int] = None,
                 connect_timeout: float = 5.0, reconnect: float = 5.0, single_connection: bool = False) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        self.connect_timeout = connect_timeout
        self._reconnect = reconnect
        self._single = single_connection
        self._want_window = window
        self.window = 0
        self.info: Dict[str, Any] = {}
        self._core: Optional[Core] = None
        self._futs: Dict[int, TaskFuture] = {}
        self._calls: Dict[int, "asyncio.Future[Any]"] = {}
        self._sem: Optional[asyncio.Semaphore] = None
        self._wake: Optional[asyncio.Event] = None
        self._ticker: Optional[asyncio.Task] = None  # type: ignore[type-arg]
        self._closed = False

    # ---- lifetime ----

    async def open(self) -> "AsyncClient":
        """Connects to the main socket, says hello and opens the worker connections."""
        st, self.info, up = await _connect(self.socket_path, self.connect_timeout)
        core = Core(recv_limit=recv_limit(self.info), reconnect=self._reconnect, deliver=self._deliver,
                    close=lambda h: h.close(), call_done=self._call_done)
        self._core = core
        self._wake = asyncio.Event()
        core.add_conn(self.socket_path, False)
        self._opened(0, st, up, self.info)
        missing = False
        for p in ([] if self._single else worker_paths(self.socket_path, self.info)):
            k = core.add_conn(p, True)
            if not await self._open(k):
                core.conns[k].task_conn = False
                core.conns[k].gone = True
                missing = True
        if missing or not core.any_task_conn_alive():
            core.conns[0].task_conn = True
        self.window = min(self._want_window, 1 << 20) if self._want_window else default_window(self.info)
        self._sem = asyncio.Semaphore(self.window)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def close(self) -> None:
        """Closes every connection (the daemon cancels the tasks still running); futures
        still pending resolve as ``disconnected``."""
        if self._closed or self._core is None:
            return
        self._closed = True
        if self._ticker:
            self._ticker.cancel()
        core = self._core
        for c in core.conns:
            h = c.handle
            c.handle = None
            if h is not None:
                h.close()
                if h.task:
                    h.task.cancel()
        for t in list(core.tasks.values()):
            core.finish(t, result_local(t, "disconnected", "the client was closed"))
        for f in self._calls.values():
            if not f.done():
                f.set_result(LOST)

    async def __aenter__(self) -> "AsyncClient":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- plumbing ----

    def _c(self) -> Core:
        if self._core is None or self._closed:
            raise ScatterError("the client is not open", code="closed")
        return self._core

    def _opened(self, k: int, st: _Stream, up: msgpack.Unpacker, info: Dict[str, Any]) -> None:
        core = self._c()
        core.conn_opened(k, st, carry_over(up, core.recv_limit), info.get("worker", 0))
        st.task = asyncio.get_running_loop().create_task(self._read(k, st))

    async def _open(self, k: int) -> bool:
        core = self._c()
        try:
            st, info, up = await _connect(core.conns[k].path, self.connect_timeout)
        except ScatterError:
            return False
        if self._closed:
            st.close()
            return False
        self._opened(k, st, up, info)
        return True

    async def _read(self, k: int, st: _Stream) -> None:
        core = self._c()
        try:
            while True:
                data = await st.reader.read(_READ)
                if core.conns[k].handle is not st:
                    return
                if not data:
                    core.conn_lost(k)
                    return
                core.feed(k, data)
                self._flush()
        except (OSError, ConnectionError):
            if core.conns[k].handle is st:
                core.conn_lost(k)
        finally:
            if not self._closed:
                self._flush()
                assert self._wake is not None
                self._wake.set()

    def _flush(self) -> None:
        core = self._core
        if core is None or self._closed:
            return
        core.step(time.monotonic())
        for c in core.conns:
            if c.out and c.handle is not None:
                c.handle.writer.write(bytes(c.out))
                c.out.clear()
        if core.backoff or any(c.retrying for c in core.conns):
            assert self._wake is not None
            self._wake.set()

    async def _tick(self) -> None:
        """Runs the timers: resubmissions after pool_full and reconnects of lost sockets."""
        core = self._c()
        assert self._wake is not None
        while not self._closed:
            w = core.next_wake()
            left = 1.0 if w is None else min(1.0, max(0.0, w - time.monotonic()))
            if left > 0:
                # _flush sets the event when a timer may have moved earlier: wait again with it
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)
            for k in core.due_reconnects(time.monotonic()):
                if not await self._open(k):
                    core.reconnect_failed(k)
            self._flush()

    def _deliver(self, t: Task, r: Result) -> None:
        assert self._sem is not None
        self._sem.release()
        f = self._futs.pop(t.id, None)
        if f is not None and not f.done():
            f.set_result(r)

    def _call_done(self, cid: int, reply: Any) -> None:
        f = self._calls.get(cid)
        if f is not None and not f.done():
            f.set_result(reply)

    # ---- tasks ----

    async def submit(self, request: RequestLike, **opts: Any) -> TaskFuture:
        """Queues one task (a URL or a :class:`Request`; keyword arguments fill its unset
        fields), waiting while ``window`` tasks are outstanding, and returns its future.
        Raises :class:`BadRequest` / :class:`TooLarge` for a request the daemon would refuse,
        :class:`Disconnected` once every connection is lost."""
        core = self._c()
        req = as_request(request, opts)
        tid = core.new_task_id()
        frame = pack_submit(tid, req, self.info)
        assert self._sem is not None
        await self._sem.acquire()
        if core.dead or self._closed:
            self._sem.release()
            raise Disconnected(core.dead_reason or "the client was closed", request=req)
        fut = TaskFuture()
        fut.task_id = tid
        self._futs[tid] = fut
        core.add(Task(id=tid, frame=frame, request=req))
        fut.add_done_callback(self._on_future_done)
        self._flush()
        return fut

    def _on_future_done(self, fut: "asyncio.Future[Any]") -> None:
        if fut.cancelled() and self._core is not None and not self._closed:
            self._core.cancel(getattr(fut, "task_id", 0))
            self._flush()

    def cancel(self, task: Union[TaskFuture, int]) -> bool:
        """Asks for a task's end (by future or id); its future still resolves once, normally
        to a ``cancelled`` result. False if it is not outstanding."""
        tid = task.task_id if isinstance(task, TaskFuture) else task
        ok = self._c().cancel(tid)
        self._flush()
        return ok

    @property
    def outstanding(self) -> int:
        """Tasks whose result has not arrived yet."""
        return len(self._core.tasks) if self._core else 0

    async def fetch(self, request: RequestLike, **opts: Any) -> Result:
        """Runs one request; returns its successful :class:`Result` or raises its error."""
        r = await (await self.submit(request, **opts))
        return r.raise_for_error()

    async def fetch_many(self, requests: Iterable[RequestLike], window: Optional[int] = None,
                         **opts: Any) -> AsyncIterator[Result]:
        """As :meth:`Client.fetch_many`: one result per request, in completion order, at most
        ``window`` outstanding, :class:`Disconnected` (with ``unanswered``) if every connection
        is lost for good; leaving the loop early cancels what is left."""
        core = self._c()
        win = max(1, window or self.window)
        done: "asyncio.Queue[TaskFuture]" = asyncio.Queue()
        futs: Set[TaskFuture] = set()
        lost: List[Any] = []
        it = iter(requests)
        more = True
        try:
            while True:
                while more and len(futs) < win and not core.dead:
                    item = next(it, _END)
                    if item is _END:
                        more = False
                        break
                    req = as_request(item, opts)
                    try:
                        fut = await self.submit(req)
                    except Disconnected:
                        lost.append(req)
                        continue
                    except ScatterError as e:  # refused before it left: still one result
                        yield Result(request=req, id=0, ok=False, code=e.code, message=e.message)
                        continue
                    futs.add(fut)
                    fut.add_done_callback(done.put_nowait)
                if not futs:
                    if lost:
                        raise Disconnected(core.dead_reason, unanswered=lost)
                    if not more:
                        return
                    continue
                fut = await done.get()
                futs.discard(fut)
                if fut.cancelled():
                    continue
                r = fut.result()
                if r.code == "disconnected":
                    lost.append(r.request)
                    continue
                yield r
        finally:
            for f in futs:
                if not f.done():
                    self.cancel(f)

    # ---- calls ----

    async def call(self, op: str, timeout: float = 30.0, **fields: Any) -> Dict[str, Any]:
        """Sends ``{"op": op, "id": <fresh>, **fields}`` on the main connection and returns the
        reply; raises the reply's error as an exception."""
        core = self._c()
        if core.conns[0].handle is None and not await self._open(0):
            raise ConnectError(f"cannot reconnect to {self.socket_path}")
        cid = core.new_call_id()
        fut: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._calls[cid] = fut
        core.calls[cid] = None
        core.conns[0].out += pack_call(op, cid, fields)
        self._flush()
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ScatterError(f"no reply to {op} within {timeout:g} s", code="timeout") from None
        finally:
            self._calls.pop(cid, None)
            core.calls.pop(cid, None)
        if reply is LOST:
            raise Disconnected(f"connection to {self.socket_path} lost before the {op} reply")
        if reply.get("ok") is not True:
            raise error_from_reply(reply)
        return reply

    async def status(self) -> Dict[str, Any]:
        """The ``status`` reply: ``status`` (daemon-wide metrics) and ``worker_memory``."""
        return await self.call("status")

    async def hosts(self) -> List[Dict[str, Any]]:
        """The host objects."""
        return (await self.call("hosts")).get("hosts", [])

    async def proxies(self, limit: Optional[int] = None, offset: Optional[int] = None,
                      host: Optional[str] = None) -> Dict[str, Any]:
        """One page of the ``proxies`` reply: ``total``, ``next_offset``, ``proxies``."""
        return await self.call("proxies", limit=limit, offset=offset, host=host)

    async def config(self) -> Dict[str, Any]:
        """The ``config`` reply."""
        return await self.call("config")


_END = object()
