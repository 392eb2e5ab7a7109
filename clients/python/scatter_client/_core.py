"""What the sync and asyncio clients share and that does no I/O: requests packed to the wire,
results, and the engine that keeps the one-result-per-task promise (ctl/client.c):

- every task is in exactly one state: QUEUED (to be written on the least loaded task
  connection), BACKOFF (refused with pool_full, waiting 50..200 ms), SENT (on one connection),
  or gone from ``tasks`` once its result was handed to ``deliver``;
- a task's wire id is at least 2**32 and never reused by a client; calls (status...) use ids
  below 2**32, so replies route without a table;
- a request is packed once; a resubmission writes the same bytes (same id: its previous owner
  has answered or is gone, so the id is unique among the new connection's live tasks);
- conns[0] is the main socket; it carries tasks only when no worker socket can.

The drivers do the I/O: they connect and say hello, write ``Conn.out``, feed read bytes to
:meth:`Core.feed`, report EOF with :meth:`Core.conn_lost`, and call :meth:`Core.step`.
"""
from __future__ import annotations

import heapq
import random
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import msgpack

from .errors import BadRequest, ConnectError, Disconnected, ScatterError, TooLarge, error_from_reply

TASK_ID_BASE = 1 << 32
MAX_RACE = 64
MAX_HEADERS = 128
PRE_HELLO_LIMIT = 16 << 20
RETRY_EVERY = 0.2
DEFAULT_MAX_FRAME = 4 << 20

QUEUED, BACKOFF, SENT = range(3)

HeadersArg = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]


@dataclass
class Request:
    """One HTTP request to run. ``timeout`` is in seconds (``0``: no deadline; ``None``: the
    host's task timeout); ``race`` is the number of proxies raced per round (1..64, ``None``:
    the daemon's adaptive choice); ``max_attempts`` the failed rounds allowed (``0``: unlimited,
    ``None``: the host's setting). ``tag`` is yours: it comes back in the result."""

    url: str
    method: Optional[str] = None
    headers: HeadersArg = None
    body: Union[bytes, str, None] = None
    timeout: Optional[float] = None
    race: Optional[int] = None
    max_attempts: Optional[int] = None
    tag: Any = None


RequestLike = Union[str, Request]


