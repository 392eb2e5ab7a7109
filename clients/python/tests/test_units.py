"""The parts that need no daemon: socket path rules, error mapping, request packing, and the
server identity check (against a socketpair, whose peer is ourselves)."""
from __future__ import annotations

import socket

import msgpack
import pytest

from scatter_client import (BadRequest, CircuitOpen, ConnectError, Internal, MaxAttempts, PoolFull, Request,
                            Timeout, TooLarge, default_socket_path, error_from_reply, socket_path)
from scatter_client._core import pack_submit
from scatter_client.paths import check_server

INFO = {"max_frame": 4 << 20, "max_request_body": 100, "max_race": 64}


def test_socket_path_order():
    env = {"SCATTER_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert socket_path("/arg.sock", env, euid=1000) == "/arg.sock"
    assert socket_path(None, env, euid=1000) == "/env.sock"
    assert socket_path("", {"XDG_RUNTIME_DIR": "/run/user/1000"}, euid=1000) == "/run/user/1000/scatter/scatter.sock"
    assert default_socket_path(0, {}) == "/run/scatter/scatter.sock"
    with pytest.raises(ConnectError, match="XDG_RUNTIME_DIR is not set"):
        default_socket_path(1000, {})
    with pytest.raises(ConnectError, match="not an absolute path"):
        default_socket_path(1000, {"XDG_RUNTIME_DIR": "run"})


def test_error_mapping():
    e = error_from_reply({"error": "max_attempts", "message": "every round failed", "host": "h:1", "attempts": 3,
                          "last_error": "http 503 (target_error_status)", "elapsed_ms": 12})
    assert isinstance(e, MaxAttempts) and (e.host, e.attempts, e.elapsed_ms) == ("h:1", 3, 12)
    assert "http 503" in str(e) and "h:1" in str(e)
    assert isinstance(error_from_reply({"error": "pool_full"}), PoolFull)
    assert isinstance(error_from_reply({"error": "circuit_open"}), CircuitOpen)
    assert isinstance(error_from_reply({"error": "timeout"}), Timeout)
    u = error_from_reply({"error": "brand_new_code", "message": "m"})
    assert isinstance(u, Internal) and u.code == "brand_new_code"  # unknown codes mean internal


def test_pack_submit():
    m = msgpack.unpackb(pack_submit(1 << 32, Request("http://a/", method="POST", headers={"A": "b"}, body="xy",
                                                      timeout=1.5, race=3, max_attempts=0), INFO))
    assert m == {"op": "submit", "id": 1 << 32, "url": "http://a/", "method": "POST", "headers": [["A", "b"]],
                 "body": b"xy", "timeout_ms": 1500, "max_attempts": 0, "race_width": 3}
    assert msgpack.unpackb(pack_submit(5, Request("http://a/"), INFO)) == {"op": "submit", "id": 5, "url": "http://a/"}
    with pytest.raises(BadRequest, match="race"):
        pack_submit(5, Request("http://a/", race=0), INFO)
    with pytest.raises(BadRequest, match="headers"):
        pack_submit(5, Request("http://a/", headers=[("a", "b")] * 129), INFO)
    with pytest.raises(BadRequest, match="timeout"):
        pack_submit(5, Request("http://a/", timeout=-1), INFO)
    with pytest.raises(TooLarge, match="max_request_body"):
        pack_submit(5, Request("http://a/", body=b"x" * 101), INFO)
    with pytest.raises(TooLarge, match="max_frame"):
        pack_submit(5, Request("http://a/" + "x" * 200), {"max_frame": 100})


def test_server_identity_is_ours():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        check_server(a, "socketpair")  # our own uid: accepted
