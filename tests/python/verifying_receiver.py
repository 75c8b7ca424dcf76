"""A webhook receiver that verifies every delivery with the official Standard Webhooks library.

Usage: verifying_receiver.py PORT [CERT_PEM KEY_PEM]

With CERT_PEM and KEY_PEM it serves HTTPS (Python's ssl module) with that certificate and key;
otherwise plain HTTP. POST /_secrets {"secrets": ["whsec_...", ...]} sets the secrets to verify
with. Every other POST is a delivery: for each secret, it is verified with
standardwebhooks.Webhook(secret).verify, and one JSON line is printed to stdout:
    {"id": <webhook-id header>, "signature": <header>, "verified": [true, false, ...], "tls": <version or null>}
The receiver always answers 204, so verification results never drive retries.
"""

import json
import ssl
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
        tls = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else None
        line = {
            "id": headers.get("webhook-id"),
            "signature": headers.get("webhook-signature"),
            "verified": verified,
            "tls": tls,
        }
        print(json.dumps(line), flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if len(sys.argv) == 4:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"listening": port}), flush=True)
    server.serve_forever()