@dataclass
class Result:
    """One task's outcome. ``ok`` is the daemon's classification; on failure ``code`` is the
    wire error code (``"disconnected"`` when the client lost every connection) and
    :attr:`error` the matching exception."""

    request: Any
    id: int
    ok: bool
    code: str
    status: Optional[int] = None
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    proxy: str = ""
    attempts: int = 0
    race: int = 0
    latency_ms: int = 0
    elapsed_ms: int = 0
    message: str = ""
    host: str = ""
    last_error: str = ""
    resubmits: int = 0

    @property
    def url(self) -> str:
        """The URL of the request."""
        return self.request.url if isinstance(self.request, Request) else str(self.request)

    @property
    def error(self) -> Optional[ScatterError]:
        """The exception describing the failure, or None on success."""
        if self.ok:
            return None
        return error_from_reply({"error": self.code, "message": self.message, "host": self.host,
                                 "attempts": self.attempts, "last_error": self.last_error,
                                 "elapsed_ms": self.elapsed_ms}, self.request)

    def raise_for_error(self) -> "Result":
        """Raises :attr:`error` on failure; returns self on success."""
        e = self.error
        if e is not None:
            raise e
        return self

    def header(self, name: str) -> Optional[str]:
        """The first response header of that name (case-insensitive), or None."""
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def text(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """The body decoded."""
        return self.body.decode(encoding, errors)


def as_request(item: RequestLike, defaults: Mapping[str, Any]) -> Request:
    """A Request from a URL string or a Request, fields left None taking ``defaults``."""
    if isinstance(item, Request):
        if not defaults:
            return item
        r = Request(**item.__dict__)
        for k, v in defaults.items():
            if getattr(r, k) is None:
                setattr(r, k, v)
        return r
    if isinstance(item, str):
        return Request(url=item, **defaults)
    raise TypeError(f"a request is a URL string or a Request, not {type(item).__name__}")


def _uint32(name: str, v: Any, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v < (1 << 32):
        raise BadRequest(f"{name} must be an integer in {lo}..{(1 << 32) - 1}, not {v!r}")
    return v


def pack_submit(tid: int, req: Request, info: Mapping[str, Any]) -> bytes:
    """The submit frame of task ``tid``. Raises :class:`BadRequest` for what the daemon would
    refuse anyway (checked here so no round trip is spent) and :class:`TooLarge` for a body
    over ``max_request_body`` or a frame over ``max_frame``."""
    if not isinstance(req.url, str) or not req.url:
        raise BadRequest("a request needs a url", request=req)
    m: Dict[str, Any] = {"op": "submit", "id": tid, "url": req.url}
    if req.method is not None:
        m["method"] = req.method
    if req.headers:
        pairs = list(req.headers.items()) if isinstance(req.headers, Mapping) else list(req.headers)
        if len(pairs) > MAX_HEADERS:
            raise BadRequest(f"at most {MAX_HEADERS} headers, not {len(pairs)}", request=req)
        hs = []
        for p in pairs:
            if len(p) != 2 or not isinstance(p[0], str) or not isinstance(p[1], str):
                raise BadRequest(f"a header is a (name, value) pair of str, not {p!r}", request=req)
            hs.append([p[0], p[1]])
        m["headers"] = hs
    if req.body is not None:
        body = req.body.encode() if isinstance(req.body, str) else bytes(req.body)
        limit = info.get("max_request_body") or 0
        if limit and len(body) > limit:
            raise TooLarge(f"body of {len(body)} bytes exceeds max_request_body {limit}", request=req)
        m["body"] = body
    try:
        if req.timeout is not None:
            if req.timeout < 0:
                raise BadRequest(f"timeout must be >= 0 seconds, not {req.timeout!r}")
            m["timeout_ms"] = _uint32("timeout (in ms)", int(round(req.timeout * 1000)))
        if req.max_attempts is not None:
            m["max_attempts"] = _uint32("max_attempts", req.max_attempts)
        if req.race is not None:
            max_race = info.get("max_race") or MAX_RACE
            if isinstance(req.race, bool) or not isinstance(req.race, int) or not 1 <= req.race <= max_race:
                raise BadRequest(f"race must be 1..{max_race}, not {req.race!r}")
            m["race_width"] = req.race
    except BadRequest as e:
        e.request = req
        raise
    frame = msgpack.packb(m, use_bin_type=True)
    max_frame = info.get("max_frame") or DEFAULT_MAX_FRAME
    if len(frame) > max_frame:
        raise TooLarge(f"request of {len(frame)} bytes exceeds max_frame {max_frame}", request=req)
    return frame


def pack_call(op: str, cid: int, fields: Mapping[str, Any]) -> bytes:
    m = {"op": op, "id": cid}
    m.update({k: v for k, v in fields.items() if v is not None})
    return msgpack.packb(m, use_bin_type=True)


def new_unpacker(limit: int) -> msgpack.Unpacker:
    # Header values and URLs are not always UTF-8 (latin-1 headers exist): keep their bytes
    # round-trippable instead of failing the whole stream.
    return msgpack.Unpacker(raw=False, max_buffer_size=limit, unicode_errors="surrogateescape")


def _s(o: Mapping[str, Any], k: str) -> str:
    v = o.get(k)
    return v if isinstance(v, str) else ""


def _u(o: Mapping[str, Any], k: str) -> int:
    v = o.get(k)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def result_from_reply(t: "Task", o: Mapping[str, Any]) -> Result:
    ok = o.get("ok") is True
    code = "ok" if ok else (_s(o, "error") or "internal")
    headers: List[Tuple[str, str]] = []
    h = o.get("headers")
    if isinstance(h, list):
        for p in h:
            if isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], str):
                headers.append((p[0], p[1]))
    body = o.get("body")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    status = o.get("status")
    return Result(request=t.request, id=t.id, ok=ok, code=code,
                  status=status if ok and isinstance(status, int) else None,
                  headers=headers, body=body if isinstance(body, bytes) else b"",
                  proxy=_s(o, "proxy"), attempts=_u(o, "attempts"), race=_u(o, "race"),
                  latency_ms=_u(o, "latency_ms"), elapsed_ms=_u(o, "elapsed_ms"),
                  message=_s(o, "message"), host=_s(o, "host"), last_error=_s(o, "last_error"),
                  resubmits=t.resubmits)


