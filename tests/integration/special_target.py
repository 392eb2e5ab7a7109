"""A loopback HTTP target with answers the farm's target does not give, for scatterd tests:
  /bigheaders  200 with about 100 KB of response headers
  /slow        200 after 8 s (keeps a task in flight)
Usage: special_target.py IP PORT (127.0.0.0/8 only). Stops on SIGTERM."""
import http.server
import ipaddress
import sys
import time


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b"special\n"
        if self.path.startswith("/bigheaders"):
            self.send_response(200)
            for i in range(1600):
                self.send_header("X-Filler-%04d" % i, "f" * 50)
        elif self.path.startswith("/slow"):
            time.sleep(8)
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ip, port = sys.argv[1], int(sys.argv[2])
if not ipaddress.ip_address(ip).is_loopback:
    sys.exit("special_target: loopback addresses only")
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
