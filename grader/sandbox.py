"""Start a submission's worker process in isolation.

Two modes:

``bubblewrap`` (preferred): the worker runs under ``bwrap --unshare-all`` with a
private, size-limited ``/tmp`` as its only writable place, read-only binds of
exactly what Python needs (the interpreter, the virtual environment, the
system libraries, and ``grader/`` for the worker's own code), its own PID,
network, IPC and UTS namespaces, no network, packages the assignment forbids
hidden, and a seccomp filter (grader.seccomp) that forbids starting processes
and opening non-Unix sockets. It cannot see ``solutions/``, the course folder,
the gradebook, other submissions or any process outside its sandbox.

``rlimits`` (fallback, said loudly): where bubblewrap is missing or cannot
create namespaces, the worker runs as an ordinary process in a private temporary
working folder with the same resource limits and seccomp filter (no network, no
processes, no signals to others), but it can read every file the grader's user
can read.

Both modes limit the address space (memory), CPU seconds, file size and core
dumps; the test runner adds the wall-clock limits and kills the whole process
group (and with bubblewrap, the whole PID namespace).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import seccomp
from .errors import SandboxUnavailable

log = logging.getLogger("grader")

GRADER_DIR = Path(__file__).resolve().parent
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from grader._student import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)
SANDBOX_GRADER_PARENT = "/opt/grader"

FALLBACK_WARNING = """\
================================================================================
WARNING: submissions are NOT isolated by bubblewrap on this machine.
  reason: {reason}
They run with resource limits (memory, CPU, file size) and a seccomp filter
(no network, no new processes, no signals to other processes), but each one
can READ every file this user can read, including solutions/ and the
gradebook, and can WRITE where this user can write. Hidden packages are not
hidden. Grade untrusted submissions only where bubblewrap works:
  apt-get install bubblewrap   (and allow unprivileged user namespaces,
  or run the grader as root in a container)
