#!/usr/bin/env python3
"""Reads URLs from a file (one per line; blank lines and lines starting with # skipped) and
writes one JSON line per URL in completion order, with the keys of `scatterctl fetch --jsonl`:
n (the line number), url, ok, status, proxy, attempts, race, latency_ms, elapsed_ms, error,
message, bytes. Exits 1 if any task failed.

    PYTHONPATH=clients/python python3 clients/python/examples/fetch_jsonl.py urls.txt out.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator, TextIO

from scatter_client import Client, Disconnected, Request, ScatterError


def read_urls(f: TextIO) -> Iterator[Request]:
    for n, line in enumerate(f, 1):
        url = line.strip()
        if url and not url.startswith("#"):
            yield Request(url, tag=n)


def line_of(r) -> str:
    ok = r.ok
    return json.dumps({
        "n": r.request.tag, "url": r.url, "ok": ok, "status": r.status if ok else None,
        "proxy": r.proxy if ok else None, "attempts": r.attempts, "race": r.race,
        "latency_ms": r.latency_ms if ok else None, "elapsed_ms": r.elapsed_ms,
        "error": None if ok else r.code, "message": None if ok else r.message,
        "bytes": len(r.body) if ok else 0}, separators=(",", ":"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="file of URLs, - for stdin")
    ap.add_argument("output", nargs="?", default="-", help="JSON lines file (default stdout)")
    ap.add_argument("-s", "--socket", help="scatterd socket (else $SCATTER_SOCKET, else the default)")
    ap.add_argument("-w", "--window", type=int, default=None, help="tasks outstanding at most")
    ap.add_argument("-t", "--timeout", type=float, default=None, help="seconds per task")
    a = ap.parse_args()
    src = sys.stdin if a.input == "-" else open(a.input)
    out = sys.stdout if a.output == "-" else open(a.output, "w")
    done = failed = 0
    try:
        with Client(a.socket) as c:
            for r in c.fetch_many(read_urls(src), window=a.window, timeout=a.timeout):
                out.write(line_of(r) + "\n")
                done += 1
                failed += not r.ok
    except Disconnected as e:
        print(f"fetch_jsonl: {e}; {len(e.unanswered)} URLs unanswered", file=sys.stderr)
        return 3
    except ScatterError as e:
        print(f"fetch_jsonl: {e}", file=sys.stderr)
        return 3
    finally:
        out.flush()
    print(f"fetch_jsonl: {done} tasks, {done - failed} ok, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
