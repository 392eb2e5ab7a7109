"""scatter_client: a Python client of scatterd over its documented protocol
(docs/PROTOCOL.md), with the behaviour of the C library (ctl/scatter_client.h).

    from scatter_client import Client
    with Client() as c:
        r = c.fetch("http://example.com/")
        for r in c.fetch_many(urls, window=2000):
            ...
    # several instances on one Redis stream (docs/SCALING.md):
    from scatter_client import StreamClient
    with StreamClient("redis://10.0.0.5:6379") as c:
        for r in c.fetch_many(urls):
            ...
"""
from ._core import Request, Result
from .aio import AsyncClient, TaskFuture
from .client import Client
from .errors import (BadRequest, Cancelled, CircuitOpen, ConnectError, DeadLetter, Disconnected, Internal, MaxAttempts,
                     PoolFull, ScatterError, ServerIdentityError, ShuttingDown, Timeout, TooLarge, TooManyClients,
                     WindowFull, error_class, error_from_reply)
from .paths import default_socket_path, socket_path
from .stream import StreamClient

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "BadRequest", "Cancelled", "CircuitOpen", "Client", "ConnectError", "DeadLetter", "Disconnected",
    "Internal", "MaxAttempts", "PoolFull", "Request", "Result", "ScatterError", "ServerIdentityError", "ShuttingDown",
    "StreamClient", "TaskFuture", "Timeout", "TooLarge", "TooManyClients", "WindowFull", "default_socket_path", "error_class",
    "error_from_reply", "socket_path",
]
