"""`edgereid serve` as a child process on free loopback ports: what tests, benchmarks and supervisors start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from edgereid.errors import EdgeReidError


def free_ports(count: int) -> list[int]:
    """``count`` loopback TCP ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class ServerProcess:
    """``python -m edgereid serve --config CONFIG`` (or ``--repository REPO``) on free ports, returned once it
    serves. :attr:`lines` collects its standard output, :attr:`log` its standard error (for diagnostics)."""

    def __init__(self, config: str | Path | None = None, *, repository: str | Path | None = None,
                 timeout: float = 120.0) -> None:
        if (config is None) == (repository is None):
            raise EdgeReidError("ServerProcess serves a pipeline config or a model repository",
                                expected="exactly one of config and repository")
        self.marker = "serving edgereid_pipeline" if config is not None else "serving repository"
        source = ["--config", str(config)] if config is not None else ["--repository", str(repository)]
        self.http, self.grpc, self.metrics = free_ports(3)
        self.lines: list[str] = []
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgereid", "serve", *source, "--http-port", str(self.http),
             "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        for stream, sink in ((self.process.stdout, self.lines), (self.process.stderr, self.log)):
            threading.Thread(target=lambda s=stream, out=sink: out.extend(s), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise EdgeReidError("edgereid serve did not come up", got="".join(self.lines + self.log[-40:])[-3000:],
                                    fix="read its output above")
            time.sleep(0.2)

    def ready(self) -> bool:
        """Whether serve has said it is serving (it does once Triton's models answer). Triton's log shares serve's
        standard output and interleaves with it mid-line, so the words are looked for anywhere in it."""
        return self.marker in "".join(self.lines)

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM, then wait for the exit status (killed after ``timeout`` seconds)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL to serve and everything it started (Triton and its stubs run in its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
