"""The escape probe (tests/probe/probe.c, a static binary) runs inside a sandbox and tries to get
out: host secrets, host processes, host loopback services, the network (TCP, UDP, ICMP, raw,
DNS, DNS tunnels, IPv6), mounts, nested user namespaces, ptrace, modules, devices, writes outside
the allowed places, symlinks and hard links out of the workspace, pids and memory exhaustion.
Every attempt must be blocked; the test fails on any that is not, and lists them. The sandboxes
run under a known network policy (deny-all plus one allowed name), and the attempts that reach
the proxy must be in its log with the decision that stopped them."""
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
import warnings

import pytest

from conftest import PROBE

ALLOWED = "allowed.probe.test"  # the one name the sandboxes' policy allows


def _global_addr(family):
    out = subprocess.run(["ip", family, "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout.split()
    key = "inet" if family == "-4" else "inet6"
    for i, tok in enumerate(out):
        if tok == key:
            return out[i + 1].split("/")[0]
    return None


def host_ipv4():
    return _global_addr("-4")


def host_ipv6():
    return _global_addr("-6")


def system_nameserver():
    """The first IPv4 nameserver of /etc/resolv.conf, or None."""
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                    return parts[1]
    except OSError:
        pass
    return None


def dns_query(name, qid, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def resolver_answers_fast(server, name, within=0.2):
    """Does a resolver at server:53 answer a query for name within `within` seconds?"""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(within)
    try:
        qid = secrets.randbelow(65536)
        s.sendto(dns_query(name, qid), (server, 53))
        data = s.recv(4096)
        return len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid and data[2] & 0x80
    except OSError:
        return False
    finally:
        s.close()


class FakeResolver:
    """A resolver on the host that answers every query, over UDP and TCP on one port, with a real
    looking address (203.0.113.99): if a sandbox's query reaches it, the probe sees an answer that
    its own resolver never gives."""

    ADDR = bytes([203, 0, 113, 99])

    def __init__(self, family=socket.AF_INET, bind="0.0.0.0"):
        self.stop = threading.Event()
        for _ in range(20):
            self.udp = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                self.udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.udp.bind((bind, 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(family, socket.SOCK_STREAM)
            if family == socket.AF_INET6:
                self.tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                self.tcp.bind((bind, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise RuntimeError("no port free for UDP and TCP at once")
        self.tcp.listen(16)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._udp, self._tcp)]
        for t in self.threads:
            t.start()

    @classmethod
    def answer(cls, query):
        """NOERROR with one A record, whatever was asked (the probe's queries are header and question)."""
        if len(query) < 12:
            return None
        head = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
        return head + query[12:] + struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + cls.ADDR

    def _udp(self):
        while not self.stop.is_set():
            try:
                data, addr = self.udp.recvfrom(4096)
                out = self.answer(data)
                if out:
                    self.udp.sendto(out, addr)
            except OSError:
                pass

    def _tcp(self):
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except OSError:
                continue
            try:
                c.settimeout(1)
                buf = b""
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                        n = struct.unpack(">H", buf[:2])[0]
                        out = self.answer(buf[2:2 + n])
                        buf = buf[2 + n:]
                        if out:
                            c.sendall(struct.pack(">H", len(out)) + out)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


class HostServices:
    """Things on the host that the sandbox must not reach: TCP services (IPv4, and IPv6 where the
    host has it) that greet with a banner, a UDP echo, an abstract unix socket, a fake resolver,
    and a process with a marker in its command line."""

    def __init__(self):
        self.token = secrets.token_hex(6)
        self.banner = f"SBX-HOST-SERVICE-{self.token}"
        self.stop = threading.Event()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.tcp_port = self.tcp.getsockname()[1]
        # IPv6: on every address of the host (::1 and any global one).
        self.tcp6, self.tcp6_port, self.no_ipv6 = None, None, None
        try:
            t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            t6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t6.bind(("::", 0))
            t6.listen(16)
            t6.settimeout(0.2)
            self.tcp6, self.tcp6_port = t6, t6.getsockname()[1]
        except OSError as e:
            self.no_ipv6 = f"no IPv6 TCP service on the host ({e})"
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp.settimeout(0.2)
        self.udp_port = self.udp.getsockname()[1]
        self.abstract_name = f"sbx-host-{self.token}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract_name)
        self.unix.listen(4)
        self.unix.settimeout(0.2)
        self.resolver = FakeResolver()
        self.marker = f"host-marker-{self.token}"
        # argv[0] is the marker (dash has no `exec -a`): the probe looks for it in /proc/*/cmdline.
        self.marker_proc = subprocess.Popen([self.marker, "1000"], executable=shutil.which("sleep"))
        targets = [(self._banner, self.tcp), (self._udp, None), (self._banner, self.unix)]
        if self.tcp6:
            targets.append((self._banner, self.tcp6))
        self.threads = [threading.Thread(target=f, args=(a,) if a else (), daemon=True) for f, a in targets]
        for t in self.threads:
            t.start()

    def _banner(self, sock):
        while not self.stop.is_set():
            try:
                c, _ = sock.accept()
                c.sendall(self.banner.encode() + b"\n")
                c.close()
            except OSError:
                pass

    def _udp(self):
        while not self.stop.is_set():
            try:
                data, addr = self.udp.recvfrom(2048)
                self.udp.sendto(data, addr)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        for s in (self.tcp, self.tcp6, self.udp, self.unix):
            if s:
                s.close()
        self.resolver.close()
        self.marker_proc.kill()
        self.marker_proc.wait()


@pytest.fixture
def host():
    h = HostServices()
    yield h
    h.close()


def plant_secrets(sbx, ws, token):
    """Secrets in the places an agent would look, plus links to them from the workspace."""
    paths = []
    root_secret = f"/root/sbx-secret-{token}"
    with open(root_secret, "w") as f:
        f.write("TOP-SECRET")
    os.chmod(root_secret, 0o600)
    paths.append(root_secret)
    tmp_secret = f"/tmp/sbx-host-tmp-{token}"  # host /tmp, world-readable: must simply not exist inside
    with open(tmp_secret, "w") as f:
        f.write("host tmp")
    paths.append(tmp_secret)
    home_ssh = os.path.join(sbx.pw.pw_dir, ".ssh")
    os.makedirs(home_ssh, exist_ok=True)
    key = os.path.join(home_ssh, f"id_sbxtest_{token}")
    with open(key, "w") as f:
        f.write("PRIVATE KEY")
    os.chmod(key, 0o600)
    os.chown(key, sbx.pw.pw_uid, sbx.pw.pw_gid)
    paths.append(key)
    link = os.path.join(ws, "leak")
    os.symlink(root_secret, link)
    return paths, [link]


def use_known_policy(sbx):
    """Everything denied but one name: what the probe's DNS checks and the log assertions rely on."""
    sbx.ok("policy", "init", "deny-all")
    sbx.ok("policy", "allow", "network", ALLOWED)


def run_probe(sbx, ws, sandbox, host, extra, user=None):
    probe = os.path.join(ws, "sbx-probe")
    shutil.copy(PROBE, probe)
    if sbx.user:
        os.chown(probe, sbx.pw.pw_uid, sbx.pw.pw_gid)
    args = ["exec"] + (["-u", user] if user else []) + [sandbox, probe] + extra
    p = sbx.run(*args, timeout=300)
    escapes = [line for line in p.stdout.splitlines() if line.startswith(("ESCAPE", "fail"))]
    assert p.returncode == 0 and not escapes, \
        f"escapes from the sandbox ({len(escapes)}):\n" + "\n".join(escapes) + \
        f"\n--- full output ---\n{p.stdout}{p.stderr}"
    assert p.stdout.count("\nok ") > 60, p.stdout
    return p.stdout


class NetPlan:
    """The network attempts of one probe run: names, addresses, and what the log must show."""

    def __init__(self, host):
        self.host = host
        self.denied = f"denied-{host.token}.probe.test"
        self.tunnel = f"tunnel-{host.token}.probe.test"
        self.ip = host_ipv4()
        self.ip6 = host_ipv6() if host.tcp6 else None

    def args(self):
        h = self.host
        args = ["--tcp", f"127.0.0.1:{h.tcp_port}", "--tcp-banner", h.banner,
                "--udp", f"127.0.0.1:{h.udp_port}",
                "--dns", "8.8.8.8", "--dns", "127.0.0.53", "--dns", "1.1.1.1",
                "--dns", f"127.0.0.1:{h.resolver.port}",
                "--dns-allowed", ALLOWED, "--dns-denied", self.denied, "--dns-tunnel", self.tunnel]
        if self.ip:
            # the host's own address: as a resolver (port 53 and the fake resolver's port) and
            # as the address of its services
            args += ["--tcp", f"{self.ip}:{h.tcp_port}", "--udp", f"{self.ip}:{h.udp_port}",
                     "--dns", self.ip, "--dns", f"{self.ip}:{h.resolver.port}"]
        if h.tcp6:
            args += ["--tcp6", f"[::1]:{h.tcp6_port}"]
        else:
            warnings.warn(f"IPv6 host service not tried: {h.no_ipv6}")
        if self.ip6:
            args += ["--tcp6", f"[{self.ip6}]:{h.tcp6_port}"]
        return args

    def expected_records(self):
        """(what, predicate) for the log records the run must have left."""
        want = [
            (f"the allowed name {ALLOWED} resolved by the sandbox's resolver",
             lambda r: r.get("path") == "dns" and r.get("host") == ALLOWED and r.get("decision") == "allowed"),
            (f"the denied name {self.denied} refused by the sandbox's resolver",
             lambda r: r.get("path") == "dns" and r.get("host") == self.denied and r.get("decision") == "denied"),
            (f"a tunnel query under {self.tunnel} refused by the sandbox's resolver",
             lambda r: r.get("path") == "dns" and (r.get("host") or "").endswith("." + self.tunnel)
             and r.get("decision") == "denied"),
        ]
        if self.ip:
            want.append((f"TCP to the host's {self.ip}:{self.host.tcp_port} refused by the transparent proxy",
                         lambda r: r.get("path") == "transparent" and r.get("host") == self.ip
                         and r.get("port") == self.host.tcp_port and r.get("decision") == "denied"))
        if self.ip6:
            want.append((f"TCP to the host's [{self.ip6}]:{self.host.tcp6_port} refused by the transparent proxy",
                         lambda r: r.get("path") == "transparent" and r.get("host") == self.ip6
                         and r.get("port") == self.host.tcp6_port and r.get("decision") == "denied"))
        return want


def log_records(sbx, sandbox):
    out = sbx.json("policy", "log", "--raw", "--json", "--limit", "2000")
    recs = out if isinstance(out, list) else out.get("records", [])
    return [r for r in recs if r.get("sandbox") == sandbox]


def assert_logged(sbx, sandbox, plan, timeout=10):
    """Every attempt that reached the proxy is in the log, with the decision that stopped it, and
    nothing but the allowed name was let through. The log is written off the proxy's hot path:
    give it a moment."""
    want = plan.expected_records()
    deadline = time.time() + timeout
    while True:
        recs = log_records(sbx, sandbox)
        missing = [what for what, pred in want if not any(pred(r) for r in recs)]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not missing, "not in the policy log:\n  " + "\n  ".join(missing) + \
        "\n--- the sandbox's records ---\n" + json.dumps(recs[-60:], indent=1)
    let_through = [r for r in recs if r.get("decision") == "allowed" and r.get("host") != ALLOWED]
    assert not let_through, "allowed by a deny-all policy:\n" + json.dumps(let_through, indent=1)


def probe_args(host, plan, secret_paths, links, ws, ro_ws):
    args = ["--host-pid", str(host.marker_proc.pid), "--host-marker", host.marker,
            "--abstract", host.abstract_name, "--writable", ws, "--ro", ro_ws] + plan.args()
    for s in secret_paths:
        args += ["--secret", s]
    for link in links:
        args += ["--symlink", link]
    return args


def test_probe_as_agent(sbx, host):
    ws = sbx.workspace()
    ro = sbx.workspace("readonly")
    secret_paths, links = plant_secrets(sbx, ws, host.token)
    plan = NetPlan(host)
    try:
        limited = sbx.json("diagnose", "--json")["cgroup_version"] != "none"
        use_known_policy(sbx)
        sbx.ok("create", "--name", "probe", ws, ro + ":ro", *(["-m", "256m"] if limited else []))
        sbx.ok("start", "probe")
        extra = probe_args(host, plan, secret_paths, links, ws, ro)
        extra += ["--expect-uid", "1000", "--pids", "6000"]
        extra += ["--no-write", "/usr/bin", "--no-write", "/etc", "--no-write", "/", "--no-write", "/opt",
                  "--no-write", "/var/lib", "--no-write", "/root", "--no-write", "/sys/fs/cgroup"]
        if limited:
            extra += ["--memory", str(512 << 20)]
        run_probe(sbx, ws, "probe", host, extra)
        assert_logged(sbx, "probe", plan)
    finally:
        for s in secret_paths:
            os.unlink(s)


def test_probe_as_root_inside(sbx, host):
    if sbx.json("diagnose", "--json")["idmap"] == "single":
        pytest.skip("no root inside sandboxes of this user (no subordinate ids)")
    ws = sbx.workspace()
    ro = sbx.workspace("readonly")
    secret_paths, links = plant_secrets(sbx, ws, host.token)
    plan = NetPlan(host)
    try:
        use_known_policy(sbx)
        sbx.ok("create", "--name", "probe", ws, ro + ":ro")
        sbx.ok("start", "probe")
        extra = probe_args(host, plan, secret_paths, links, ws, ro)
        extra += ["--expect-uid", "0", "--allow-root-caps", "--no-write", "/sys/fs/cgroup",
                  "--no-write", "/proc/sys/kernel"]
        run_probe(sbx, ws, "probe", host, extra, user="root")
        assert_logged(sbx, "probe", plan)
    finally:
        for s in secret_paths:
            os.unlink(s)


def test_probe_can_fail_on_the_host(host, tmp_path):
    """The probe is only worth something if it reports escapes where there is no sandbox: the
    host's services, the fake resolver (deterministic), and a real resolver when one answers."""
    if os.geteuid() != 0:
        pytest.skip("needs root: compares against the unsandboxed host as root")
    plan = NetPlan(host)
    resolver = f"127.0.0.1:{host.resolver.port}"
    args = ["--host-pid", str(host.marker_proc.pid), "--host-marker", host.marker] + plan.args()
    # This machine may have no working resolver at all (it reaches only a few registries).
    ns = system_nameserver()
    real = ns if ns and resolver_answers_fast(ns, ALLOWED) else None
    if ns and ns not in args:
        args += ["--dns", ns]
    p = subprocess.run([PROBE, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 1
    escapes = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("ESCAPE")]
    expected = ["caps-CapEff", "mount-tmpfs", "unshare-user", "socket-raw", "socket-packet", "keyctl",
                "host-process", f"tcp:127.0.0.1:{host.tcp_port}", f"udp:127.0.0.1:{host.udp_port}",
                f"dns-udp-allowed:{resolver}", f"dns-udp-denied:{resolver}", f"dns-tcp-allowed:{resolver}",
                f"dns-tcp-denied:{resolver}", f"dns-tunnel-{resolver}:{plan.tunnel}"]
    if host.tcp6:
        expected.append(f"tcp6:[::1]:{host.tcp6_port}")
    if real:
        expected.append(f"dns-udp-allowed:{real}")  # a real resolver does not know the allowed name
    for e in expected:
        assert e in escapes, (e, escapes, p.stdout)

