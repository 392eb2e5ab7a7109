"""Exceptions, one per error code of docs/PROTOCOL.md §3, plus the client's own.

Every exception carries what the daemon said about the failure: ``code`` (the wire code),
``message``, ``host``, ``attempts``, ``last_error`` and ``elapsed_ms`` (zero or empty when the
reply had no such field), and ``request`` (what was submitted, when it concerns a task).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type


class ScatterError(Exception):
    """Base of every error this package raises."""

    code = "internal"

    def __init__(
        self,
        message: str = "",
        *,
        code: Optional[str] = None,
        host: str = "",
        attempts: int = 0,
        last_error: str = "",
        elapsed_ms: int = 0,
        request: Any = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.host = host
        self.attempts = attempts
        self.last_error = last_error
        self.elapsed_ms = elapsed_ms
        self.request = request
        super().__init__(self._describe())

    def _describe(self) -> str:
        s = f"{self.code}: {self.message}" if self.message else self.code
        if self.host:
            s += f" (host {self.host}"
            if self.attempts:
                s += f", {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
            s += ")"
        if self.last_error and self.last_error not in s:
            s += f"; last error: {self.last_error}"
        return s


class BadRequest(ScatterError):
    """The request is malformed or not allowed; fix it (``bad_request``)."""

    code = "bad_request"


class PoolFull(ScatterError):
    """The daemon's task pool is at capacity (``pool_full``). The clients resubmit on their
    own; this is raised only by a ``call`` that asks for it."""

    code = "pool_full"


class CircuitOpen(ScatterError):
    """The target host's circuit breaker is open (``circuit_open``): retry much later."""

    code = "circuit_open"


class MaxAttempts(ScatterError):
    """Every allowed round failed (``max_attempts``)."""

    code = "max_attempts"


class Timeout(ScatterError):
    """The task's deadline passed before a proxy succeeded (``timeout``)."""

    code = "timeout"


class Cancelled(ScatterError):
    """The task was cancelled (``cancelled``)."""

    code = "cancelled"


class TooLarge(ScatterError):
    """A request or response body, or the response headers, exceed a limit (``too_large``)."""

    code = "too_large"


class ShuttingDown(ScatterError):
    """The daemon is stopping and takes no new task (``shutting_down``)."""

    code = "shutting_down"


class TooManyClients(ScatterError):
    """The worker that accepted the connection has ``max_clients`` clients."""

    code = "too_many_clients"


class DeadLetter(ScatterError):
    """Redis transport only: the stream entry was delivered ``redis_max_deliveries`` times and
    never answered (every worker that took it died or stopped first); it is not run again
    (``dead_letter``)."""

    code = "dead_letter"


class Internal(ScatterError):
    """A bug or resource failure in the daemon, or an error code this client does not know
    (``code`` then holds the unknown code)."""

    code = "internal"


class Disconnected(ScatterError):
    """Every connection to the daemon is lost for good (the client retried each for its
    ``reconnect`` time). ``unanswered`` lists what was submitted and never got an answer
    (the requests as given, in submission order)."""

    code = "disconnected"

    def __init__(self, message: str = "", *, unanswered: Optional[list] = None, **kw: Any) -> None:
        self.unanswered = list(unanswered or [])
        super().__init__(message, **kw)


class ConnectError(ScatterError):
    """The daemon's socket cannot be reached, or its ``hello`` failed. ``errno`` is set when
    the cause was an OS error."""

    code = "connect"

    def __init__(self, message: str = "", *, errno: Optional[int] = None, **kw: Any) -> None:
        self.errno = errno
        super().__init__(message, **kw)


class ServerIdentityError(ConnectError):
    """The socket is served by a process that is neither root nor our own uid (by
    ``SO_PEERCRED``); nothing was sent to it."""

    code = "server_identity"


class WindowFull(ScatterError):
    """``Client.submit`` with ``window`` tasks outstanding: take results first."""

    code = "window_full"


ERRORS: Dict[str, Type[ScatterError]] = {
    cls.code: cls
    for cls in (BadRequest, PoolFull, CircuitOpen, MaxAttempts, Timeout, Cancelled, TooLarge,
                ShuttingDown, TooManyClients, DeadLetter, Internal, Disconnected)
}


def error_class(code: str) -> Type[ScatterError]:
    """The exception class of a wire code; unknown codes map to :class:`Internal` (§3)."""
    return ERRORS.get(code, Internal)


def error_from_reply(reply: Mapping[str, Any], request: Any = None) -> ScatterError:
    """Builds the exception an error reply describes."""
    code = reply.get("error")
    if not isinstance(code, str) or not code:
        code = "internal"
    cls = error_class(code)

    def s(key: str) -> str:
        v = reply.get(key)
        return v if isinstance(v, str) else ""

    def u(key: str) -> int:
        v = reply.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    return cls(s("message"), code=code, host=s("host"), attempts=u("attempts"),
               last_error=s("last_error"), elapsed_ms=u("elapsed_ms"), request=request)
