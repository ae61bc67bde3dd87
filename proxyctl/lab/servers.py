"""The tiny servers lab pods run, and starting and stopping them.

One process per pod serves every port its endpoints list, on each of the pod's addresses:

- TCP: a client that sends ``GET``/``HEAD``/... gets an HTTP/1.0 answer; any other first line
  (the probes send ``WHO``), or silence for half a second, gets the who-am-I line;
- UDP: every datagram is answered with the who-am-I line.

The who-am-I line (also the HTTP body) is ``pod=NAME peer=IP:PORT local=IP:PORT``: the pod's name,
the address the connection came from as the pod saw it (the masquerade decision), and the
address it was accepted on (the DNAT target).

The program is this very file run with ``python -I`` inside the pod's namespace through
``ip netns exec``; it imports only the standard library, so it starts fast and needs no
installed proxyctl. It prints ``ready`` once every socket is bound. ``start`` and ``stop`` below
are what the lab uses; ``stop`` ends a process by pid only after checking that the pid is still
this program serving that lab.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
GREETING_DELAY = 0.5  # seconds a silent TCP client waits for its who-am-I line
PROGRAM = os.path.abspath(__file__)


def _addr_text(addr) -> str:
    ip, port = addr[0], addr[1]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def who_line(name: str, peer, local) -> str:
    return f"pod={name} peer={_addr_text(peer)} local={_addr_text(local)}"


def parse_who(text: str) -> dict[str, str]:
    """``pod=... peer=... local=...`` → {"pod": ..., "peer": ..., "local": ...}; {} when it is not one."""
    out = {}
    for word in text.strip().split():
        key, sep, value = word.partition("=")
        if sep and key in ("pod", "peer", "local"):
            out[key] = value
    return out if {"pod", "peer", "local"} <= set(out) else {}


@dataclass
class _Conn:
    sock: socket.socket
    peer: tuple
    local: tuple
    opened: float
    data: bytes = b""


def serve(name: str, addrs: list[str], tcp: list[int], udp: list[int]) -> None:
    sel = selectors.DefaultSelector()
    for addr in addrs:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        for port in tcp:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(512)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("listen", None))
        for port in udp:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((addr, port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("udp", None))
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the parent stops reading: never write to its pipes again
    os.dup2(devnull, 2)
    conns: dict[int, _Conn] = {}
    while True:
        now = time.monotonic()
        for c in list(conns.values()):
            if now - c.opened >= GREETING_DELAY:
                _answer(sel, conns, c, name, http=False)
        for key, _ in sel.select(timeout=0.1):
            kind, conn = key.data
            if kind == "listen":
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    s, peer = key.fileobj.accept()
                    s.setblocking(False)
                    c = _Conn(s, peer, s.getsockname(), time.monotonic())
                    conns[s.fileno()] = c
                    sel.register(s, selectors.EVENT_READ, ("conn", c))
            elif kind == "udp":
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    data, peer = key.fileobj.recvfrom(2048)
                    line = who_line(name, peer, key.fileobj.getsockname()) + "\n"
                    key.fileobj.sendto(line.encode(), peer)
            else:
                try:
                    chunk = conn.sock.recv(4096)
                except (BlockingIOError, ConnectionError):
                    chunk = b""
                if not chunk:
                    _close(sel, conns, conn)
                    continue
                conn.data += chunk
                if conn.data.startswith(HTTP_METHODS):
                    if b"\r\n\r\n" in conn.data or b"\n\n" in conn.data or len(conn.data) > 16384:
                        _answer(sel, conns, conn, name, http=True)
                elif b"\n" in conn.data or len(conn.data) > 1024:
                    _answer(sel, conns, conn, name, http=False)


def _answer(sel, conns, c: _Conn, name: str, *, http: bool) -> None:
    body = (who_line(name, c.peer, c.local) + "\n").encode()
    if http:
        head = (f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        body = head + (b"" if c.data.startswith(b"HEAD ") else body)
    with contextlib.suppress(OSError):
        c.sock.setblocking(True)
        c.sock.settimeout(1.0)
        c.sock.sendall(body)
    _close(sel, conns, c)


def _close(sel, conns, c: _Conn) -> None:
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(c.sock)
    conns.pop(c.sock.fileno(), None)
    with contextlib.suppress(OSError):
        c.sock.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="a proxyctl lab pod's server")
    p.add_argument("--lab", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--addr", action="append", default=[])
    p.add_argument("--tcp", action="append", type=int, default=[])
    p.add_argument("--udp", action="append", type=int, default=[])
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal that ran `lab up` is not for us
    serve(a.name, a.addr, a.tcp, a.udp)


# -- starting and stopping (used by the lab) ------------------------------------------------------


class ServerError(RuntimeError):
    pass


def command(lab: str, netns: str, name: str, addrs: list[str], tcp: list[int], udp: list[int]) -> list[str]:
    argv = ["ip", "netns", "exec", netns, sys.executable, "-I", PROGRAM, "--lab", lab, "--name", name]
    for a in addrs:
        argv += ["--addr", a]
    for port in tcp:
        argv += ["--tcp", str(port)]
    for port in udp:
        argv += ["--udp", str(port)]
    return argv


def start(argv: list[str]) -> subprocess.Popen:
    """Start one server (``command``'s argv) in its own session; wait for it with ``wait_ready``."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, close_fds=True)


def wait_ready(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """Block until every server printed ``ready``; ServerError naming the first that did not."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        left = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([proc.stdout], [], [], left)
        line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != "ready":
            err = ""
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
                err = err[0]
            raise ServerError(f"server {' '.join(proc.args[3:4])} did not start: "
                              f"{err or 'no ready line within ' + str(timeout) + 's'}")
        proc.stdout.close()
        proc.stderr.close()


def is_our_server(pid: int, lab: str) -> bool:
    """Whether ``pid`` is still this program serving ``lab`` (a pid can be reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    try:
        i = args.index(b"--lab")
    except ValueError:
        return False
    return PROGRAM.encode() in args and i + 1 < len(args) and args[i + 1] == lab.encode()


def stop(pids: list[int], lab: str, timeout: float = 3.0) -> list[int]:
    """End the servers ``pids`` of ``lab`` (SIGTERM, then SIGKILL after ``timeout``); the pids that
    were ours and are gone now. A pid that is not (or no longer) this lab's server is left alone."""
    ours = [pid for pid in dict.fromkeys(pids) if is_our_server(pid, lab)]
    for pid in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    left = list(ours)
    while left and time.monotonic() < deadline:
        for pid in left:
            _reap(pid)
        left = [pid for pid in left if _alive(pid)]
        if left:
            time.sleep(0.01)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        for pid in left:
            _reap(pid)
        left = [pid for pid in left if _alive(pid)]
        if not left:
            break
        time.sleep(0.01)
    return [pid for pid in ours if pid not in left]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def servers_in_netns(netns_path: str, lab: str) -> list[int]:
    """Pids of this lab's servers whose network namespace is the one pinned at ``netns_path``."""
    try:
        st = os.stat(netns_path)
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (ns.st_ino, ns.st_dev) == (st.st_ino, st.st_dev) and is_our_server(int(entry), lab):
            pids.append(int(entry))
    return pids


if __name__ == "__main__":
    main()
