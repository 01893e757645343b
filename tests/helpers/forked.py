"""``python train.py <args>`` as a real process, started in a fraction of a second: a server process imports
train.py's dependencies once and forks a child per command (the child runs train.py as ``__main__``, with its
own argv, working folder, environment and output files). The child is a real process: it can be killed with
SIGKILL or stopped with SIGTERM, and its exit status is that of ``python train.py``.

The server never runs a torch operation before forking (a forked child would inherit a thread pool it cannot
use), and children are reaped by the kernel (SIGCHLD ignored), so each child writes its exit status to a file
as its last act (after the exit handlers of what it ran); a child that died without one was killed by a signal.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.config import ROOT

SERVER = r"""
import atexit, json, os, runpy, signal, sys, traceback
import hydra, lightning, omegaconf, torch  # the seconds of start-up every child would otherwise pay
import dcgan_lit.run.fit, dcgan_lit.callbacks, dcgan_lit.data, dcgan_lit.metrics
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = out if job["stderr"] == job["stdout"] else os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull)
    sys.argv = [job["script"], *job["args"]]
    code = 0

    def write_status():  # registered before anything train.py registers: run last, after their clean-up
        with open(job["status"] + ".tmp", "w") as f:
            f.write(str(code))
        os.replace(job["status"] + ".tmp", job["status"])

    atexit.register(write_status)
    try:
        runpy.run_path(job["script"], run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.exit(code)  # the interpreter's own exit: atexit handlers (W&B, joblib's workers) run as in a process
"""

_server: subprocess.Popen | None = None


def server() -> subprocess.Popen:
    """This test process's fork server (started on first use, stopped at exit)."""
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert _server.stdout.readline().strip() == "ready", "the fork server did not start"
        atexit.register(_server.kill)
    return _server


class ForkedRun:
    """A ``subprocess.Popen``-like handle of one forked ``python train.py`` (poll, wait, send_signal)."""

    def __init__(self, args: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path) -> None:
        self.stdout_path, self.stderr_path = Path(stdout), Path(stderr)
        self.status = self.stdout_path.with_name(self.stdout_path.name + ".status")
        self.status.unlink(missing_ok=True)
        self.signalled: int | None = None
        self.returncode: int | None = None
        job = {
            "script": str(ROOT / "train.py"),
            "args": [str(a) for a in args],
            "cwd": str(cwd),
            "env": {k: str(v) for k, v in env.items()},
            "stdout": str(stdout),
            "stderr": str(stderr),
            "status": str(self.status),
        }
        process = server()
        process.stdin.write(json.dumps(job) + "\n")
        process.stdin.flush()
        self.pid = int(process.stdout.readline())

    def poll(self) -> int | None:
        if self.returncode is None:
            if self.status.is_file():
                self.returncode = int(self.status.read_text())
            elif not alive(self.pid):
                self.returncode = -(self.signalled or signal.SIGKILL)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self.signalled = sig
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_train(args: list[str], cwd: Path, log: Path, env_extra: dict | None = None) -> ForkedRun:
    """``python train.py <args>`` in ``cwd``, stdout and stderr both into ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return ForkedRun(args, cwd, env, log, log)


def run_train(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: float = 600):
    """``python train.py <args>`` to the end; a ``subprocess.CompletedProcess`` with its output as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    folder = Path(cwd)
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out, err = folder / f".train-{stamp}.out", folder / f".train-{stamp}.err"
    run = ForkedRun(args, cwd, env, out, err)
    try:
        code = run.wait(timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        raise
    result = subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())
    for path in (out, err, run.status):
        path.unlink(missing_ok=True)
    return result
