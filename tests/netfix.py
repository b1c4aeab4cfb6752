"""Servers on the host's loopback for the network tests: plain and TLS HTTP origins that record
what reaches them, a git smart-HTTP server, and a tiny upstream CONNECT proxy. The sandbox
reaches them by name through the proxy's address overrides (config.json "resolve"), exactly as
a corporate split-DNS setup would."""
import http.server
import json
import os
import select
import socket
import socketserver
import ssl
import subprocess
import threading


def make_ca(dirpath, names):
    """A throwaway CA and one server certificate for `names`; returns (ca_pem, cert_pem, key_pem)."""
    ca_key, ca = os.path.join(dirpath, "ca.key"), os.path.join(dirpath, "ca.pem")
    key, csr, cert = (os.path.join(dirpath, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(dirpath, "ext.cnf")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=sbx test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={names[0]}")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "2", "-extfile", ext)
    for p in (ca, cert, key):
        os.chmod(p, 0o644)
    return ca, cert, key


class _Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Origin:
    """An HTTP(S) server that answers every request with JSON describing it, and records it."""

    def __init__(self, tls=None):
        self.requests = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = {"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                       "headers": dict(self.headers), "body": body.decode("latin-1")}
                origin.requests.append(rec)
                out = json.dumps(rec).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *a):
                pass

        self.server = _Threaded(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class GitServer:
    """git smart HTTP (git http-backend as CGI) over TLS, serving the bare repos under root."""

    def __init__(self, root, tls):
        self.root = root
        self.seen = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _cgi(self):
                path, _, query = self.path.partition("?")
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                srv.seen.append((self.command, self.path))
                env = {"GIT_PROJECT_ROOT": srv.root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": "tester",
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                       "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
                p = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
                head, _, rest = p.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.split(b"\r\n"):
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "status":
                        status = int(v.strip().split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

            do_GET = do_POST = _cgi

            def log_message(self, *a):
                pass

        self.server = _Threaded(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ConnectProxy:
    """A minimal upstream HTTP proxy (CONNECT only) that records the tunnels it opened."""

    def __init__(self, route=None):
        self.route = route  # (host, port) -> (host, port): where this proxy's network puts a name
        self.tunnels = []
        self.requests = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            self._relay(c)
        except OSError:
            c.close()

    def _relay(self, c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                c.close()
                return
            data += chunk
        line = data.split(b"\r\n")[0].decode()
        method, target, _ = line.split(" ", 2)
        if method != "CONNECT":
            # absolute-form: forward the request (one per connection) to where the name lives
            if not target.startswith("http://"):
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                c.close()
                return
            self.requests.append(f"{method} {target}")
            hostport, _, path = target[7:].partition("/")
            host, _, port = hostport.partition(":")
            host, port = self.route(host, int(port or 80)) if self.route else (host, int(port or 80))
            rest = data.split(b"\r\n", 1)[1]
            u = socket.create_connection((host, port), timeout=5)
            u.sendall(f"{method} /{path} HTTP/1.1\r\n".encode() + rest)
            while True:
                d = u.recv(65536)
                if not d:
                    break
                c.sendall(d)
            u.close()
            c.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        host, port = host.strip("[]"), int(port)
        if self.route:
            host, port = self.route(host, port)
        try:
            u = socket.create_connection((host, port), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [c, u]
        while True:
            r, _, _ = select.select(socks, [], [], 10)
            if not r:
                break
            done = False
            for s in r:
                d = s.recv(65536)
                if not d:
                    done = True
                    break
                (u if s is c else c).sendall(d)
            if done:
                break
        c.close()
        u.close()

    def close(self):
        self.stopping = True
        self.sock.close()


class AwsMock:
    """A local AWS endpoint (any service, any region) over TLS that verifies every request's
    SigV4 signature with botocore's own signer and the real keys, and refuses anything signed
    otherwise (403 SignatureDoesNotMatch). Answers Cost Explorer (JSON protocol) and
    CloudFormation (query protocol) calls with small valid responses."""

    def __init__(self, tls, akid, secret, token=None):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        self.requests = []
        self.refused = []
        mock = self

        def verify(method, path, headers, body):
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if not auth.startswith("AWS4-HMAC-SHA256 "):
                return "no SigV4 Authorization"
            parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
            key, date, region, service, _ = parts["Credential"].split("/")
            if key != akid:
                return f"unknown access key {key}"
            signed = parts["SignedHeaders"].split(";")
            lower = {k.lower(): v for k, v in headers.items()}
            if token and lower.get("x-amz-security-token") != token:
                return "missing or wrong session token"
            host = lower["host"]
            req = AWSRequest(method=method, url=f"https://{host}{path}", data=body,
                             headers={k: v for k, v in headers.items() if k.lower() in signed and k.lower() != "host"})
            req.context["timestamp"] = lower["x-amz-date"]
            signer = SigV4Auth(Credentials(akid, secret, token), service, region)
            canonical = signer.canonical_request(req)
            expected = signer.signature(signer.string_to_sign(req, canonical), req)
            if expected != parts["Signature"]:
                return "signature mismatch"
            return None

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k: v for k, v in self.headers.items()}
                why = verify(self.command, self.path, headers, body)
                rec = {"method": self.command, "path": self.path, "host": headers.get("Host"),
                       "headers": headers, "body": body.decode("latin-1"), "refused": why}
                if why:
                    mock.refused.append(rec)
                    out = json.dumps({"__type": "SignatureDoesNotMatch", "message": why}).encode()
                    self.send_response(403)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                else:
                    mock.requests.append(rec)
                    if "AWSInsightsIndexService" in headers.get("X-Amz-Target", ""):
                        out = json.dumps({"ResultsByTime": [], "DimensionValueAttributes": []}).encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "application/x-amz-json-1.1")
                    else:
                        action = dict(x.split("=", 1) for x in body.decode().split("&") if "=" in x).get("Action", "")
                        out = (f"<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
                               f"<{action}Result><Stacks/></{action}Result><ResponseMetadata><RequestId>1"
                               f"</RequestId></ResponseMetadata></{action}Response>").encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *a):
                pass

        self.server = _Threaded(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
