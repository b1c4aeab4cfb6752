"""The escape probe (tests/probe/probe.c, a static binary) runs inside a sandbox and tries to get
out: host secrets, host processes, host loopback services, the network (TCP, UDP, ICMP, raw,
DNS, IPv6), mounts, nested user namespaces, ptrace, modules, devices, writes outside the allowed
places, symlinks and hard links out of the workspace, pids and memory exhaustion. Every attempt
must be blocked; the test fails on any that is not, and lists them."""
import os
import secrets
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import PROBE


def host_ipv4():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout.split()
    for i, tok in enumerate(out):
        if tok == "inet":
            return out[i + 1].split("/")[0]
    return None


class HostServices:
    """Things on the host that the sandbox must not reach."""

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
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp.settimeout(0.2)
        self.udp_port = self.udp.getsockname()[1]
        self.abstract_name = f"sbx-host-{self.token}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract_name)
        self.unix.listen(4)
        self.unix.settimeout(0.2)
        self.sleeper = subprocess.Popen(["sleep", "1000", f"host-marker-{self.token}"][0:2] + [],
                                        stdout=subprocess.DEVNULL)
        self.marker_proc = subprocess.Popen(["sh", "-c", f"exec -a host-marker-{self.token} sleep 1000"])
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._tcp, self._udp, self._unix)]
        for t in self.threads:
            t.start()

    def _tcp(self):
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
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

    def _unix(self):
        while not self.stop.is_set():
            try:
                c, _ = self.unix.accept()
                c.sendall(self.banner.encode())
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        for s in (self.tcp, self.udp, self.unix):
            s.close()
        for p in (self.sleeper, self.marker_proc):
            p.kill()
            p.wait()


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


def run_probe(sbx, ws, sandbox, host, extra, user=None):
    probe = os.path.join(ws, "sbx-probe")
    shutil.copy(PROBE, probe)
    if sbx.user:
        os.chown(probe, sbx.pw.pw_uid, sbx.pw.pw_gid)
    args = ["exec"] + (["-u", user] if user else []) + [sandbox, probe] + extra
    p = sbx.run(*args, timeout=300)
    escapes = [line for line in p.stdout.splitlines() if line.startswith(("ESCAPE", "fail"))]
    assert p.returncode == 0 and not escapes, \
        f"escapes from the sandbox ({len(escapes)}):\n" + "\n".join(escapes) + f"\n--- full output ---\n{p.stdout}{p.stderr}"
    assert p.stdout.count("\nok ") > 60, p.stdout
    return p.stdout


def probe_args(host, secret_paths, links, ws, ro_ws):
    args = ["--host-pid", str(host.marker_proc.pid), "--host-marker", f"host-marker-{host.token}",
            "--tcp", f"127.0.0.1:{host.tcp_port}", "--tcp-banner", host.banner,
            "--udp", f"127.0.0.1:{host.udp_port}", "--abstract", host.abstract_name,
            "--dns", "8.8.8.8", "--dns", "127.0.0.53", "--dns", "1.1.1.1",
            "--writable", ws, "--ro", ro_ws]
    ip = host_ipv4()
    if ip:
        args += ["--tcp", f"{ip}:{host.tcp_port}", "--udp", f"{ip}:{host.udp_port}"]
    for s in secret_paths:
        args += ["--secret", s]
    for link in links:
        args += ["--symlink", link]
    return args


def test_probe_as_agent(sbx, host):
    ws = sbx.workspace()
    ro = sbx.workspace("readonly")
    secret_paths, links = plant_secrets(sbx, ws, host.token)
    try:
        limited = sbx.json("diagnose", "--json")["cgroup_version"] != "none"
        sbx.ok("create", "--name", "probe", ws, ro + ":ro", *(["-m", "256m"] if limited else []))
        sbx.ok("start", "probe")
        extra = probe_args(host, secret_paths, links, ws, ro)
        extra += ["--expect-uid", "1000", "--pids", "6000"]
        extra += ["--no-write", "/usr/bin", "--no-write", "/etc", "--no-write", "/", "--no-write", "/opt",
                  "--no-write", "/var/lib", "--no-write", "/root", "--no-write", "/sys/fs/cgroup"]
        if limited:
            extra += ["--memory", str(512 << 20)]
        run_probe(sbx, ws, "probe", host, extra)
    finally:
        for s in secret_paths:
            os.unlink(s)


def test_probe_as_root_inside(sbx, host):
    if sbx.json("diagnose", "--json")["idmap"] == "single":
        pytest.skip("no root inside sandboxes of this user (no subordinate ids)")
    ws = sbx.workspace()
    ro = sbx.workspace("readonly")
    secret_paths, links = plant_secrets(sbx, ws, host.token)
    try:
        sbx.ok("create", "--name", "probe", ws, ro + ":ro")
        sbx.ok("start", "probe")
        extra = probe_args(host, secret_paths, links, ws, ro)
        extra += ["--expect-uid", "0", "--allow-root-caps", "--no-write", "/sys/fs/cgroup",
                  "--no-write", "/proc/sys/kernel"]
        run_probe(sbx, ws, "probe", host, extra, user="root")
    finally:
        for s in secret_paths:
            os.unlink(s)


def test_probe_can_fail_on_the_host():
    """The probe is only worth something if it reports escapes where there is no sandbox."""
    if os.geteuid() != 0:
        pytest.skip("needs root: compares against the unsandboxed host as root")
    p = subprocess.run([PROBE, "--tcp", "127.0.0.1:1"], capture_output=True, text=True, timeout=300,
                       cwd=tempfile_dir())
    assert p.returncode == 1
    escapes = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("ESCAPE")]
    for expected in ("caps-CapEff", "mount-tmpfs", "unshare-user", "socket-raw", "socket-packet", "keyctl"):
        assert any(e.startswith(expected) for e in escapes), (expected, escapes)


def tempfile_dir():
    import tempfile
    return tempfile.mkdtemp(prefix="probe-host-")
