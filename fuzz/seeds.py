#!/usr/bin/env python3
"""Writes the hand-made part of the seed corpus (fuzz/corpus/<target>/seed-*). Python 3 standard
library only; run from anywhere: python3 fuzz/seeds.py. The daemon-written state file
(corpus/persist/daemon-*.json) and the shipped scatter.ini copy are not made here (README.md).

Seeds are small valid inputs and near misses: libFuzzer mutates from them, so each one should
reach a different branch of the decoder."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


# --- a minimal msgpack encoder (docs/PROTOCOL.md §2), with a choice of widths -------------
def mp(v, wide=False):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if v < 0:
            return b"\xd3" + struct.pack(">q", v)
        if v < 128 and not wide:
            return bytes([v])
        if v < 256:
            return b"\xcc" + bytes([v])
        if v < 65536:
            return b"\xcd" + struct.pack(">H", v)
        if v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        return b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        n = len(v)
        if n < 256:
            return b"\xc4" + bytes([n]) + v
        return b"\xc5" + struct.pack(">H", n) + v
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32 and not wide:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        return b"\xda" + struct.pack(">H", n) + b
    if isinstance(v, (list, tuple)):
        n = len(v)
        h = bytes([0x90 | n]) if n < 16 and not wide else b"\xdc" + struct.pack(">H", n)
        return h + b"".join(mp(x, wide) for x in v)
    if isinstance(v, dict):
        n = len(v)
        h = bytes([0x80 | n]) if n < 16 and not wide else b"\xde" + struct.pack(">H", n)
        return h + b"".join(mp(k, wide) + mp(x, wide) for k, x in v.items())
    raise TypeError(v)


def map32(d):
    return b"\xdf" + struct.pack(">I", len(d)) + b"".join(mp(k) + mp(x) for k, x in d.items())


def proto_seeds():
    full_submit = {
        "op": "submit", "id": 7, "url": "http://example.com/item/1?q=a", "method": "POST",
        "headers": [["Accept", "text/html"], ["X-Token", "abc"], ["Cookie", "a=b; c=d"]],
        "body": b"k=v&x=1", "timeout_ms": 30000, "max_attempts": 3, "race_width": 4,
    }
    s = {
        "hello": {"op": "hello", "id": 1},
        "submit-min": {"op": "submit", "id": 7, "url": "http://example.com/"},
        "submit-full": full_submit,
        "submit-str-body": {"op": "submit", "id": 8, "url": "https://example.com:8443/x", "body": "text",
                            "method": "PUT", "headers": None, "timeout_ms": None},
        "submit-head": {"op": "submit", "id": 9, "url": "http://[::1]:8080/", "method": "HEAD",
                        "headers": [["Host", "example.com"], ["Content-Length", "0"]]},
        "submit-hop-headers": {"op": "submit", "id": 10, "url": "http://example.com:8080/", "method": "POST",
                               "headers": [["Connection", "keep-alive, X-Drop,  Upgrade"], ["X-Drop", "1"],
                                           ["Transfer-Encoding", "chunked"], ["Proxy-Authorization", "Basic x"],
                                           ["TE", "trailers"], ["Host", "EXAMPLE.com:8080"], ["X-Keep", "2"]],
                               "body": b"0\r\n\r\nGET /item/2 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
        "cancel": {"op": "cancel", "id": 7},
        "status": {"op": "status", "id": 2},
        "proxies": {"op": "proxies", "id": 3, "limit": 100, "offset": 20, "host": "example.com:80"},
        "hosts": {"op": "hosts", "id": 4, "limit": 10, "offset": 0},
        # near misses: each is answered bad_request by a worker
        "unknown-op": {"op": "frobnicate", "id": 5},
        "no-id": {"op": "status"},
        "id-negative": {"op": "status", "id": -1},
        "op-bin": {"op": b"hello", "id": 1},
        "bad-method": {"op": "submit", "id": 1, "url": "http://a/", "method": "get"},
        "bad-header": {"op": "submit", "id": 1, "url": "http://a/", "headers": [["X", "a\r\nb"]]},
        "header-shape": {"op": "submit", "id": 1, "url": "http://a/", "headers": [["X"], "Y", ["A", 1]]},
        "race-zero": {"op": "submit", "id": 1, "url": "http://a/", "race_width": 0},
        "limit-huge": {"op": "proxies", "id": 1, "limit": 2**33},
        "float-id": {"op": "hello", "id": 1.5},
        "not-a-map": ["op", "hello", "id", 1],
    }
    out = {k: mp(v) for k, v in s.items()}
    out["hello-wide"] = mp(s["hello"], wide=True)
    out["submit-wide"] = mp(full_submit, wide=True)
    out["status-map32"] = map32({"op": "status", "id": 2})
    # a stream: several requests back to back, the way a pipelining client writes them
    out["stream"] = b"".join(mp({"op": "submit", "id": i, "url": "http://example.com/%d" % i}) for i in range(5)) \
        + mp(s["status"]) + mp(s["hosts"])
    # the byte-for-byte examples of docs/PROTOCOL.md
    out["doc-hello"] = bytes.fromhex("82a26f70a568656c6c6fa2696401")
    out["doc-submit"] = bytes.fromhex(
        "83a26f70a67375626d6974a2696407a375726cb3687474703a2f2f6578616d706c652e636f6d2f")
    # framing near misses: truncated, reserved byte, too deep, huge declared sizes, ext types
    out["truncated"] = mp(full_submit)[:-5]
    out["reserved-c1"] = b"\x82\xa2op\xc1"
    out["deep"] = b"\x81\xa1a" + b"\x91" * 10 + b"\x01"
    out["array32-huge"] = b"\xdd\x7f\xff\xff\xff"
    out["str32-huge"] = b"\x81\xa2op\xdb\xff\xff\xff\xff"
    out["ext-types"] = b"\x85" + mp("a") + b"\xd4\x01\x02" + mp("b") + b"\xc7\x03\x05abc" + mp("c") \
        + b"\xd8\x01" + bytes(16) + mp("op") + mp("hello") + mp("id") + b"\xcb" + struct.pack(">d", 1.0)
    return out


def sources_seeds():
    every_scheme = "\n".join([
        "# a proxy list: one per line",
        "1.2.3.4:1080",
        "socks5://5.6.7.8:1080",
        "socks5h://proxy.example.com:9050",
        "socks4://9.9.9.9:4145",
        "socks4a://proxy-2.example.net:1080",
        "http://10.0.0.1:3128",
        "HTTP://Proxy.Example.ORG:8080",
        "[2001:db8::1]:1080",
        "socks5://[::ffff:127.0.0.1]:1080",
        "user:pass@1.2.3.4:1080",
        "socks5://alice:s3cr:et/x@proxy.example.com:1080",
        "socks5h://bob:@[2001:db8::2]:443",
        "",
        "   203.0.113.7:8000   ",
        "localhost:1080",
        "a.localhost:1080",
        "127.0.0.1:1080",
        "169.254.1.1:80",
        "100.64.0.1:80",
    ]) + "\n"
    bad = "\n".join([
        "ftp://1.2.3.4:21", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "::1:1080", "[::1%eth0]:1080",
        "a@b@1.2.3.4:1", ":pass@1.2.3.4:1", "user@1.2.3.4:1", "1.2.3.4:1080/path",
        "0x7f000001:80", "2130706433:80", "-bad-.example.com:80", "exa mple.com:80",
        "a..b:80", "trailing.dot.:80", "x" * 300 + ".com:80", "\tsocks5://1.2.3.4:1\r",
    ]) + "\n"
    crlf = "socks5://1.2.3.4:1080\r\nhttp://5.6.7.8:3128\r\n# comment\r\n\r\n"
    return {
        "every-scheme": every_scheme.encode(),
        "bad-lines": bad.encode(),
        "crlf": crlf.encode(),
        "nul-inside": b"1.2.3.4:1080\n5.6.7.8:10\x0080\n9.9.9.9:1080\n",
        "no-final-newline": b"socks4://1.1.1.1:1080",
        "utf8": "pr\u00f6xy.example:80\n\u00a01.2.3.4:80\n".encode(),
    }


def config_seeds():
    return {
        "minimal": b"[scatter]\nsources = \"/tmp/proxies.txt\"\n",
        "hosts": b"""; a per-host setup
