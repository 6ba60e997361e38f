"""Start a submission's worker process in isolation.

Two modes:

``bubblewrap`` (preferred): the worker runs under ``bwrap`` in its own user,
PID, network, IPC, UTS, cgroup and mount namespaces, as an unprivileged user
with no capabilities and no way to make more namespaces. Its file system is a
private, size-limited ``/tmp`` (the only writable place) and read-only binds of
exactly what Python needs (``/usr``, the interpreter, the virtual environment,
``grader/`` for the worker's own code); every mount, ``/proc``, ``/dev`` and
``/`` included, is read-only and cannot be remounted. Of the installed packages
it sees only those the assignment allows (grader.site_view). A seccomp
allowlist (grader.seccomp) forbids starting processes, sockets, every mount
and namespace call, and ``memfd_create``. It cannot see ``solutions/``, the
course folder, the gradebook, other submissions or any process outside its
sandbox.

``rlimits`` (fallback, said loudly): where bubblewrap is missing or does not
hold, the worker runs as an ordinary process in a private temporary working
folder with the same limits and seccomp filter, but it can read every file its
user can read, and every package is importable.

When the grader runs as root, the worker never does: the launcher
(grader._launch) switches to ``nobody`` before bubblewrap or the fallback
starts, so even a kernel bug in a namespace would leave it an unprivileged
user. Both modes limit memory (a memory cgroup per worker where the machine
allows it, grader.memlimit, and an address-space limit), CPU seconds, file size
and core dumps; the test runner adds the wall-clock limits and kills the whole
process group (with bubblewrap, the whole PID namespace).
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

from . import launch, memlimit, seccomp
from .errors import ConfigError, SandboxUnavailable
from .memlimit import Cgroup
from .site_view import SiteView, UnknownPackage, site_view

log = logging.getLogger("grader")

GRADER_DIR = Path(__file__).resolve().parent
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from grader._student import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)
PROBE_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from grader._probe import main; main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], "
    "sys.argv[5] == 'scan')"
)
SANDBOX_GRADER_PARENT = "/opt/grader"
SYSTEM_FOLDERS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/nsswitch.conf",
)

FALLBACK_WARNING = """\
================================================================================
WARNING: submissions are NOT isolated by bubblewrap on this machine.
  reason: {reason}
They run {who} with resource limits (memory, CPU, file size) and a seccomp
filter (no network, no new processes, no mounts or namespaces, no signals to
other processes), but each one can READ every file {reader} can read,
including solutions/ and the gradebook where those are readable, and every
installed package is importable. Grade untrusted submissions only where
bubblewrap works (`grader check-sandbox` says what is missing):
  apt-get install bubblewrap   (and allow unprivileged user namespaces:
  the grader runs bubblewrap as an unprivileged user, even as root)
