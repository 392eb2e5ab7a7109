"""A loopback HTTP target that answers every request, whatever its method, with 200 and a JSON
body describing what it received: {"method", "path", "headers": {lower-case name: value},
"body_b64"}, so a test can see what reached the target through scatterd and a proxy.
Usage: echo_target.py IP PORT (127.0.0.0/8 only). Stops on SIGTERM."""
import base64
import http.server
import ipaddress
import json
import sys


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        out = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_b64": base64.b64encode(body).decode(),
        }).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def __getattr__(self, name):
        # http.server looks up do_<METHOD>: every method is echoed
        if name.startswith("do_"):
            return self.echo
        raise AttributeError(name)


ip, port = sys.argv[1], int(sys.argv[2])
if not ipaddress.ip_address(ip).is_loopback:
    sys.exit("echo_target: loopback addresses only")
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