[scatter]
sources = "free=/tmp/a.txt, paid=http://127.0.0.1:8000/list.txt"
workers = 2
race_width = 3
race_width_min = 1
race_width_max = 8
max_frame = 1M
task_timeout = 30s
success_status = "2xx,304"
blocked_status = "403,429"
blocked_body = "captcha|Access denied"
log_level = debug
socket_mode = 0660
score_affinity = 0.5
[rate_limit]
interval = 1500ms
margin = 50
anchor = sent
[host:example.com]
interval = 2000
race_width = 2
race_mode = hedged
sources = paid
[host:api.example.com:8443]
max_attempts = 0
blocked_body = "denied"
""",
        "quoted": b"[scatter]\nuser_agent = \"scatter; test #1\"\nlog_file = '/tmp/x.log'\n[rate_limit]\ninterval = 1m\n",
        "errors-unknown-key": b"[scatter]\nno_such_key = 1\n",
        "errors-bad-value": b"[scatter]\nrace_width = abc\n",
        "errors-semicolon": b"[scatter]\nblocked_body = a;b\n",
        "errors-section": b"[nope]\nx = 1\n",
        "errors-outside": b"x = 1\n[scatter]\n",
        "errors-cross": b"[scatter]\nrace_width_min = 5\nrace_width_max = 2\n",
        "errors-status": b"[scatter]\nsuccess_status = \"abc\"\n",
        "empty": b"",
        "binary": bytes(range(256)),
    }


def persist_seeds():
    cell = '{"success":3,"fail":1,"avg_latency_ms":120,"consecutive_fails":0}'
    full_cell = ('{"success":10,"fail":5,"avg_latency_ms":80,"consecutive_fails":2,"window":1021,'
                 '"window_n":12,"cooldown_level":3,"cooldown_remaining_ms":4000,"dead":true,'
                 '"last_success_age_ms":60000}')
    return {
        "minimal": b'{"version":1,"saved_at":"2026-11-23T09:00:00.123Z","proxies":{}}',
        "schemes": ('{"version":1,"saved_at":"2026-11-23T09:00:00Z","saved_at_ms":1795424400000,"proxies":{'
                    '"socks5://1.2.3.4:1080":{"state":"active","success":4,"fail":1,"hosts":{"example.com":%s}},'
                    '"socks5h://user:p%%40ss@proxy.example.com:9050":{"state":"dead","hosts":{"a.example:8080":%s}},'
                    '"socks4://[2001:db8::1]:1080":{"state":"unknown","hosts":{}},'
                    '"http://127.0.0.1:3128":{"state":"active","success":1,"fail":0,"hosts":{"[::1]:80":%s}}'
                    '}}' % (full_cell, cell, cell)).encode(),
        # saved with health_window = 56, loaded with 30: the window is cut to its newest bits
        "window-cut": ('{"version":1,"saved_at":"2026-11-23T09:00:00Z","proxies":{"socks5://1.2.3.4:1080":'
                       '{"state":"active","hosts":{"example.com":{"success":60,"fail":0,"avg_latency_ms":5,'
                       '"consecutive_fails":0,"window":72057594037927935,"window_n":56}}}}}').encode(),
        "wrong-version": b'{"version":2,"saved_at":"2026-11-23T09:00:00Z","proxies":{}}',
        "bad-key": ('{"version":1,"saved_at":"x","proxies":{"not a proxy":{"state":"active","hosts":{}}}}').encode(),
        "bad-cell": ('{"version":1,"saved_at":"2026-11-23T09:00:00Z","proxies":{"1.2.3.4:1":{"state":"active",'
                     '"hosts":{"h":{"success":-1,"fail":"x"}}}}}').encode(),
        "duplicate": b'{"version":1,"version":1,"saved_at":"2026-11-23T09:00:00Z","proxies":{}}',
        "truncated": ('{"version":1,"saved_at":"2026-11-23T09:00:00Z","proxies":{"socks5://1.2.3.4:1080":'
                      '{"state":"active","hosts":{"example.com":%s' % cell).encode(),
    }


def http_seeds():
    """What clients write to the HTTP front door (docs/HTTP.md): one or more requests."""
    T = b"127.0.0.10:18080"
    def req(line, *headers, body=b""):
        return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    get = req(b"GET http://" + T + b"/item/1 HTTP/1.1", b"Host: " + T, b"User-Agent: curl/7.88.1", b"Accept: */*")
    basic = b"Proxy-Authorization: Basic dXNlcjpzZWNyZXQ="  # user:secret
    sess = b"Proxy-Authorization: Basic c2Vzc2lvbi1hYmM6c2VjcmV0"  # session-abc:secret
    return {
        "get": get,
        "get-http10": req(b"GET http://" + T + b"/item/2 HTTP/1.0"),
        "head": req(b"HEAD http://" + T + b"/item/3 HTTP/1.1", b"Host: " + T),
        "post-length": req(b"POST http://" + T + b"/form HTTP/1.1", b"Host: " + T,
                           b"Content-Type: application/x-www-form-urlencoded", b"Content-Length: 11",
                           body=b"a=1&b=two&c"),
        "post-chunked": req(b"POST http://" + T + b"/upload HTTP/1.1", b"Host: " + T,
                            b"Transfer-Encoding: chunked",
                            body=b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        "connect": req(b"CONNECT 127.0.0.10:443 HTTP/1.1", b"Host: 127.0.0.10:443", basic)
                   + b"\x16\x03\x01\x00\x05hello",
        "connect-port-refused": req(b"CONNECT Example.COM:22 HTTP/1.1", b"Host: example.com:22"),
        "connect-no-port": req(b"CONNECT example.com HTTP/1.1", b"Host: example.com"),
        "pipelined": get + req(b"GET http://" + T + b"/item/4 HTTP/1.1", b"Host: " + T)
                     + req(b"DELETE http://" + T + b"/item/5 HTTP/1.1", b"Host: " + T, b"Connection: close"),
        "fetch": req(b"GET /fetch?url=https%3A%2F%2F127.0.0.10%3A18443%2Fitem%2F6%3Fq%3Da+b&x=1 HTTP/1.1",
                     b"Host: 127.0.0.2:8118"),
        "fetch-bad-scheme": req(b"GET /fetch?url=ftp%3A%2F%2Fx%2F HTTP/1.1", b"Host: x"),
        "fetch-percent-end": req(b"GET /fetch?url=http%3A%2F%2Fx%2F% HTTP/1.1", b"Host: x"),
        "scatter-headers": req(b"GET http://" + T + b"/item/7 HTTP/1.1", b"Host: " + T, b"X-Scatter-Race: 3",
                               b"X-Scatter-Timeout: 5000", b"X-Scatter-Attempts: 0", b"X-Scatter-Scheme: https",
                               b"X-Scatter-Session: crawl-1", b"Cookie: a=b"),
        "scatter-bad-knob": req(b"GET http://" + T + b"/item/8 HTTP/1.1", b"X-Scatter-Race: 99",
                                b"X-Scatter-Scheme: gopher"),
        "session-user": req(b"GET http://" + T + b"/item/9 HTTP/1.1", b"Host: " + T, sess,
                            b"Proxy-Connection: keep-alive", b"Connection: keep-alive, X-Drop", b"X-Drop: 1"),
        "origin-form": req(b"GET /item/1 HTTP/1.1", b"Host: " + T),
        "oversized-header": req(b"GET http://" + T + b"/ HTTP/1.1", b"X-Big: " + b"a" * 1500),
        "many-headers": req(b"GET http://" + T + b"/ HTTP/1.1", *[b"X-H%d: v" % i for i in range(140)]),
        "body-too-large": req(b"PUT http://" + T + b"/ HTTP/1.1", b"Content-Length: 600", body=b"b" * 600),
        "folded-header": req(b"GET http://" + T + b"/ HTTP/1.1", b"X-Long: part one", b" part two"),
        "garbage": b"HELLO WORLD\r\n\r\n\x00\xff\x16\x03\x01",
        "bare-lf": b"GET http://" + T + b"/item/1 HTTP/1.1\nHost: x\n\n",
    }


def dict_lines(words):
    out = []
    for w in words:
        b = w if isinstance(w, bytes) else w.encode()
        out.append('"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\x%02x" % c for c in b) + '"')
    return "\n".join(out) + "\n"


def dicts():
    """libFuzzer dictionaries (fuzz/dict/<target>.dict): the tokens a decoder looks for."""
    proto = [mp(w) for w in ("op", "id", "hello", "submit", "cancel", "status", "proxies", "hosts", "url",
                             "method", "headers", "body", "timeout_ms", "max_attempts", "race_width",
                             "limit", "offset", "host", "GET", "http://", "https://")]
    proto += [b"\xdc", b"\xdd", b"\xde", b"\xdf", b"\xd9", b"\xda", b"\xdb", b"\xc4", b"\xc5", b"\xc6",
              b"\xc7", b"\xc8", b"\xc9", b"\xcf", b"\xd3", b"\xcb", b"\xca", b"\xd8"]
    keys = []
    with open(os.path.join(HERE, "..", "scatter.ini")) as f:
        for line in f:
            if " = " in line and not line.startswith(";"):
                keys.append(line.split(" = ")[0].strip())
    config = keys + ["[scatter]", "[rate_limit]", "[host:", "]", " = ", "\"", "'", ";", "#", "true", "false",
                     "ms", "s", "m", "h", "K", "M", "G", "2xx", "5xx", "|", "hedged", "response", "sent", "debug"]
    persist = ['"version"', '"saved_at"', '"saved_at_ms"', '"proxies"', '"state"', '"active"', '"dead"',
               '"unknown"', '"success"', '"fail"', '"hosts"', '"avg_latency_ms"', '"consecutive_fails"',
               '"window"', '"window_n"', '"cooldown_level"', '"cooldown_remaining_ms"', '"last_success_age_ms"',
               '"socks5://', '"socks5h://', '"socks4://', '"http://', "true", "null", "2026-11-23T09:00:00.123Z",
               "\\u0000", "18446744073709551615", "9223372036854775807", "4294967295", "72057594037927935"]
    sources = ["socks5://", "socks5h://", "socks4://", "socks4a://", "http://", "@", ":", "[", "]:", "::ffff:",
               "localhost", ".localhost", "127.0.0.1", "::1", "fe80::", "#", "\r\n", "65535"]
    http = ["GET ", "POST ", "HEAD ", "CONNECT ", "PUT ", "OPTIONS ", " HTTP/1.1\r\n", " HTTP/1.0\r\n", "\r\n",
            "\r\n\r\n", "http://", "https://", "/fetch?url=", "&url=", "%3A%2F%2F", "%", "+", ":443", ":18080",
            "Host: ", "Content-Length: ", "Transfer-Encoding: chunked", "0\r\n\r\n", "Connection: close",
            "Connection: keep-alive", "Proxy-Connection: ", "Proxy-Authorization: Basic ", "dXNlcjpzZWNyZXQ=",
            "c2Vzc2lvbi1hYmM6c2VjcmV0", "X-Scatter-Race: ", "X-Scatter-Timeout: ", "X-Scatter-Attempts: ",
            "X-Scatter-Scheme: https", "X-Scatter-Session: ", "Upgrade: ", "Expect: 100-continue", "4294967296"]
    d = os.path.join(HERE, "dict")
    os.makedirs(d, exist_ok=True)
    for name, words in (("proto", proto), ("config", config), ("persist", persist), ("sources", sources),
                        ("http", http)):
        with open(os.path.join(d, name + ".dict"), "w") as f:
            f.write("# libFuzzer dictionary of fuzz_%s, written by fuzz/seeds.py\n" % name)
            f.write(dict_lines(words))


def main():
    for target, seeds in (("proto", proto_seeds()), ("sources", sources_seeds()),
                          ("config", config_seeds()), ("persist", persist_seeds()), ("http", http_seeds())):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (target, len(seeds)))
    dicts()


if __name__ == "__main__":
    main()
