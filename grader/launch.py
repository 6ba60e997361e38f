"""Start a process with its limits in force before it runs a line of its own.

The grader never sets limits in a ``preexec_fn`` (unsafe in its multi-threaded
processes): it starts ``python -I -S grader/_launch.py SPEC``, a small
standard-library trampoline that applies the ``Launch`` below to itself, then
``execve``s the command. Used for sandboxed workers (grader.sandbox) and for the
trusted test runner (grader.autograde).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .memlimit import Cgroup, MemoryCgroups

LAUNCHER = Path(__file__).resolve().parent / "_launch.py"
FAILED = 125  # the launcher's exit status when it could not apply a limit


@dataclass
class Launch:
    """What the launcher does before it becomes ``argv`` (see grader/_launch.py)."""

    argv: list[str]
    env: dict[str, str] | None = None  # None: inherit
    cwd: str | None = None
    rlimits: dict[str, int] = field(default_factory=dict)  # {"RLIMIT_AS": bytes, ...}
    memory: Cgroup | None = None  # joined before anything runs
    user: tuple[int, int] | None = None  # (uid, gid) to run as; None: stay who we are
    reveal: list[str] = field(default_factory=list)  # folders ``user`` must reach
    seccomp: bool = False  # install grader.seccomp, signals to itself only
    pdeathsig: bool = True  # killed when the grader dies

    def spec(self) -> str:
        return json.dumps(
            {
                "argv": self.argv,
                "env": self.env,
                "cwd": self.cwd,
                "rlimits": self.rlimits,
                "cgroup_procs": self.memory.procs_file if self.memory else None,
                "user": list(self.user) if self.user else None,
                "reveal": self.reveal,
                "seccomp": self.seccomp,
                "pdeathsig": self.pdeathsig,
                "parent": os.getpid(),
            }
        )


def unprivileged_user() -> tuple[int, int] | None:
    """The (uid, gid) a process started by root runs as: ``nobody``; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


class LimitedPopen(subprocess.Popen):
    """A process started through the launcher; with ``release``, its memory cgroup is
    removed as soon as ``wait`` or ``poll`` sees it has exited."""

    memory: Cgroup | None = None
    release: bool = True

    def _release(self) -> None:
        if self.release and self.returncode is not None and self.memory is not None:
            self.memory.remove()
            self.memory = None

    def poll(self):
        code = super().poll()
        self._release()
        return code

    def wait(self, timeout=None):
        code = super().wait(timeout)
        self._release()
        return code


def start(launch: Launch, release: bool = True, **popen_kwargs) -> LimitedPopen:
    """Start ``launch.argv`` through the launcher (``popen_kwargs`` go to ``Popen``).

    ``release=False`` leaves the memory cgroup to the caller (to read why the
    process died before removing it).
    """
    proc = LimitedPopen([sys.executable, "-I", "-S", str(LAUNCHER), launch.spec()], **popen_kwargs)
    proc.memory, proc.release = launch.memory, release
    return proc


def start_limited(
    argv: list[str],
    memory_mb: int,
    groups: MemoryCgroups | None,
    release: bool = True,
    **popen_kwargs,
) -> LimitedPopen:
    """Start a trusted process (the test runner) under a memory limit of ``memory_mb``.

    In a memory cgroup from ``groups`` where there is one; otherwise under
    ``RLIMIT_DATA``, which counts the heap and every private writable mapping
    (arrays, model weights) but not the address space TensorFlow reserves
    without using (an ``RLIMIT_AS`` that TensorFlow survives would be several
    times larger). The process is trusted: only its accidents are limited.
    With ``release=False`` the caller removes the cgroup (``proc.memory``), after
    reading ``proc.memory.oom_kills()`` to tell "ran out of memory" from a crash.
    """
    memory = groups.create("runner", memory_mb) if groups is not None else None
    rlimits = {} if memory else {"RLIMIT_DATA": memory_mb * 1024 * 1024}
    try:
        spec = Launch(argv=argv, memory=memory, rlimits=rlimits, pdeathsig=False)
        return start(spec, release=release, **popen_kwargs)
    except BaseException:
        if memory is not None:
            memory.remove(wait=0)
        raise
