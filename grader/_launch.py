"""Trampoline that applies limits to itself, then becomes the sandbox.

Run as ``python -I -S _launch.py JSON`` by grader.sandbox, so that no
``preexec_fn`` runs inside the (multi-threaded) test runner after ``fork``. It
sets the resource limits, and in the fallback without bubblewrap also the
parent-death signal and the seccomp filter, then ``execve``s the command.
Standard library only.
"""

import ctypes
import importlib.util
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    spec = json.loads(sys.argv[1])
    for name, value in spec["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if spec.get("pdeathsig"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != spec["parent"]:  # the parent died before prctl
            os._exit(1)
    if spec.get("seccomp"):
        here = os.path.dirname(os.path.abspath(__file__))
        mod_spec = importlib.util.spec_from_file_location(
            "grader_seccomp", os.path.join(here, "seccomp.py")
        )
        seccomp = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(seccomp)
        seccomp.install(own_pid=os.getpid())
    if spec.get("cwd"):
        os.chdir(spec["cwd"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main()
