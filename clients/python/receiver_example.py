#!/usr/bin/env python3
"""A complete receiver for Coze-compatible callback pushes (huidiao or api.coze.cn), standard library only.

It verifies the Coze signature (X-Coze-Signature = hex SHA-1 of timestamp + nonce + verify_token + raw
body), rejects pushes whose X-Coze-Timestamp is older than the retry horizon (72 hours) or more than
5 minutes ahead of its clock, also checks the Standard Webhooks signature when those headers are present
(huidiao sends them, Coze does not) with a 5-minute window on webhook-timestamp,
answers the url_verification challenge, deduplicates on header.event_id and answers 2xx at once,
leaving the real work to a background worker.

Run it:

    COZE_VERIFY_TOKEN=<the app's verify_token> python3 receiver_example.py --host 0.0.0.0 --port 8000

then set the app's callback URL to http://<this host>:8000/ (any path is accepted).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Coze documents X-Coze-Timestamp as when the event was triggered, which stays the same on every retry;
# huidiao sends each attempt's own time. A window that is safe for both must let through a genuine retry
# of a two-day-old event: replays inside it are caught by deduplication on event_id (SeenEvents).
MAX_AGE_MS = 72 * 3600 * 1000  # the default retry schedule spans ~46 hours
MAX_SKEW_MS = 5 * 60 * 1000  # clocks differ; nothing is signed in the future beyond this
MAX_BODY_BYTES = 1024 * 1024  # pushes are small; refuse anything unreasonable
REMEMBERED_EVENT_IDS = 100_000  # retries of one event can come for ~2 days; size this (or use a database)


def coze_signature(timestamp: str, nonce: str, verify_token: str, body: bytes) -> str:
    """Lower-case hex SHA-1 over timestamp ‖ nonce ‖ verify_token ‖ raw body (plain SHA-1, no separators)."""
    return hashlib.sha1(timestamp.encode() + nonce.encode() + verify_token.encode() + body).hexdigest()


def check_coze_signature(headers, verify_token: str, body: bytes, now_ms: int):
    """Returns None when the push is authentic and fresh, else the reason it is not."""
    timestamp = headers.get("X-Coze-Timestamp", "")
    nonce = headers.get("X-Coze-Nonce", "")
    signature = headers.get("X-Coze-Signature", "")
    if not (timestamp and nonce and signature):
        return "missing X-Coze-Timestamp, X-Coze-Nonce or X-Coze-Signature"
    try:
        sent_ms = int(timestamp)
    except ValueError:
        return "X-Coze-Timestamp is not milliseconds since the epoch"
    if not -MAX_SKEW_MS <= now_ms - sent_ms <= MAX_AGE_MS:
        return "X-Coze-Timestamp is outside the freshness window"
    expected = coze_signature(timestamp, nonce, verify_token, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return "X-Coze-Signature does not match"
    return None


def check_standard_webhooks(headers, verify_token: str, body: bytes, now_ms: int):
    """Standard Webhooks check: the key is the verify token's UTF-8 bytes (the decoded form of the
    secret "whsec_" + base64(verify_token)). Returns None when absent or valid, else the reason."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id or timestamp or signatures):
        return None  # api.coze.cn does not send these; the Coze signature above is the one that counts
    if not (msg_id and timestamp and signatures):
        return "incomplete webhook-* headers"
    try:
        sent_s = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not seconds since the epoch"
    if abs(now_ms - sent_s * 1000) > MAX_SKEW_MS:  # huidiao signs it afresh on every attempt
        return "webhook-timestamp is outside the freshness window"
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(verify_token.encode(), signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected.encode(), value.encode()):
            return None
    return "webhook-signature does not match"


class SeenEvents:
    """The event_ids already accepted, oldest forgotten first. In production keep them in your
    database (for at least MAX_AGE_MS, as long as a push may be accepted) and record the id in the
    same transaction as the work the event causes."""

    def __init__(self, capacity: int = REMEMBERED_EVENT_IDS):
        self.capacity = capacity
        self.ids = OrderedDict()
        self.lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        """Records event_id; True the first time it is seen, False for a retry or a replay."""
        with self.lock:
            if event_id in self.ids:
                self.ids.move_to_end(event_id)
                return False
            self.ids[event_id] = None
            if len(self.ids) > self.capacity:
                self.ids.popitem(last=False)
            return True


def answer_for(document: dict) -> dict:
    """The JSON answered with HTTP 200. Only bot.published to a connector (channel) app carries
    something: the channel's review (audit_status 1 = in review, 2 = approved, 3 = rejected).
    Every bot.published push must be answered within 10 s, every other push within 3 s."""
    header = document["header"]
    if header["event_type"] == "bot.published" and "connector_id" in header:
        return {"audit": {"audit_status": 1, "reason": "received, in review"}}
    return {}


class CallbackServer(ThreadingHTTPServer):
    """One callback URL for one app: verify_token is that app's token. Accepted events go to inbox."""

    daemon_threads = True

    def __init__(self, address, verify_token: str):
        super().__init__(address, CallbackHandler)
        self.verify_token = verify_token
        self.seen = SeenEvents()
        self.inbox = queue.Queue()


class CallbackHandler(BaseHTTPRequestHandler):
    server: CallbackServer

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.reply(411, {"error": "Content-Length required"})
        if not 0 <= length <= MAX_BODY_BYTES:
            return self.reply(413, {"error": "body too large"})
        body = self.rfile.read(length)  # the raw bytes: verify these, never a re-serialised copy

        now_ms = int(time.time() * 1000)
        token = self.server.verify_token
        reason = check_coze_signature(self.headers, token, body, now_ms) or check_standard_webhooks(
            self.headers, token, body, now_ms
        )
        if reason:
            return self.reply(401, {"error": reason})

        try:
            document = json.loads(body)
            header = document["header"]
            event_type = header["event_type"]
            event_id = header["event_id"]
            challenge = document["event"]["challenge"] if event_type == "url_verification" else None
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": "not a callback push"})

        if event_type == "url_verification":
            return self.reply(200, {"challenge": challenge})

        if self.server.seen.first_time(event_id):
            self.server.inbox.put(document)  # hand off; do the slow work outside the request
        self.reply(200, answer_for(document))  # a retry gets 2xx too, so the sender stops retrying

    def reply(self, status: int, body: dict):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format, *args):
        pass  # keep stderr quiet; log what you need in the worker


def work(inbox: queue.Queue):
    """Processes accepted events one by one. Replace the print with your own handling."""
    while True:
        document = inbox.get()
        header = document["header"]
        print(f"{header['event_type']} {header['event_id']} {json.dumps(document['event'], ensure_ascii=False)}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    verify_token = os.environ.get("COZE_VERIFY_TOKEN")
    if not verify_token:
        sys.exit("set COZE_VERIFY_TOKEN to the app's verify_token")

    server = CallbackServer((args.host, args.port), verify_token)
    threading.Thread(target=work, args=(server.inbox,), daemon=True).start()
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
