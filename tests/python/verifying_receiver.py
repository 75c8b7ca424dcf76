"""A webhook receiver that verifies every delivery with the official Standard Webhooks library.

Usage: verifying_receiver.py PORT

POST /_secrets {"secrets": ["whsec_...", ...]} sets the secrets to verify with. Every other
POST is a delivery: for each secret, it is verified with standardwebhooks.Webhook(secret).verify,
and one JSON line is printed to stdout:
    {"id": <webhook-id header>, "signature": <header>, "verified": [true, false, ...]}
The receiver always answers 204, so verification results never drive retries.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

SECRETS = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global SECRETS
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/_secrets":
            SECRETS = json.loads(body)["secrets"]
            self.send_response(204)
            self.end_headers()
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for secret in SECRETS:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception:
                verified.append(False)
        line = {"id": headers.get("webhook-id"), "signature": headers.get("webhook-signature"), "verified": verified}
        print(json.dumps(line), flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(json.dumps({"listening": int(sys.argv[1])}), flush=True)
    server.serve_forever()
