"""The socket path and the server identity check, as the C client does them
(ctl/client.c, common/paths.c)."""
from __future__ import annotations

import os
import socket
import struct
from typing import Mapping, Optional

from .errors import ConnectError, ServerIdentityError

ROOT_DIR = "/run/scatter"
SUBDIR = "scatter"
SOCKET_NAME = "scatter.sock"


def default_socket_path(euid: Optional[int] = None, environ: Optional[Mapping[str, str]] = None) -> str:
    """The daemon's default socket: ``/run/scatter/scatter.sock`` as root, else
    ``$XDG_RUNTIME_DIR/scatter/scatter.sock``. Raises :class:`ConnectError` when not root and
    ``XDG_RUNTIME_DIR`` is unset or relative (there is no private directory to look in)."""
    uid = os.geteuid() if euid is None else euid
    env = os.environ if environ is None else environ
    if uid == 0:
        return f"{ROOT_DIR}/{SOCKET_NAME}"
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if not xdg:
        raise ConnectError(
            f"XDG_RUNTIME_DIR is not set, so there is no private directory for the default socket "
            f"(uid {uid} is not root); set XDG_RUNTIME_DIR, SCATTER_SOCKET or pass socket_path")
    if not xdg.startswith("/"):
        raise ConnectError(f"XDG_RUNTIME_DIR '{xdg}' is not an absolute path")
    return f"{xdg}/{SUBDIR}/{SOCKET_NAME}"


def socket_path(explicit: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                euid: Optional[int] = None) -> str:
    """The path to use: ``explicit`` if non-empty, else ``$SCATTER_SOCKET`` if non-empty, else
    :func:`default_socket_path`."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get("SCATTER_SOCKET"):
        return env["SCATTER_SOCKET"]
    return default_socket_path(euid, env)


def check_server(sock: socket.socket, path: str) -> None:
    """Refuses a server that is neither root nor our uid. Whoever can create the socket file
    can answer in the daemon's place, read our URLs and forge bodies, so this runs before a
    byte is sent. SO_PEERCRED gives the credentials the server had when it called listen()."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError as e:
        raise ConnectError(f"cannot check who serves {path}: {e.strerror}", errno=e.errno) from e
    pid, uid, _gid = struct.unpack("3i", raw)
    me = os.geteuid()
    if uid != 0 and uid != me:
        raise ServerIdentityError(
            f"refusing {path}: it is served by uid {uid} (pid {pid}), which is neither root nor our "
            f"uid {me}; another user may have taken the socket's place")
