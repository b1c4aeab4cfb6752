"""A real terminal: `sbx run shell` gets a pty inside, window size changes follow, Ctrl-C and
Ctrl-Z reach the sandbox's foreground job, and the shell's exit code becomes sbx's."""
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


class Term:
    def __init__(self, sbx, *args, cwd=None, rows=24, cols=80):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd or sbx.home)
            argv = sbx.cmd(*args)
            os.execvpe(argv[0], argv, sbx.env({"TERM": "xterm"}))
        self.resize(rows, cols)
        self.buf = b""

    def resize(self, rows, cols):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, needle, timeout=15):
        end = time.time() + timeout
        while needle.encode() not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r}; got {self.buf[-2000:]!r}")
            r, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed while waiting for {needle!r}; got {self.buf[-2000:]!r}")
                self.buf += chunk
        idx = self.buf.index(needle.encode()) + len(needle)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out.decode(errors="replace")

    def wait(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 65536)
                except OSError:
                    pass
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"sbx did not exit; terminal shows {self.buf[-1000:]!r}")


def test_interactive_shell(sbx):
    ws = sbx.workspace()
    sbx.ok("policy", "init", "balanced")  # else the first run asks for it (tested in test_policy.py)
    t = Term(sbx, "run", "shell", "--name", "tty", cwd=ws, rows=30, cols=100)
    t.expect("$ ")
    t.send(b"stty size; tty; echo marker-$((6*7))\r")
    out = t.expect("marker-42")
    assert "30 100" in out and "/dev/pts/" in out
    # The window size follows the local terminal.
    t.resize(50, 160)
    os.kill(t.pid, signal.SIGWINCH)
    time.sleep(0.3)
    t.send(b"stty size\r")
    t.expect("50 160")
    # Ctrl-C interrupts the foreground job inside, not sbx.
    t.send(b"sleep 100; echo not-interrupted\r")
    time.sleep(0.5)
    t.send(b"\x03")
    t.expect("$ ")
    t.send(b"echo after-int $?\r")
    t.expect("after-int 130")
    # Ctrl-Z suspends the foreground job inside; job control works.
    t.send(b"sleep 200\r")
    time.sleep(0.5)
    t.send(b"\x1a")
    t.expect("Stopped")
    t.send(b"jobs -l | grep -c sleep; kill -9 %1; wait; echo reaped\r")
    t.expect("reaped")
    t.expect("$ ")
    # bash may still list the killed job once ("There are stopped jobs"); a second exit ends it.
    t.send(b"exit 7\r")
    time.sleep(0.5)
    try:
        t.send(b"exit 7\r")
    except OSError:
        pass
    assert t.wait() == 7


def test_no_terminal_streams_separately(sbx):
    ws = sbx.workspace()
    p = sbx.run("run", "--rm", "shell", ws, "--", "sh", "-c", "test -t 0 || echo no-tty; echo out; echo err >&2")
    assert p.returncode == 0
    assert p.stdout == "no-tty\nout\n" and p.stderr == "err\n"


def test_exec_it_gets_a_terminal(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "t2", ws)
    sbx.ok("start", "t2")
    t = Term(sbx, "exec", "-it", "t2", "sh", "-c", "tty; read line; echo got:$line; exit 4", cwd=ws)
    t.expect("/dev/pts/")
    t.send(b"hello\r")
    t.expect("got:hello")
    assert t.wait() == 4
