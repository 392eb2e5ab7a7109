"""Minimal msgpack codec and client for scatterd's integration tests (no third-party module:
the tests run on whatever python3 is first on PATH). Encodes dict/list/str/bytes/int/bool/
None; decodes the same plus floats. docs/PROTOCOL.md: one map per message, no length prefix."""
import socket
import struct
import time


def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 2**32:
            return b"\xce" + struct.pack(">I", o)
        if 0 <= o < 2**64:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(o)) + bytes(o)
    if isinstance(o, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(o)) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o))


class NeedMore(Exception):
    pass


def unpack(buf, i=0):
    """Returns (object, next index); raises NeedMore when buf ends inside the object."""
    def need(n):
        if i + n > len(buf):
            raise NeedMore()
    need(1)
    b = buf[i]
    i += 1

    def take(n):
        nonlocal i
        need(n)
        v = buf[i:i + n]
        i += n
        return v

    def seq(n, is_map):
        nonlocal i
        if is_map:
            d = {}
            for _ in range(n):
                k, i = unpack(buf, i)
                v, i = unpack(buf, i)
                d[k.decode() if isinstance(k, bytes) else k] = v
            return d
        out = []
        for _ in range(n):
            v, i = unpack(buf, i)
            out.append(v)
        return out

    if b <= 0x7F:
        return b, i
    if b >= 0xE0:
        return b - 256, i
    if 0x80 <= b <= 0x8F:
        return seq(b & 15, True), i
    if 0x90 <= b <= 0x9F:
        return seq(b & 15, False), i
    if 0xA0 <= b <= 0xBF:
        return take(b & 31).decode("utf-8", "replace"), i
    fixed = {0xC0: None, 0xC2: False, 0xC3: True}
    if b in fixed:
        return fixed[b], i
    if b in (0xC4, 0xC5, 0xC6):
        n = struct.unpack(">" + "BHI"[b - 0xC4], take(1 << (b - 0xC4)))[0]
        return bytes(take(n)), i
    if b in (0xCA, 0xCB):
        return struct.unpack(">f" if b == 0xCA else ">d", take(4 if b == 0xCA else 8))[0], i
    if 0xCC <= b <= 0xCF:
        k = b - 0xCC
        return struct.unpack(">" + "BHIQ"[k], take(1 << k))[0], i
    if 0xD0 <= b <= 0xD3:
        k = b - 0xD0
        return struct.unpack(">" + "bhiq"[k], take(1 << k))[0], i
    if b in (0xD9, 0xDA, 0xDB):
        n = struct.unpack(">" + "BHI"[b - 0xD9], take(1 << (b - 0xD9)))[0]
        return take(n).decode("utf-8", "replace"), i
    if b in (0xDC, 0xDD):
        n = struct.unpack(">H" if b == 0xDC else ">I", take(2 if b == 0xDC else 4))[0]
        return seq(n, False), i
    if b in (0xDE, 0xDF):
        n = struct.unpack(">H" if b == 0xDE else ">I", take(2 if b == 0xDE else 4))[0]
        return seq(n, True), i
    raise ValueError("unsupported msgpack byte 0x%02x" % b)


class Client:
    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.eof = False

    def send(self, m):
        self.s.sendall(pack(m))

    def recv(self, deadline_s=10.0):
        """The next reply, or None on EOF / after deadline_s seconds without one."""
        end = time.time() + deadline_s
        while True:
            try:
                o, n = unpack(self.buf)
                self.buf = self.buf[n:]
                return o
            except NeedMore:
                pass
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                self.eof = True
                return None
            if not d:
                self.eof = True
                return None
            self.buf += d

    def close(self):
        self.s.close()