def result_local(t: "Task", code: str, message: str) -> Result:
    return Result(request=t.request, id=t.id, ok=False, code=code, message=message, resubmits=t.resubmits)


@dataclass(eq=False)
class Task:
    id: int
    frame: bytes
    request: Any
    owner: Any = None
    state: int = QUEUED
    conn: int = -1
    cancel: bool = False
    resubmits: int = 0
    not_before: float = 0.0


@dataclass(eq=False)
class Conn:
    path: str
    task_conn: bool = False
    handle: Any = None        # the driver's socket or stream; None while down
    worker: int = 0
    retrying: bool = False
    gone: bool = False
    retry_at: float = 0.0
    give_up_at: float = 0.0
    owed: int = 0
    unpacker: Optional[msgpack.Unpacker] = None
    out: bytearray = field(default_factory=bytearray)

    @property
    def up(self) -> bool:
        return self.handle is not None


LOST = object()  # a call's reply slot when its connection broke


class Core:
    """The engine. ``deliver(task, result)`` is called once per task; ``close(handle)`` closes
    a driver's connection; ``call_done(id, reply_or_LOST)`` ends a call."""

    def __init__(self, *, recv_limit: int, reconnect: float, deliver: Callable[[Task, Result], None],
                 close: Callable[[Any], None], call_done: Callable[[int, Any], None]) -> None:
        self.recv_limit = recv_limit
        self.reconnect = reconnect
        self.deliver = deliver
        self.close = close
        self.call_done = call_done
        self.conns: List[Conn] = []
        self.tasks: Dict[int, Task] = {}
        self.send_q: Deque[int] = deque()
        self.backoff: List[Tuple[float, int]] = []
        self.backoff_level = 0
        self.next_task_id = TASK_ID_BASE
        self.next_call_id = 2
        self.calls: "OrderedDict[int, None]" = OrderedDict()  # waiting on conns[0]
        self.rng = random.Random()
        self.dead = False
        self.dead_reason = ""

    # ---- tasks ----

    def new_task_id(self) -> int:
        tid = self.next_task_id
        self.next_task_id += 1
        return tid

    def new_call_id(self) -> int:
        cid = self.next_call_id
        self.next_call_id = cid + 1 if cid + 1 < TASK_ID_BASE else 2
        return cid

    def add(self, t: Task) -> None:
        if self.dead:
            raise Disconnected(self.dead_reason, request=t.request)
        self.tasks[t.id] = t
        self.send_q.append(t.id)

    def finish(self, t: Task, r: Result) -> None:
        self.tasks.pop(t.id, None)
        self.deliver(t, r)

    def cancel(self, tid: int) -> bool:
        """Asks for the task's end; it still gets exactly one result, normally cancelled.
        False if the id is not live or already being cancelled."""
        t = self.tasks.get(tid)
        if t is None or t.cancel:
            return False
        t.cancel = True
        if t.state == SENT:
            c = self.conns[t.conn]
            c.out += msgpack.packb({"op": "cancel", "id": tid})
        elif t.state == QUEUED:
            self.finish(t, result_local(t, "cancelled", "cancelled before it was sent"))
        else:
            self.finish(t, result_local(t, "cancelled", "cancelled before it was resubmitted"))
        return True

    def _backoff(self, t: Task, now: float) -> None:
        # Exponential over consecutive pool_full answers, with jitter so that many clients (or
        # many tasks of one client) do not come back in one burst (PROTOCOL.md §5).
        base = 0.050 * (1 << min(self.backoff_level, 2))
        self.backoff_level = min(self.backoff_level + 1, 8)
        t.state = BACKOFF
        t.not_before = now + base + self.rng.uniform(0, base / 2)
        t.resubmits += 1
        heapq.heappush(self.backoff, (t.not_before, t.id))

    # ---- connections ----

    def add_conn(self, path: str, task_conn: bool) -> int:
        self.conns.append(Conn(path=path, task_conn=task_conn))
        return len(self.conns) - 1

    def conn_opened(self, k: int, handle: Any, unpacker: msgpack.Unpacker, worker: int) -> None:
        c = self.conns[k]
        c.handle, c.unpacker, c.worker = handle, unpacker, worker
        c.retrying = False
        c.out.clear()
        c.owed = 0

    def any_task_conn_alive(self) -> bool:
        return any(c.task_conn and not c.gone for c in self.conns)

    def conn_lost(self, k: int, poison: Optional[str] = None) -> None:
        """The connection broke: its tasks go back to the queue (or end, if cancelled), and it
        is retried for ``reconnect`` seconds. ``poison``: the server rejected our bytes, so its
        tasks end with bad_request instead of being resent forever."""
        c = self.conns[k]
        if c.handle is not None:
            self.close(c.handle)
        c.handle = None
        c.unpacker = None
        c.out.clear()
        c.owed = 0
        for t in [t for t in self.tasks.values() if t.state == SENT and t.conn == k]:
            if t.cancel:
                self.finish(t, result_local(t, "cancelled", "cancelled (connection closed)"))
            elif poison:
                self.finish(t, result_local(t, "bad_request", poison))
            else:
                t.state = QUEUED
                t.resubmits += 1
                self.send_q.append(t.id)
        if k == 0:
            for cid in list(self.calls):
                del self.calls[cid]
                self.call_done(cid, LOST)
        if c.task_conn and not c.gone:
            now = time.monotonic()
            if not c.retrying:
                c.retrying = True
                c.give_up_at = now + self.reconnect
            # the master restarts a dead worker after a short backoff: do not hammer it
            c.retry_at = now + RETRY_EVERY / 2

    def due_reconnects(self, now: float) -> List[int]:
        return [k for k, c in enumerate(self.conns) if c.retrying and now >= c.retry_at]

    def reconnect_failed(self, k: int) -> None:
        now = time.monotonic()
        c = self.conns[k]
        if now >= c.give_up_at:
            self._give_up(k)
        else:
            c.retry_at = now + RETRY_EVERY

    def _give_up(self, k: int) -> None:
        c = self.conns[k]
        c.retrying = False
        c.gone = True
        if self.any_task_conn_alive():
            return
        # last resort: the main socket reaches whichever workers are still alive
        m = self.conns[0]
        if not m.task_conn:
            m.task_conn = True
            m.gone = False
            if not m.up:
                m.retrying = True
                m.retry_at = time.monotonic()
                m.give_up_at = m.retry_at + self.reconnect
            return
        self._fail_all(f"lost every connection to scatterd ({self.conns[0].path})")

    def _fail_all(self, why: str) -> None:
        self.dead = True
        self.dead_reason = why
        for t in list(self.tasks.values()):
            if t.state != SENT:
                self.finish(t, result_local(t, "disconnected", why))
        self.send_q.clear()
        self.backoff.clear()

    # ---- input ----

    def feed(self, k: int, data: bytes) -> None:
        """Bytes read from conns[k]: dispatches every complete message."""
        c = self.conns[k]
        if c.unpacker is None:
            return
        try:
            c.unpacker.feed(data)
            for msg in c.unpacker:
                if not isinstance(msg, dict):
                    raise ValueError(f"a reply is not a map: {type(msg).__name__}")
                self._handle(k, msg)
                if c.unpacker is None:
                    return  # the message closed the connection
        except Exception:  # noqa: BLE001 - any decoding failure means the same thing
            # The daemon sent what we cannot parse: the stream cannot resynchronise, and a
            # reconnect to the same daemon would likely repeat it.
            was_task = c.task_conn
            c.gone = was_task
            self.conn_lost(k)
            if was_task:
                self._give_up(k)

    def _handle(self, k: int, o: Dict[str, Any]) -> None:
        mid = o.get("id")
        if not isinstance(mid, int) or isinstance(mid, bool) or mid < 0:
            mid = 0
        ok = o.get("ok", True) is not False
        if mid < TASK_ID_BASE:
            if k == 0 and mid in self.calls:
                del self.calls[mid]
                self.call_done(mid, o)
                return
            if mid == 0 and not ok:
                if k == 0 and self.calls:
                    cid = next(iter(self.calls))
                    del self.calls[cid]
                    self.call_done(cid, o)
                # The daemon is closing this connection (a malformed stream, too many clients,
                # shutting down). Only bad_request blames our bytes; otherwise resubmit.
                poison = None
                if o.get("error") == "bad_request":
                    poison = f"server closed the connection: {_s(o, 'message')[:200]}"
                self.conn_lost(k, poison)
            return
        t = self.tasks.get(mid)
        if t is None or t.state != SENT or t.conn != k:
            return  # a late reply for a task that already ended
        self.conns[k].owed -= 1
        if not ok and not t.cancel and o.get("error") == "pool_full":
            self._backoff(t, time.monotonic())
            return
        if ok:
            self.backoff_level = 0
        self.finish(t, result_from_reply(t, o))

    # ---- output ----

    def _pick_conn(self) -> int:
        best = -1
        for k, c in enumerate(self.conns):
            if c.task_conn and c.up and (best < 0 or c.owed < self.conns[best].owed):
                best = k
        return best

    def step(self, now: float) -> None:
        """Moves due backoffs to the queue and writes queued tasks into connections."""
        while self.backoff and self.backoff[0][0] <= now:
            _, tid = heapq.heappop(self.backoff)
            t = self.tasks.get(tid)
            if t is not None and t.state == BACKOFF:
                t.state = QUEUED
                self.send_q.append(tid)
        while self.send_q:
            t = self.tasks.get(self.send_q[0])
            if t is None or t.state != QUEUED:
                self.send_q.popleft()
                continue
            k = self._pick_conn()
            if k < 0:
                break  # every connection is down: wait for a reconnect
            self.send_q.popleft()
            c = self.conns[k]
            c.out += t.frame
            t.state = SENT
            t.conn = k
            c.owed += 1
        if self.send_q and not self.any_task_conn_alive():
            self._fail_all(f"lost every connection to scatterd ({self.conns[0].path})")

    def next_wake(self) -> Optional[float]:
        w: Optional[float] = self.backoff[0][0] if self.backoff else None
        for c in self.conns:
            if c.retrying and (w is None or c.retry_at < w):
                w = c.retry_at
        return w


