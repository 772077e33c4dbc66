#!/usr/bin/env python3
"""One publish/subscribe round trip through Herald, with nothing but the standard library.

A WebSocket client subscribes on HERALD_WS_URL (ws://host:port/path), a message is published
through HERALD_API_URL (http://host:port, maybe another node), and the client must receive it
within 10 seconds. Exit 0 on success, 1 with the reason otherwise.

Optional: HERALD_API_KEY (bearer key of the HTTP API), HERALD_JWT_HS256_SECRET (mints a
connection token for user "helm-test"), HERALD_TOKEN (a ready token), HERALD_CHANNEL.
Used by the Helm chart's `helm test` and by deploy/local-cluster.sh's test.
"""
import base64, hashlib, hmac, json, os, socket, struct, sys, time, urllib.parse, urllib.request, uuid


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def token(secret):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": "helm-test", "exp": int(time.time()) + 300}).encode())
    signing = header + b"." + claims
    signature = b64(hmac.new(secret.encode(), signing, hashlib.sha256).digest())
    return (signing + b"." + signature).decode()


class WebSocket:
    def __init__(self, url, bearer):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws":
            raise SystemExit(f"only ws:// URLs: {url}")
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{auth}\r\n"
        )
        self.sock.sendall(request.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("the gateway closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status + " ":
            raise SystemExit(f"upgrade refused: {status}")

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the gateway closed the connection")
            self.buf += chunk

    def recv(self):
        """The next text message, as JSON (pings are answered)."""
        while True:
            self._need(2)
            opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            at = 2
            if n == 126:
                self._need(4)
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            self._need(at + n)
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise SystemExit(f"the gateway closed the connection with {code}")
            if opcode == 9:
                mask = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask
                                  + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def main():
    ws_url, api_url = os.environ["HERALD_WS_URL"], os.environ["HERALD_API_URL"].rstrip("/")
    channel = os.environ.get("HERALD_CHANNEL", "herald-test-" + uuid.uuid4().hex[:12])
    bearer = os.environ.get("HERALD_TOKEN") or None
    secret = os.environ.get("HERALD_JWT_HS256_SECRET")
    if not bearer and secret:
        bearer = token(secret)
    ws = WebSocket(ws_url, bearer)
    ws.send({"id": 1, "subscribe": {"channels": [channel]}})
    deadline = time.time() + 10
    while True:
        reply = ws.recv()
        if reply.get("id") == 1:
            break
    if reply.get("ok", {}).get("subscribed") != [channel]:
        raise SystemExit(f"subscribe failed: {reply}")
    marker = uuid.uuid4().hex
    body = json.dumps({"channel": channel, "data": {"roundtrip": marker}}).encode()
    request = urllib.request.Request(api_url + "/v1/publish", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if os.environ.get("HERALD_API_KEY"):
        request.add_header("Authorization", "Bearer " + os.environ["HERALD_API_KEY"])
    with urllib.request.urlopen(request, timeout=10) as answer:
        published = json.load(answer)
    while time.time() < deadline:
        message = ws.recv()
        push = message.get("push")
        if push and push.get("data", {}).get("roundtrip") == marker:
            print(f"round trip OK: {channel} offset {push.get('offset')} (published as {published})")
            return 0
    raise SystemExit("the publication did not arrive within 10 s")


if __name__ == "__main__":
    sys.exit(main())
