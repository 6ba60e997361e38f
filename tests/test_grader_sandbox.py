"""grader.sandbox and grader.seccomp: what a submission's process can and cannot do."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from grader import sandbox, seccomp, wire
from grader.config import REPO_ROOT
from grader.errors import SandboxUnavailable

BWRAP_OK, BWRAP_REASON = sandbox.probe_bubblewrap(sandbox.SandboxConfig().python)
needs_bwrap = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap unusable: {BWRAP_REASON}")


def run_cells(mode: str, cells: dict[str, str], names=(), memory_mb: int = 1024, hidden=()):
    """Run cells in a fresh sandboxed worker; return ({cell: done-message}, {name: value})."""
    box = sandbox.Sandbox(
        sandbox.SandboxConfig(mode=mode, memory_mb=memory_mb, hidden_packages=list(hidden))
    )
    worker = box.spawn()
    deadline = time.monotonic() + 120
    try:
        assert wire.recv(worker.from_child, deadline)["ev"] == "hello"
        job = {"cells": [{"id": k, "source": v} for k, v in cells.items()]}
        wire.send(worker.to_child, job, deadline)
        done = {}
        while True:
            msg = wire.recv(worker.from_child, deadline)
            if msg["ev"] == "done":
                done[msg["cell"]] = msg
            elif msg["ev"] == "ready":
                break
        values = {}
        for name in names:
            wire.send(worker.to_child, {"op": "get", "name": name}, deadline)
            values[name] = wire.recv(worker.from_child, deadline).get("value")
        return done, values
    finally:
        worker.kill()


PROBES = {
    "fork": (
        "import os\ntry:\n    os.fork()\n    fork = 'allowed'\n"
        "except OSError:\n    fork = 'blocked'"
    ),
    "net": (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    net = 'allowed'\nexcept OSError:\n    net = 'blocked'"
    ),
    "unix": (
        "import socket\ntry:\n    socket.socket(socket.AF_UNIX)\n    unix = 'allowed'\n"
        "except OSError:\n    unix = 'blocked'\n"
        "import asyncio\nloop = asyncio.new_event_loop(); loop.close()  # socketpair works"
    ),
    "thread": (
        "import threading\nbox = []\nt = threading.Thread(target=lambda: box.append(1))\n"
        "t.start(); t.join()\nthread = 'ran' if box else 'no'"
    ),
    "mem": (
        "import numpy as np\ntry:\n    np.ones((100_000, 100_000))\n    mem = 'allocated'\n"
        "except MemoryError:\n    mem = 'MemoryError'"
    ),
    "tmp": "open('/tmp/scratch.txt', 'w').write('ok')\ntmp = open('/tmp/scratch.txt').read()",
}


def test_seccomp_program_is_built_for_this_machine():
    if not seccomp.supported():
        pytest.skip("no seccomp filter for this architecture")
    prog = seccomp.program(own_pid=1234)
    assert len(prog) % 8 == 0 and 10 < len(prog) // 8 < 255


@pytest.mark.parametrize("mode", ["rlimits", pytest.param("bubblewrap", marks=needs_bwrap)])
def test_submission_cannot_fork_connect_or_exhaust_memory(mode):
    if mode == "rlimits" and not seccomp.supported():
        pytest.skip("no seccomp filter for this architecture")
    done, v = run_cells(mode, PROBES, names=("fork", "net", "unix", "thread", "mem", "tmp"))
    assert all(m["ok"] for m in done.values()), done
    assert v == {
        "fork": "blocked",
        "net": "blocked",
        "unix": "blocked",
        "thread": "ran",
        "mem": "MemoryError",
        "tmp": "ok",
    }


def test_fallback_cannot_signal_the_grader():
    if not seccomp.supported():
        pytest.skip("no seccomp filter for this architecture")
    cells = {
        "kill": (
            "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGTERM)\n"
            "    kill = 'sent'\nexcept OSError:\n    kill = 'blocked'\n"
            "try:\n    os.kill(-1, signal.SIGKILL)\n    killall = 'sent'\n"
            "except OSError:\n    killall = 'blocked'"
        )
    }
    _, v = run_cells("rlimits", cells, names=("kill", "killall"))
    assert v == {"kill": "blocked", "killall": "blocked"}


@needs_bwrap
def test_bubblewrap_hides_the_repository_course_and_forbidden_packages(tmp_path):
    course = tmp_path / "course"
    (course / "gradebook.db").parent.mkdir()
    (course / "gradebook.db").write_text("secret")
    cells = {
        "look": (
            "import os\n"
            f"repo = os.path.exists({str(REPO_ROOT / 'solutions')!r})\n"
            f"course = os.path.exists({str(course)!r})\n"
            "home = os.getcwd()\n"
            "procs = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
        ),
        "scipy": "try:\n    import scipy.signal\n    scipy = 'imported'\nexcept ImportError:\n"
        "    scipy = 'hidden'",
        "course_code": "try:\n    import cnn_course.conv_numpy\n    course_code = 'imported'\n"
        "except ImportError:\n    course_code = 'hidden'",
        "ro": (
            "try:\n    open('/usr/evil', 'w')\n    ro = 'wrote'\n"
            "except OSError:\n    ro = 'read-only'"
        ),
    }
    _, v = run_cells(
        "bubblewrap",
        cells,
        names=("repo", "course", "home", "procs", "scipy", "course_code", "ro"),
        hidden=("scipy", "cnn_course"),
    )
    assert v["repo"] is False and v["course"] is False
    assert v["home"] == "/tmp/home"
    assert len(v["procs"]) <= 3, f"sees other processes: {v['procs']}"
    assert v["scipy"] == "hidden"
    assert v["course_code"] == "hidden", "the chapters' reference code answers A1 and A2"
    assert v["ro"] == "read-only"


def test_unknown_mode_is_refused():
    with pytest.raises(SandboxUnavailable, match="unknown sandbox mode"):
        sandbox.Sandbox(sandbox.SandboxConfig(mode="docker"))


def test_required_bubblewrap_missing_is_an_error_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    sandbox.probe_bubblewrap.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="not installed"):
            sandbox.Sandbox(sandbox.SandboxConfig(mode="bubblewrap"))
        box = sandbox.Sandbox(sandbox.SandboxConfig(mode="auto"))
        assert box.mode == "rlimits"
        assert "NOT isolated by bubblewrap" in box.warning
        assert "apt-get install bubblewrap" in box.warning
    finally:
        sandbox.probe_bubblewrap.cache_clear()


def test_worker_is_killed_with_its_process_group():
    box = sandbox.Sandbox(sandbox.SandboxConfig(mode="rlimits"))
    worker = box.spawn()
    pid = worker.proc.pid
    worker.kill()
    assert worker.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