def hello_info(reply: Mapping[str, Any]) -> Dict[str, Any]:
    """The hello reply with the defaults the C client assumes for missing fields."""
    info = dict(reply)
    info.setdefault("max_frame", DEFAULT_MAX_FRAME)
    info.setdefault("max_race", MAX_RACE)
    for k in ("max_request_body", "max_response_body", "pool_capacity", "workers", "worker"):
        info.setdefault(k, 0)
    return info


def hello_reply(msg: Any, path: str) -> Optional[Dict[str, Any]]:
    """The hello reply's info (id 1), or None for a message that is not it. A refusal sent
    before the hello (too_many_clients, shutting_down) raises its error; a hello that fails
    raises ConnectError naming the socket."""
    if not isinstance(msg, dict) or msg.get("id") != 1:
        if isinstance(msg, dict) and msg.get("ok") is False:
            raise error_from_reply(msg)
        return None
    if msg.get("ok") is not True:
        raise ConnectError(f"hello refused on {path}: {msg.get('message', 'no message')}")
    return hello_info(msg)

def default_window(info: Mapping[str, Any]) -> int:
    """Three quarters of pool_capacity, at least 1, at most 4096 (PROTOCOL.md §5); 1000 if the
    daemon did not say. More than the pool only earns pool_full and its 50-200 ms pauses."""
    cap = info.get("pool_capacity") or 0
    return max(1, min(cap * 3 // 4, 4096)) if cap else 1000


def recv_limit(info: Mapping[str, Any]) -> int:
    return int(info.get("max_frame") or DEFAULT_MAX_FRAME) + int(info.get("max_response_body") or 0) + (1 << 20)


def worker_paths(main: str, info: Mapping[str, Any]) -> List[str]:
    """The worker sockets hello announced; the documented ``<socket>.<W>`` rule for any
    entry that is missing."""
    ws = info.get("worker_sockets")
    n = info.get("workers") or 0
    out = []
    for w in range(1, n + 1):
        p = ws[w - 1] if isinstance(ws, list) and len(ws) >= w else None
        out.append(p if isinstance(p, str) and p else f"{main}.{w}")
    return out

