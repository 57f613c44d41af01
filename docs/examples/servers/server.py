"""The small HTTP app the server examples start: ``python server.py PORT [options]``.

GET /health answers 503 until the app is healthy, then 200; GET / answers 200; GET /crash makes
the process exit at once (exit 70), as an app with a fatal bug does.
"""

import argparse
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/crash":
            print("fatal error while handling /crash", flush=True)
            os._exit(70)
        warming_up = self.path == "/health" and time.monotonic() < self.server.healthy_at
        body = b"warming up\n" if warming_up else b"ok\n"
        self.send_response(503 if warming_up else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)  # to stdout: ServerProcess keeps it in the log file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--bind-after", type=float, default=0.0, help="seconds before binding")
    parser.add_argument("--healthy-after", type=float, default=0.0, help="seconds of 503s")
    args = parser.parse_args()
    time.sleep(args.bind_after)
    # HTTPServer sets SO_REUSEADDR, so it can bind a port free_port() left in TIME_WAIT.
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.healthy_at = time.monotonic() + args.healthy_after
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