================================================================================"""


@dataclass
class SandboxConfig:
    mode: str = "auto"  # auto | bubblewrap | rlimits
    memory_mb: int = 2048  # the memory cgroup's limit (everything the worker holds)
    address_space_mb: int = 0  # RLIMIT_AS; 0: the same as memory_mb
    cpu_seconds: int = 300
    file_size_mb: int = 64
    tmp_size_mb: int = 256
    packages: list[str] = field(default_factory=list)  # importable, with dependencies
    hidden_packages: list[str] = field(default_factory=list)  # never visible
    runner_memory_mb: int = 4096  # the trusted test runner's own limit (grader.autograde)
    python: str = sys.executable

    @classmethod
    def from_settings(cls, st, **overrides) -> SandboxConfig:
        """The sandbox part of GraderSettings ``st``; ``overrides`` that are None are ignored."""
        cfg = cls(
            mode=st.sandbox,
            memory_mb=st.memory_mb,
            address_space_mb=st.address_space_mb,
            packages=list(st.sandbox_packages),
            hidden_packages=list(st.hidden_packages),
            runner_memory_mb=st.runner_memory_mb,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg


@dataclass
class Worker:
    """A running sandboxed worker and its two protocol pipes."""

    proc: subprocess.Popen
    to_child: int
    from_child: int
    workdir: str | None = None
    memory: Cgroup | None = None
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
        if self.memory is not None:
            self.memory.remove()
            self.memory = None
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
        if self.memory is not None and self.memory.oom_kills():
            mb = self.memory.limit_bytes // (1024 * 1024)
            return f"it ran out of memory (its limit is {mb} MB) and was killed"
        if code == launch.FAILED:
            return "the grader could not start its sandbox"
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
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
        "KERAS_HOME": f"{tmp}/.keras",
        "PYTHONHASHSEED": "0",
    }


@functools.lru_cache(maxsize=1)
def _bwrap_options() -> frozenset[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return frozenset()
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(w for w in text.split() if w.startswith("--"))


# verified (mode, python, packages, hidden) -> list of sandbox_check.Check, once per process
_VERIFIED: dict[tuple, list] = {}


class Sandbox:
    """Factory of sandboxed workers with one configuration."""

    def __init__(self, cfg: SandboxConfig, choose: bool = True):
        """Check the sandbox here and choose the mode (unless ``choose`` is False)."""
        if cfg.mode not in ("auto", "bubblewrap", "rlimits"):
            raise SandboxUnavailable(f"unknown sandbox mode {cfg.mode!r}")
        self.cfg = cfg
        self.python = cfg.python
        self.user = launch.unprivileged_user()
        self.groups, self.memory_reason = memlimit.available()
        self.mode, self.reason = self._choose(cfg.mode) if choose else ("", "not chosen")

    # ------------------------------------------------------------------ choice
    def checks(self, mode: str) -> list:
        """What holds in ``mode`` here, tried from inside a real sandbox (cached)."""
        from .sandbox_check import Check, run_checks

        if mode == "bubblewrap" and shutil.which("bwrap") is None:
            return [Check("starts", False, "bwrap is not installed")]
        key = (mode, self.python, tuple(self.cfg.packages), tuple(self.cfg.hidden_packages))
        if key not in _VERIFIED:
            _VERIFIED[key] = run_checks(self, mode)
        return _VERIFIED[key]

    def _choose(self, wanted: str) -> tuple[str, str]:
        from .sandbox_check import failures

        if wanted != "rlimits":
            problem = self.bubblewrap_problem()
            if problem is None:
                return "bubblewrap", ""
            if wanted == "bubblewrap":
                raise SandboxUnavailable(f"bubblewrap cannot isolate submissions here: {problem}")
            reason = problem
        else:
            reason = "chosen with --sandbox rlimits"
        failed = failures(self.checks("rlimits"), "rlimits")
        if failed:
            raise SandboxUnavailable(
                "refusing to grade: even the fallback sandbox does not hold here ("
                + "; ".join(failed)
                + ")"
            )
        return "rlimits", reason

    def bubblewrap_problem(self) -> str | None:
        """None if bubblewrap holds here, else what is wrong."""
        from .sandbox_check import failures

        if shutil.which("bwrap") is None:
            return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        failed = failures(self.checks("bubblewrap"), "bubblewrap")
        return "; ".join(failed) if failed else None

    @property
    def warning(self) -> str | None:
        return None if self.mode == "bubblewrap" else self.fallback_warning(self.reason)

    def fallback_warning(self, reason: str) -> str:
        """The loud warning of the fallback, saying why bubblewrap is not used."""
        who, reader = ("as user nobody", "nobody") if self.user else ("as your user", "your user")
        return FALLBACK_WARNING.format(reason=reason, who=who, reader=reader)

    # ------------------------------------------------------------------ spawn
    def rlimits(self) -> dict[str, int]:
        mb = 1024 * 1024
        return {
            "RLIMIT_AS": (self.cfg.address_space_mb or self.cfg.memory_mb) * mb,
            "RLIMIT_CPU": int(self.cfg.cpu_seconds),
            "RLIMIT_FSIZE": self.cfg.file_size_mb * mb,
            "RLIMIT_CORE": 0,
            "RLIMIT_NOFILE": 512,
        }

    def view(self) -> SiteView:
        """What the worker sees of the installed packages (bubblewrap only)."""
        roots = ("/usr", *_python_roots_cached(self.python))
        try:
            return site_view(
                self.python, tuple(self.cfg.packages), tuple(self.cfg.hidden_packages), roots
            )
        except UnknownPackage as exc:
            raise ConfigError(str(exc)) from None

    def spawn(self) -> Worker:
        """A new worker running grader._student (the protocol is in grader.runner)."""
        return self.start(self.mode, BOOT, [])

    def start(self, mode: str, boot: str, args: list[str], stderr=subprocess.DEVNULL) -> Worker:
        """Run ``python -I -c boot PARENT_OF_GRADER REQ_FD RESP_FD *args`` sandboxed in ``mode``."""
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        keep = [req_r, resp_w]
        workdir = None
        memory = None
        try:
            if self.groups is not None:
                memory = self.groups.create("worker", self.cfg.memory_mb)
            if mode == "bubblewrap":
                sc_r, sc_w = os.pipe()
                os.write(sc_w, seccomp.program())
                os.close(sc_w)
                keep.append(sc_r)
                argv = bwrap_argv(
                    self.python,
                    self.cfg,
                    self.view(),
                    sc_r,
                    boot,
                    [SANDBOX_GRADER_PARENT, str(req_r), str(resp_w), *args],
                )
                spec = launch.Launch(argv=argv, env={}, reveal=self._bound_sources())
            else:
                workdir = tempfile.mkdtemp(prefix="grader-sub-")
                os.chmod(workdir, 0o700)
                if self.user is not None:
                    os.chown(workdir, *self.user)
                argv = [self.python, "-I", "-c", boot, str(GRADER_DIR.parent)]
                argv += [str(req_r), str(resp_w), *args]
                spec = launch.Launch(
                    argv=argv,
                    env=_env(workdir, workdir),
                    cwd=workdir,
                    reveal=[*_python_roots_cached(self.python), str(GRADER_DIR)],
                    seccomp=seccomp.supported(),
                )
            spec.rlimits = self.rlimits()
            spec.memory = memory
            spec.user = self.user
            proc = launch.start(
                spec,
                release=False,  # Worker.kill removes it, after exit_description has read it
                pass_fds=keep,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (req_w, resp_r):
                os.close(fd)
            if memory is not None:
                memory.remove(wait=0)
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            for fd in keep:
                os.close(fd)
        os.set_blocking(req_w, False)
        return Worker(proc, req_w, resp_r, workdir, memory)

    def _bound_sources(self) -> list[str]:
        """Every folder bubblewrap binds (the launcher makes them reachable for ``nobody``)."""
        return ["/usr", *_python_roots_cached(self.python), str(GRADER_DIR)]


def bwrap_argv(
    python: str,
    cfg: SandboxConfig,
    view: SiteView,
    seccomp_fd: int | None,
    boot: str,
    args: list[str],
) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bwrap is not installed")
    tmp_bytes = cfg.tmp_size_mb * 1024 * 1024
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",  # --unshare-all only tries
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]
    if "--disable-userns" in _bwrap_options():  # bubblewrap 0.8+; seccomp refuses them anyway
        argv.append("--disable-userns")
    for k, v in _env("/tmp/home", "/tmp").items():
        argv += ["--setenv", k, v]
    # The private /tmp comes first: bwrap mounts in order, so a /tmp mounted
    # after the binds would hide a venv or checkout that lives under /tmp.
    argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for d in SYSTEM_FOLDERS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in SYSTEM_FILES:
        argv += ["--ro-bind-try", f, f]
    for root in _python_roots_cached(python):
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", str(GRADER_DIR), f"{SANDBOX_GRADER_PARENT}/grader"]
    argv += view.bwrap_args()
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # read-only: the root bubblewrap built, /proc and /dev (device nodes stay usable)
    argv += ["--remount-ro", "/proc", "--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--chdir", "/tmp/home"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [python, "-I", "-c", boot, *args]
    return argv


@functools.lru_cache(maxsize=8)
def _python_roots_cached(python: str) -> tuple[str, ...]:
    return tuple(_python_roots(python))


@functools.lru_cache(maxsize=8)
def _site_dirs_cached(python: str) -> tuple[Path, ...]:
    return tuple(_site_dirs(python))


def probe_bubblewrap(python: str = sys.executable) -> tuple[bool, str]:
    """Whether bubblewrap holds here for ``python`` (and if not, why)."""
    try:
        box = Sandbox(SandboxConfig(mode="auto", python=python))
    except SandboxUnavailable as exc:
        return False, str(exc)
    return box.mode == "bubblewrap", box.reason
