#!/usr/bin/env python3
"""A test receiver for Octoscope's outbound notifications.

It verifies every request's Standard Webhooks signature with the independent
`standardwebhooks` package from PyPI (not Octoscope's own signer), records
what it got as one JSON line per request, and answers as told:

  --secret whsec_...   the secret it verifies with (a request without a valid
                       signature for it is answered 401)
  --fail N             answer 503 to the first N verified requests
  --status CODE        answer CODE to every verified request (410: gone)
  --sleep SECONDS      sleep this long before answering ...
  --sleep-count N      ... the first N requests (default: all)
  --log FILE           where the JSON lines go

It listens on 127.0.0.1 on a free port and prints `listening PORT` first.
Started by shared/tests/notify_send.rs; it stops when its stdin closes.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--fail", type=int, default=0)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--sleep-count", type=int, default=1 << 30)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    webhook = Webhook(args.secret)
    lock = threading.Lock()
    counts = {"requests": 0, "verified": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                counts["requests"] += 1
                n = counts["requests"]
            if args.sleep and n <= args.sleep_count:
                time.sleep(args.sleep)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = {"n": n, "path": self.path, "headers": headers, "body": body.decode("utf-8", "replace")}
            try:
                record["payload"] = webhook.verify(body, headers)
                record["verified"] = True
            except Exception as e:  # the package's WebhookVerificationError, or a malformed header
                record["verified"] = False
                record["error"] = f"{type(e).__name__}: {e}"
            if not record["verified"]:
                status, answer = 401, b"signature not verified"
            else:
                with lock:
                    counts["verified"] += 1
                    v = counts["verified"]
                if v <= args.fail:
                    status, answer = 503, b"failing on purpose\n\x07(try again)"
                else:
                    status, answer = args.status, (b"gone" if args.status == 410 else b"ok thanks")
            record["answered"] = status
            with lock, open(args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a timeout test)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the test closes it (or dies)
    server.shutdown()


if __name__ == "__main__":
    main()
