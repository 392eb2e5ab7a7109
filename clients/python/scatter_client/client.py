"""The blocking client: one thread, non-blocking sockets, one poll(2) loop (like ctl/client.c),
so reading and writing interleave and a large batch never deadlocks against the daemon."""
from __future__ import annotations

import itertools
import select
import socket
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import msgpack

from ._core import (LOST, PRE_HELLO_LIMIT, Core, Request, RequestLike, Result, Task, as_request, default_window,
                    hello_reply, new_unpacker, pack_call, pack_submit, recv_limit, worker_paths)
from .errors import ConnectError, Disconnected, ScatterError, WindowFull, error_from_reply
from .paths import check_server, socket_path as resolve_socket_path

_READ = 256 * 1024


def carry_over(up: msgpack.Unpacker, limit: int) -> msgpack.Unpacker:
    """A fresh unpacker with the full reply limit, holding the bytes that followed hello."""
    big = new_unpacker(limit)
    rest = up.read_bytes(limit)
    if rest:
        big.feed(rest)
    return big


def connect_unix(path: str, timeout: float) -> socket.socket:
    """A connected, identity-checked, blocking socket (the caller sets it non-blocking)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        check_server(s, path)
        return s
    except OSError as e:
        s.close()
        raise ConnectError(f"cannot connect to {path}: {e.strerror or e}", errno=e.errno) from e
    except BaseException:
        s.close()
        raise


def hello_sync(s: socket.socket, path: str, timeout: float) -> Tuple[Dict[str, Any], msgpack.Unpacker]:
    """Says hello on a fresh blocking socket; returns the reply and the unpacker holding
    whatever came after it."""
    deadline = time.monotonic() + timeout
    up = new_unpacker(PRE_HELLO_LIMIT)
    try:
        s.sendall(pack_call("hello", 1, {}))
        while True:
            for msg in up:
                info = hello_reply(msg, path)
                if info is not None:
                    return info, up
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectError(f"hello on {path}: no reply within {timeout:g} s")
            s.settimeout(left)
            data = s.recv(_READ)
            if not data:
                raise ConnectError(f"hello on {path}: connection closed")
            up.feed(data)
    except socket.timeout:
        raise ConnectError(f"hello on {path}: no reply within {timeout:g} s") from None
    except OSError as e:
        raise ConnectError(f"hello on {path}: {e.strerror or e}", errno=e.errno) from e
    except (ValueError, msgpack.UnpackException) as e:
        raise ConnectError(f"hello on {path}: malformed reply ({e})") from e


class Client:
    """A blocking scatterd client.

    ``with Client() as c: r = c.fetch(url)`` runs one request;
    ``for r in c.fetch_many(urls): ...`` runs many with a bounded window, yielding results as
    they complete. The client opens the main socket and one connection per worker socket
    (from ``hello``), resubmits tasks refused with ``pool_full`` (after 50..200 ms) and the
    tasks of a lost worker connection (the HTTP request may then run twice; its result is
    reported once). When every connection is lost for good, :class:`Disconnected` is raised.

    ``socket_path``: else ``$SCATTER_SOCKET``, else the daemon's default. ``window``: tasks
    outstanding at most through :meth:`submit` (default three quarters of ``pool_capacity``, at
    most 4096).
    ``connect_timeout``: seconds per connect and hello. ``reconnect``: seconds a lost socket
    is retried. ``single_connection``: use only the main socket. Not thread-safe.
    """

    def __init__(self, socket_path: Optional[str] = None, *, window: Optional[int] = None,
                 connect_timeout: float = 5.0, reconnect: float = 5.0, single_connection: bool = False) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        self.connect_timeout = connect_timeout
        self._ready: Dict[Any, Deque[Result]] = {}
        self._call_replies: Dict[int, Any] = {}
        self._owners = itertools.count(1)
        self._live: Dict[Any, int] = {}  # tasks in the engine, per owner (None: submit())
        main = connect_unix(self.socket_path, connect_timeout)
        try:
            self.info, up = hello_sync(main, self.socket_path, connect_timeout)
        except BaseException:
            main.close()
            raise
        main.setblocking(False)
        self._core = Core(recv_limit=recv_limit(self.info), reconnect=reconnect, deliver=self._deliver,
                          close=lambda h: h.close(), call_done=self._call_replies.__setitem__)
        self._core.add_conn(self.socket_path, False)
        self._core.conn_opened(0, main, self._reunpacker(up), self.info.get("worker", 0))
        missing = False
        for p in ([] if single_connection else worker_paths(self.socket_path, self.info)):
            k = self._core.add_conn(p, True)
            if not self._open(k):
                self._core.conns[k].task_conn = False
                self._core.conns[k].gone = True
                missing = True
        if missing or not self._core.any_task_conn_alive():
            self._core.conns[0].task_conn = True
        self.window = min(window, 1 << 20) if window else default_window(self.info)

    # ---- plumbing ----

    def _reunpacker(self, up: msgpack.Unpacker) -> msgpack.Unpacker:
        """The hello unpacker's leftover bytes moved to one with the full reply limit."""
        return carry_over(up, recv_limit(self.info))

    def _open(self, k: int) -> bool:
        c = self._core.conns[k]
        try:
            s = connect_unix(c.path, self.connect_timeout)
        except ScatterError:
            return False
        try:
            info, up = hello_sync(s, c.path, self.connect_timeout)
        except ScatterError:
            s.close()
            return False
        s.setblocking(False)
        self._core.conn_opened(k, s, self._reunpacker(up), info.get("worker", 0))
        return True

    def _deliver(self, t: Task, r: Result) -> None:
        n = self._live.get(t.owner, 0) - 1
        if n > 0:
            self._live[t.owner] = n
        else:
            self._live.pop(t.owner, None)
        q = self._ready.get(t.owner)
        if q is not None:
            q.append(r)

    def _pump(self, deadline: Optional[float]) -> None:
        """One round: reconnects and backoffs that are due, queued tasks written, then a wait
        until input, the deadline or the next timer (at most 1 s), and the input read."""
        core = self._core
        now = time.monotonic()
        for k in core.due_reconnects(now):
            if not self._open(k):
                core.reconnect_failed(k)
        core.step(time.monotonic())
        p = select.poll()
        fds: Dict[int, int] = {}
        for k, c in enumerate(core.conns):
            if c.handle is not None:
                fd = c.handle.fileno()
                fds[fd] = k
                p.register(fd, select.POLLIN | (select.POLLOUT if c.out else 0))
        wake = now + 1.0
        for w in (deadline, core.next_wake()):
            if w is not None and w < wake:
                wake = w
        if any(self._ready.values()) or core.dead:
            wake = now
        for fd, ev in p.poll(max(0, int((wake - time.monotonic()) * 1000))):
            k = fds[fd]
            c = core.conns[k]
            if c.handle is None or c.handle.fileno() != fd:
                continue
            if ev & select.POLLOUT and c.out:
                try:
                    n = c.handle.send(c.out)
                    del c.out[:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    core.conn_lost(k)
                    continue
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read(k)

    def _read(self, k: int) -> None:
        core = self._core
        c = core.conns[k]
        s = c.handle
        while c.handle is s:
            try:
                data = s.recv(_READ)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                core.conn_lost(k)
                return
            if not data:
                core.conn_lost(k)
                return
            core.feed(k, data)

    def _ensure_control(self) -> None:
        c = self._core.conns[0]
        if c.handle is None and not self._open(0):
            raise ConnectError(f"cannot reconnect to {self.socket_path}")

    # ---- tasks ----

    def _submit(self, req: Request, owner: Any) -> int:
        core = self._core
        if core.dead:
            raise Disconnected(core.dead_reason, request=req)
        tid = core.new_task_id()
        core.add(Task(id=tid, frame=pack_submit(tid, req, self.info), request=req, owner=owner))
        self._live[owner] = self._live.get(owner, 0) + 1
        return tid

    def submit(self, request: RequestLike, **opts: Any) -> int:
        """Queues one task (a URL or a :class:`Request`; keyword arguments fill the Request's
        unset fields) and returns its id; its result comes from :meth:`next_result`.
        Raises :class:`WindowFull` with ``window`` tasks outstanding, :class:`BadRequest` or
        :class:`TooLarge` for a request the daemon would refuse, :class:`Disconnected`."""
        if self.outstanding >= self.window:
            raise WindowFull(f"window of {self.window} tasks is full: take results first")
        self._ready.setdefault(None, deque())
        return self._submit(as_request(request, opts), None)

    @property
    def outstanding(self) -> int:
        """Tasks submitted with :meth:`submit` and not yet returned by :meth:`next_result`."""
        return self._live.get(None, 0) + len(self._ready.get(None, ()))

    def next_result(self, timeout: Optional[float] = None) -> Optional[Result]:
        """The next finished task of :meth:`submit`; None after ``timeout`` seconds (None:
        wait as long as it takes) or when nothing is outstanding."""
        return self._next(None, timeout)

    def _next(self, owner: Any, timeout: Optional[float]) -> Optional[Result]:
        deadline = None if timeout is None else time.monotonic() + timeout
        q = self._ready.setdefault(owner, deque())
        while True:
            if q:
                return q.popleft()
            if not self._live.get(owner):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self._pump(deadline)

    def cancel(self, task_id: int) -> bool:
        """Asks for a task's end; it still yields exactly one result, normally ``cancelled``.
        False if the id is not outstanding."""
        return self._core.cancel(task_id)

    def fetch(self, request: RequestLike, **opts: Any) -> Result:
        """Runs one request and returns its successful :class:`Result`; raises the error's
        exception (:class:`MaxAttempts`, :class:`Timeout`, :class:`CircuitOpen`...) otherwise."""
        owner = ("fetch", next(self._owners))
        self._ready[owner] = deque()
        try:
            self._submit(as_request(request, opts), owner)
            r = self._next(owner, None)
        finally:
            self._ready.pop(owner, None)
        assert r is not None
        return r.raise_for_error()

    def fetch_many(self, requests: Iterable[RequestLike], window: Optional[int] = None,
                   **opts: Any) -> Iterator[Result]:
        """Runs every request (URLs or :class:`Request`; keyword arguments fill unset fields)
        and yields one :class:`Result` per request, in completion order. At most ``window``
        tasks are outstanding (default: the client's window), and the input is read only as
        slots free up, so memory stays bounded however long it is. A request refused before
        it was sent (bad URL, body too large) yields a failed result too. If every connection
        is lost for good, raises :class:`Disconnected` listing the requests left unanswered;
        the input after them was not read. Leaving the loop early cancels what is left."""
        win = max(1, window or self.window)
        owner = ("batch", next(self._owners))
        q: Deque[Result] = deque()
        self._ready[owner] = q
        it = iter(requests)
        pending = 0
        more = True
        lost: List[Any] = []
        try:
            while True:
                while more and pending < win and not self._core.dead:
                    item = next(it, _END)
                    if item is _END:
                        more = False
                        break
                    req = as_request(item, opts)
                    try:
                        self._submit(req, owner)
                        pending += 1
                    except Disconnected:
                        lost.append(req)
                    except ScatterError as e:  # refused before it left: still one result
                        yield Result(request=req, id=0, ok=False, code=e.code, message=e.message)
                if pending == 0:
                    if lost:
                        raise Disconnected(self._core.dead_reason, unanswered=lost)
                    if not more:
                        return
                    continue
                r = self._next(owner, None)
                if r is None:  # defensive: nothing of ours left in the engine
                    pending = 0
                    continue
                pending -= 1
                if r.code == "disconnected":
                    lost.append(r.request)
                    continue
                yield r
        finally:
            for t in [t for t in self._core.tasks.values() if t.owner == owner]:
                self._core.cancel(t.id)
            self._ready.pop(owner, None)

    # ---- calls ----

    def call(self, op: str, timeout: float = 30.0, **fields: Any) -> Dict[str, Any]:
        """Sends ``{"op": op, "id": <fresh>, **fields}`` on the main connection and returns the
        reply; raises the reply's error as an exception. Task results arriving meanwhile are
        kept."""
        self._ensure_control()
        cid = self._core.new_call_id()
        self._core.calls[cid] = None
        self._core.conns[0].out += pack_call(op, cid, fields)
        deadline = time.monotonic() + timeout
        try:
            while cid not in self._call_replies:
                if time.monotonic() >= deadline:
                    raise ScatterError(f"no reply to {op} within {timeout:g} s", code="timeout")
                self._pump(deadline)
            reply = self._call_replies.pop(cid)
        finally:
            self._core.calls.pop(cid, None)
            self._call_replies.pop(cid, None)
        if reply is LOST:
            raise Disconnected(f"connection to {self.socket_path} lost before the {op} reply")
        if reply.get("ok") is not True:
            raise error_from_reply(reply)
        return reply

    def status(self) -> Dict[str, Any]:
        """The ``status`` reply: ``status`` (daemon-wide metrics) and ``worker_memory``."""
        return self.call("status")

    def hosts(self) -> List[Dict[str, Any]]:
        """The host objects (name, circuit, healthy, cooling, dead, success, fail...)."""
        return self.call("hosts").get("hosts", [])

    def proxies(self, limit: Optional[int] = None, offset: Optional[int] = None,
                host: Optional[str] = None) -> Dict[str, Any]:
        """One page of the ``proxies`` reply: ``total``, ``next_offset``, ``proxies``."""
        return self.call("proxies", limit=limit, offset=offset, host=host)

    def config(self) -> Dict[str, Any]:
        """The ``config`` reply: ``worker`` and ``master`` scatter.ini texts and publications."""
        return self.call("config")

    # ---- lifetime ----

    @property
    def connections(self) -> int:
        """Connections that carry tasks (after fallbacks)."""
        return sum(1 for c in self._core.conns if c.task_conn and not c.gone)

    def close(self) -> None:
        """Closes every connection; the daemon cancels the tasks still running."""
        for c in self._core.conns:
            if c.handle is not None:
                c.handle.close()
                c.handle = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_END = object()