================================================================================"""


@dataclass
class SandboxConfig:
    mode: str = "auto"  # auto | bubblewrap | rlimits
    memory_mb: int = 2048
    cpu_seconds: int = 300
    file_size_mb: int = 64
    tmp_size_mb: int = 256
    hidden_packages: list[str] = field(default_factory=list)
    python: str = sys.executable


@dataclass
class Worker:
    """A running sandboxed worker and its two protocol pipes."""

    proc: subprocess.Popen
    to_child: int
    from_child: int
    workdir: str | None = None
    started: float = field(default_factory=time.monotonic)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("sandbox process %s did not die", self.proc.pid)
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.to_child = self.from_child = -1
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def exit_description(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            if name == "SIGXCPU":
                return "it used up its CPU-time limit"
            return f"it was killed by {name}"
        if code > 128 and code - 128 in {s.value for s in signal.Signals}:
            # bubblewrap reports a child killed by a signal as 128 + signal
            return f"it was killed by {signal.Signals(code - 128).name}"
        return f"its process exited with status {code}"


def _site_dirs(python: str) -> list[Path]:
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        paths = sysconfig.get_paths()
        dirs = {paths["purelib"], paths["platlib"]}
    else:  # ask the other interpreter
        out = subprocess.run(
            [
                python,
                "-I",
                "-c",
                "import sysconfig,json;p=sysconfig.get_paths();"
                "print(json.dumps([p['purelib'],p['platlib']]))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        dirs = set(json.loads(out))
    return [Path(d) for d in sorted(dirs)]


def _python_roots(python: str) -> list[str]:
    """Folders that must be visible for ``python`` and its packages to work."""
    roots = set()
    out = subprocess.run(
        [
            python,
            "-I",
            "-c",
            "import sys,json;print(json.dumps([sys.prefix, sys.base_prefix,"
            "sys.exec_prefix, sys.base_exec_prefix]))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for p in json.loads(out):
        roots.add(os.path.realpath(p))
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(python))))
    # venv folder itself (where python is a symlink)
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(python))))
    kept = []
    for r in sorted(roots, key=len):
        if r.startswith("/usr/") or r == "/usr":
            continue
        if any(r == k or r.startswith(k + "/") for k in kept):
            continue
        kept.append(r)
    return kept


def _env(home: str, tmp: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{tmp}/.matplotlib",
        "IPYTHONDIR": f"{tmp}/.ipython",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


class Sandbox:
    """Factory of sandboxed workers with one configuration."""

    def __init__(self, cfg: SandboxConfig):
        self.cfg = cfg
        self.python = cfg.python
        self.mode, self.reason = self._choose(cfg.mode)

    # ------------------------------------------------------------------ choice
    def _choose(self, wanted: str) -> tuple[str, str]:
        if wanted not in ("auto", "bubblewrap", "rlimits"):
            raise SandboxUnavailable(f"unknown sandbox mode {wanted!r}")
        if wanted == "rlimits":
            return "rlimits", "chosen with --sandbox rlimits"
        ok, reason = probe_bubblewrap(self.python, tuple(self.cfg.hidden_packages))
        if ok:
            return "bubblewrap", ""
        if wanted == "bubblewrap":
            raise SandboxUnavailable(f"bubblewrap cannot isolate submissions here: {reason}")
        return "rlimits", reason

    @property
    def warning(self) -> str | None:
        if self.mode == "bubblewrap":
            return None
        return FALLBACK_WARNING.format(reason=self.reason)

    # ------------------------------------------------------------------ spawn
    def _rlimits(self) -> dict[str, int]:
        mb = 1024 * 1024
        return {
            "RLIMIT_AS": self.cfg.memory_mb * mb,
            "RLIMIT_CPU": int(self.cfg.cpu_seconds),
            "RLIMIT_FSIZE": self.cfg.file_size_mb * mb,
            "RLIMIT_CORE": 0,
            "RLIMIT_NOFILE": 512,
        }

    def spawn(self) -> Worker:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        keep = [req_r, resp_w]
        workdir = None
        launch: dict = {"rlimits": self._rlimits()}
        try:
            if self.mode == "bubblewrap":
                sc_r, sc_w = os.pipe()
                os.write(sc_w, seccomp.program())
                os.close(sc_w)
                keep.append(sc_r)
                argv = bwrap_argv(
                    self.python,
                    self.cfg,
                    sc_r,
                    [SANDBOX_GRADER_PARENT, str(req_r), str(resp_w)],
                )
                launch.update(argv=argv, env={}, pdeathsig=True, parent=os.getpid())
            else:
                workdir = tempfile.mkdtemp(prefix="grader-sub-")
                os.chmod(workdir, 0o700)
                argv = [
                    self.python,
                    "-I",
                    "-c",
                    BOOT,
                    str(GRADER_DIR.parent),
                    str(req_r),
                    str(resp_w),
                ]
                launch.update(
                    argv=argv,
                    env=_env(workdir, workdir),
                    cwd=workdir,
                    pdeathsig=True,
                    parent=os.getpid(),
                    seccomp=seccomp.supported(),
                )
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(GRADER_DIR / "_launch.py"), json.dumps(launch)],
                pass_fds=keep,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            for fd in keep:
                os.close(fd)
        os.set_blocking(req_w, False)
        return Worker(proc, req_w, resp_r, workdir)


def bwrap_argv(
    python: str, cfg: SandboxConfig, seccomp_fd: int | None, args: list[str]
) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bwrap is not installed")
    tmp_bytes = cfg.tmp_size_mb * 1024 * 1024
    argv = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]
    for k, v in _env("/tmp/home", "/tmp").items():
        argv += ["--setenv", k, v]
    # The private /tmp comes first: bwrap mounts in order, so a /tmp mounted
    # after the binds would hide a venv or checkout that lives under /tmp.
    argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in (
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/alternatives",
        "/etc/nsswitch.conf",
    ):
        argv += ["--ro-bind-try", f, f]
    for root in _python_roots_cached(python):
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", str(GRADER_DIR), f"{SANDBOX_GRADER_PARENT}/grader"]
    for site in _site_dirs_cached(python):
        for name in cfg.hidden_packages:
            pkg = site / name
            if pkg.is_dir():
                argv += ["--tmpfs", str(pkg), "--remount-ro", str(pkg)]
            elif (site / f"{name}.py").is_file():
                argv += ["--ro-bind", "/dev/null", str(site / f"{name}.py")]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--chdir", "/tmp/home"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [python, "-I", "-c", BOOT, *args]
    return argv


@functools.lru_cache(maxsize=8)
def _python_roots_cached(python: str) -> tuple[str, ...]:
    return tuple(_python_roots(python))


@functools.lru_cache(maxsize=8)
def _site_dirs_cached(python: str) -> tuple[Path, ...]:
    return tuple(_site_dirs(python))


@functools.lru_cache(maxsize=8)
def probe_bubblewrap(python: str, hidden: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Whether a bubblewrap sandbox starts and runs Python with NumPy here."""
    if shutil.which("bwrap") is None:
        return False, "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    cfg = SandboxConfig(hidden_packages=list(hidden))
    try:
        argv = bwrap_argv(python, cfg, None, [])
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot inspect the Python installation: {exc}"
    # replace the worker boot code by a check that also proves there is no network
    i = argv.index("-c")
    argv = argv[: i + 1] + [
        "import numpy, socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    print('network')\nexcept OSError:\n    print('isolated')"
    ]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap failed to start: {exc}"
    if res.returncode != 0 or "isolated" not in res.stdout:
        detail = (res.stderr or res.stdout).strip().splitlines()
        return False, "bwrap cannot create the sandbox: " + (detail[-1] if detail else "no output")
    return True, ""
