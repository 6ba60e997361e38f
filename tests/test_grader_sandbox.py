"""grader.sandbox and the modules it uses: what a submission's process can and cannot do.

The tests run as root here and in CI, so they exercise the root path (the
worker switches to ``nobody``); ``test_non_root_grader_*`` runs the grader
itself as an unprivileged user. Each test that closes a hole names it.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader import launch, memlimit, sandbox, seccomp, site_view, wire
from grader.config import REPO_ROOT
from grader.errors import ConfigError, SandboxUnavailable
from grader.sandbox_check import FALLBACK_REQUIRED, _host_uids
from grader.syscalls import NUMBERS

BWRAP_OK, BWRAP_REASON = sandbox.probe_bubblewrap(sandbox.SandboxConfig().python)
needs_bwrap = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap unusable: {BWRAP_REASON}")
needs_seccomp = pytest.mark.skipif(not seccomp.supported(), reason="no seccomp filter here")
CGROUPS, CGROUP_REASON = memlimit.available()
needs_cgroup = pytest.mark.skipif(CGROUPS is None, reason=f"no memory cgroup: {CGROUP_REASON}")
MODES = [
    pytest.param("rlimits", marks=needs_seccomp),
    pytest.param("bubblewrap", marks=needs_bwrap),
]
VENV_SITE = sysconfig.get_paths()["purelib"]


@contextmanager
def worker_running(mode: str, cells: dict[str, str], **cfg):
    """A fresh worker that has run ``cells``; yields (worker, {cell: done message})."""
    box = sandbox.Sandbox(sandbox.SandboxConfig(mode=mode, **cfg))
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
        yield worker, done
    finally:
        worker.kill()


def get(worker, name):
    wire.send(worker.to_child, {"op": "get", "name": name}, time.monotonic() + 60)
    return wire.recv(worker.from_child, time.monotonic() + 60).get("value")


def run_cells(mode: str, cells: dict[str, str], names=(), memory_mb: int = 1024, hidden=()):
    """Run cells in a fresh sandboxed worker; return ({cell: done-message}, {name: value})."""
    with worker_running(mode, cells, memory_mb=memory_mb, hidden_packages=list(hidden)) as (
        worker,
        done,
    ):
        return done, {name: get(worker, name) for name in names}


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
    "tmp": (
        "import os, tempfile\npath = os.path.join(tempfile.gettempdir(), 'scratch.txt')\n"
        "open(path, 'w').write('ok')\ntmp = open(path).read()"
    ),
}

# 12.1: as root, the worker cleared the read-only flag of the venv's bind mount
# and planted a .pth that the next `grader autograde` ran as root.
ESCAPE = r"""
import ctypes, os, sys, sysconfig
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns")]
site = sysconfig.get_paths()["purelib"]
tried = []
for target in (sys.prefix, site):
    attr = MountAttr(0, 1, 0, 0)  # mount_setattr: clear MOUNT_ATTR_RDONLY
    tried.append(libc.syscall(442, -100, target.encode(), 0x8000, ctypes.byref(attr), 32))
    tried.append(libc.mount(None, target.encode(), None, 0x20 | 0x1000, None))  # remount rw
fd = libc.syscall(428, -100, site.encode(), 1)  # open_tree(OPEN_TREE_CLONE), writable copy
if fd >= 0:
    attr = MountAttr(0, 1, 0, 0)
    libc.syscall(442, fd, b"", 0x1000, ctypes.byref(attr), 32)  # AT_EMPTY_PATH
    tried.append(libc.syscall(429, fd, b"", -100, site.encode(), 4))  # move_mount over site
escape = "blocked"
try:
    with open(os.path.join(site, "zz_grader_escape.pth"), "w") as f:
        f.write("import os; os.system('touch /tmp/escaped')\n")
    escape = f"wrote a .pth into {site}"
except OSError as exc:
    escape = f"blocked ({exc.strerror})"
"""


def test_syscall_table_matches_the_kernel_headers():
    """Every number in grader.syscalls, checked against the UAPI headers installed here."""
    headers = {
        0: Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
        1: Path("/usr/include/asm-generic/unistd.h"),
    }
    checked = 0
    for index, header in headers.items():
        if not header.exists():
            continue
        text = header.read_text()
        found = dict(re.findall(r"#define __NR(?:3264)?_(\w+) (\d+)", text))
        if index == 1:
            found["newfstatat"] = found.pop("fstatat")
        for name, numbers in NUMBERS.items():
            if name in found:
                assert numbers[index] == int(found[name]), (name, header)
                checked += 1
            elif numbers[index] is not None and numbers[index] < 451:
                pytest.fail(f"{name} is not in {header}, but the table gives it a number")
    if not checked:
        pytest.skip("no kernel headers installed")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_allowlist_compiles_for_both_architectures(monkeypatch, machine):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    for prog in (seccomp.program(), seccomp.program(own_pid=1234)):
        assert len(prog) % 8 == 0 and 200 < len(prog) // 8 < 4096  # BPF_MAXINSNS
    assert not set(seccomp.ALLOWED) & set(seccomp.DENIED)
    families = "mount_setattr open_tree move_mount fsopen fsmount fspick fsconfig mount unshare"
    for name in (families + " setns keyctl add_key memfd_create").split():
        assert name in seccomp.DENIED


@needs_seccomp
def test_seccomp_refuses_what_is_not_allowed():
    """In a throwaway process: denied calls get EPERM, unknown ones ENOSYS, threads run."""
    code = textwrap.dedent(
        """
        import ctypes, os, threading
        from grader import seccomp
        seccomp.install(own_pid=os.getpid())
        libc = ctypes.CDLL(None, use_errno=True)
        def err(*call):
            ctypes.set_errno(0)
            return None if libc.syscall(*call) >= 0 else ctypes.get_errno()
        nr = {n: seccomp.numbers([n])[0] for n in ("fsopen", "memfd_create", "chroot", "getpid")}
        t = threading.Thread(target=lambda: None); t.start(); t.join()
        print(err(nr["fsopen"], b"tmpfs", 0), err(nr["memfd_create"], b"x", 0),
              err(nr["chroot"], b"/"), err(nr["getpid"]), err(1000))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert out.stdout.split() == ["1", "1", "1", "None", "38"], out.stderr  # EPERM, ENOSYS


@pytest.mark.parametrize("mode", MODES)
def test_submission_cannot_fork_connect_or_exhaust_memory(mode):
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


@needs_seccomp
def test_fallback_cannot_signal_the_grader():
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


@pytest.mark.parametrize("mode", MODES)
def test_submission_cannot_make_the_python_installation_writable(mode):
    """12.1: mount_setattr, remount, open_tree + move_mount, then a .pth in site-packages."""
    planted = Path(VENV_SITE) / "zz_grader_escape.pth"
    try:
        done, v = run_cells(mode, {"escape": ESCAPE}, names=("escape", "tried"))
        assert done["escape"]["ok"], done["escape"]["error"]
        assert v["escape"].startswith("blocked"), v
        assert all(r < 0 for r in v["tried"]), v["tried"]
        assert not planted.exists()
    finally:
        planted.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", MODES)
def test_worker_runs_unprivileged_and_without_capabilities(mode):
    """12.1: even when the grader is root, no process of the sandbox is root on the host."""
    cells = {
        "who": (
            "import os\nuid = os.getuid()\n"
            "caps = {l.split(':')[0]: int(l.split()[1], 16) for l in open('/proc/self/status')"
            " if l.startswith(('CapEff', 'CapPrm', 'CapAmb'))}"
        )
    }
    with worker_running(mode, cells) as (worker, done):
        assert done["who"]["ok"], done["who"]["error"]
        host = _host_uids(worker.proc.pid)
        inside, caps = get(worker, "uid"), get(worker, "caps")
    assert inside != 0
    assert caps == {"CapEff": 0, "CapPrm": 0, "CapAmb": 0}
    assert host and all(0 not in uids for uids in host.values()), host
    if os.geteuid() == 0:
        assert {u for uids in host.values() for u in uids} == {launch.unprivileged_user()[0]}


@needs_bwrap
def test_every_mount_is_read_only_except_tmp():
    cells = {
        "mounts": (
            "mounts = []\nfor line in open('/proc/self/mountinfo'):\n"
            "    f = line.split()\n"
            "    mounts.append([f[4], f[5], f[f.index('-') + 1]])"
        )
    }
    _, v = run_cells("bubblewrap", cells, names=("mounts",))
    writable = [m for m in v["mounts"] if "ro" not in m[1].split(",")]
    # device nodes bound into the read-only /dev stay writable as devices, never as files
    assert [m[0] for m in writable if m[2] not in ("devtmpfs", "devpts")] == ["/tmp"]
    points = {m[0] for m in v["mounts"]}
    assert {"/", "/usr", "/proc", "/dev", VENV_SITE} <= points


MEMFD_BOMB = """
import os
held, fds = 0, []
try:
    while held < 3 * {limit}:
        fd = os.memfd_create("bomb")
        os.write(fd, b"x" * (64 << 20))
        fds.append(fd)
        held += 64
    memfd = f"held {{held}} MB"
except OSError as exc:
    memfd = f"refused ({{exc.strerror}})"
"""


@pytest.mark.parametrize("mode", MODES)
def test_memfd_cannot_hold_memory_beyond_the_limit(mode):
    """12.4: memfd_create + write held 6 GB against a 2 GB address-space limit."""
    done, v = run_cells(mode, {"bomb": MEMFD_BOMB.format(limit=256)}, ("memfd",), memory_mb=256)
    assert done["bomb"]["ok"], done["bomb"]["error"]
    assert v["memfd"].startswith("refused"), v


@needs_cgroup
def test_memory_cgroup_counts_memory_outside_the_address_space():
    """The cgroup counts a memfd's pages, which RLIMIT_AS does not see: the process is killed."""
    group = CGROUPS.create("test", 128)
    code = (
        "import os\nfd = os.memfd_create('x')\n"
        "for _ in range(12):\n    os.write(fd, b'x' * (32 << 20))\nprint('held 384 MB')"
    )
    proc = launch.start(
        launch.Launch(argv=[sys.executable, "-c", code], memory=group, pdeathsig=False),
        release=False,
        stdout=subprocess.PIPE,
    )
    out, _ = proc.communicate(timeout=60)
    try:
        assert proc.returncode == -9 and b"held" not in out
        assert group.oom_kills() >= 1
    finally:
        group.remove()
    assert not group.path.exists()


@pytest.mark.parametrize("with_cgroup", [pytest.param(True, marks=needs_cgroup), False])
def test_trusted_runner_process_has_a_memory_limit(with_cgroup):
    """12.3 / I4: a build from student data in the runner cannot take the machine."""
    code = "import numpy as np\nnp.ones(600 << 20, dtype=np.uint8)\nprint('built 600 MB')"
    proc = launch.start_limited(
        [sys.executable, "-c", code],
        200,
        CGROUPS if with_cgroup else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=60)
    assert b"built" not in out
    assert proc.returncode == -9 if with_cgroup else b"MemoryError" in err
    assert proc.memory is None  # its cgroup went with it


def base_site_packages() -> Path:
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    return Path(sysconfig.get_paths(vars=base)["purelib"])


@needs_bwrap
def test_packages_of_the_base_interpreter_are_invisible():
    """12.2: only the venv had hidden packages masked; the base interpreter's (SciPy) were not."""
    base = base_site_packages()
    on_host = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    cells = {
        "look": (
            "import os, sys, importlib\n"
            f"base = {str(base)!r}\n"
            "seen = sorted(os.listdir(base)) if os.path.isdir(base) else []\n"
            "sys.path.append(base)\n"
            "imported = []\n"
            f"for name in {[n for n in ('scipy', 'boto3', 'IPython') if n in on_host]!r}:\n"
            "    try:\n        importlib.import_module(name)\n        imported.append(name)\n"
            "    except ImportError:\n        pass\n"
        )
    }
    done, v = run_cells("bubblewrap", cells, names=("seen", "imported"))
    assert done["look"]["ok"], done["look"]["error"]
    assert v["seen"] == [], f"the base interpreter's site-packages show {v['seen'][:10]}"
    assert "scipy" not in v["imported"]


FAKE = "grader_fake_forbidden"


@pytest.fixture
def fake_distribution():
    """A distribution installed in the venv's site-packages for the duration of a test."""
    site = Path(VENV_SITE)
    pkg, info = site / FAKE, site / f"{FAKE}-1.0.dist-info"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("ANSWER = 42\n")
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {FAKE}\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{FAKE}/__init__.py,,\n{info.name}/METADATA,,\n")
    try:
        yield FAKE
    finally:
        shutil.rmtree(pkg)
        shutil.rmtree(info)


@needs_bwrap
def test_only_allowed_distributions_are_importable(fake_distribution):
    """12.2: an installed package the assignment does not allow cannot be imported."""
    cell = {
        "imp": (
            f"try:\n    import {FAKE}\n    fake = {FAKE}.ANSWER\nexcept ImportError:\n"
            "    fake = 'hidden'\nimport numpy, IPython\nworker_needs = 'there'"
        )
    }

    def imported(**cfg):
        with worker_running("bubblewrap", cell, **cfg) as (worker, done):
            assert done["imp"]["ok"], done["imp"]["error"]
            return get(worker, "fake"), get(worker, "worker_needs")

    assert imported(packages=["numpy"]) == ("hidden", "there")
    assert imported(packages=[FAKE]) == (42, "there")
    roots = ("/usr", *sandbox._python_roots_cached(sys.executable))
    vetoed = site_view.site_view(sys.executable, (FAKE,), (FAKE,), roots)
    assert FAKE not in vetoed.visible[VENV_SITE] and "numpy" in vetoed.visible[VENV_SITE]


def test_site_view_binds_the_closure_of_the_allowed_distributions():
    roots = ("/usr", *sandbox._python_roots_cached(sys.executable))
    view = site_view.site_view(sys.executable, ("keras",), ("scipy",), roots)
    for dist in ("keras", "numpy", "h5py", "absl-py", "ipython", "traitlets"):  # keras deps
        assert dist in view.distributions
    assert "scipy" not in view.distributions and "tensorflow-cpu" not in view.distributions
    visible = view.visible[VENV_SITE]
    assert "keras" in visible and "scipy" not in visible
    assert all(mask in view.masks for mask in view.visible)
    with pytest.raises(site_view.UnknownPackage, match="not-a-package"):
        site_view.site_view(sys.executable, ("not-a-package",), (), roots)


def test_unknown_sandbox_package_is_a_config_error():
    box = sandbox.Sandbox(sandbox.SandboxConfig(mode="auto", packages=["nope"]), choose=False)
    with pytest.raises(ConfigError, match="'nope'"):
        box.view()


def test_unknown_mode_is_refused():
    with pytest.raises(SandboxUnavailable, match="unknown sandbox mode"):
        sandbox.Sandbox(sandbox.SandboxConfig(mode="docker"))


@needs_seccomp
def test_required_bubblewrap_missing_is_an_error_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="not installed"):
        sandbox.Sandbox(sandbox.SandboxConfig(mode="bubblewrap"))
    box = sandbox.Sandbox(sandbox.SandboxConfig(mode="auto"))
    assert box.mode == "rlimits"
    assert "NOT isolated by bubblewrap" in box.warning
    assert "apt-get install bubblewrap" in box.warning


@needs_bwrap
def test_check_sandbox_says_what_holds(capsys):
    from grader import cli

    assert cli.main(["check-sandbox"]) == 0
    out = capsys.readouterr().out
    for check in [
        *FALLBACK_REQUIRED,
        "python read-only",
        "read-only mounts",
        "only allowed packages",
    ]:
        assert f"ok  {check}" in out
    assert "bubblewrap holds here" in out


def test_check_sandbox_without_bubblewrap_exits_6(monkeypatch, capsys):
    from grader import cli

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli.main(["check-sandbox"]) == 6
    err = capsys.readouterr().err
    assert "NO  starts: bwrap is not installed" in err
    assert "fallback (--sandbox rlimits):" in err


NON_ROOT_GRADER = """
import json, sys
from grader import sandbox
box = sandbox.Sandbox(sandbox.SandboxConfig(mode="auto"), choose=False)
out = {mode: [[c.name, c.ok, c.detail] for c in box.checks(mode)] for mode in sys.argv[1:]}
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_non_root_grader_still_isolates_submissions():
    """The path an instructor's laptop takes: the grader itself runs as an unprivileged user."""
    modes = ["rlimits"] + (["bubblewrap"] if BWRAP_OK else [])
    spec = launch.Launch(
        argv=[sys.executable, "-c", NON_ROOT_GRADER, *modes],
        env={"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": str(REPO_ROOT)},
        cwd="/tmp",
        user=(4242, 4242),  # an ordinary user, not nobody
        reveal=[*sandbox._python_roots_cached(sys.executable), str(REPO_ROOT)],
        pdeathsig=False,
    )
    proc = launch.start(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    checks = {mode: {c[0]: (c[1], c[2]) for c in cs} for mode, cs in json.loads(out).items()}
    for mode, found in checks.items():
        for name in FALLBACK_REQUIRED:
            assert found[name][0], (mode, name, found[name])
        assert "uids [4242]" in found["unprivileged user"][1]
    if "bubblewrap" in checks:
        assert all(ok for name, (ok, _) in checks["bubblewrap"].items() if name != "memory cgroup")


def test_cgroup_finder_follows_v2_delegation(tmp_path):
    """cgroup v2 (Ubuntu): beside our own cgroup, where the parent enables memory for children."""
    fs = tmp_path / "sys/fs/cgroup"
    session = fs / "user.slice/session-1.scope"
    session.mkdir(parents=True)
    (fs / "user.slice/cgroup.subtree_control").write_text("cpu memory pids\n")
    (fs / "user.slice/cgroup.procs").write_text("")
    (session / "cgroup.subtree_control").write_text("\n")
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("0::/user.slice/session-1.scope\n")
    (tmp_path / "proc/self/mountinfo").write_text(
        "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    groups, reason = memlimit.MemoryCgroups.find(tmp_path)
    assert groups is not None, reason
    assert (groups.parent, groups.version) == (fs / "user.slice", 2)
    group = groups.create("worker", 300)
    assert (group.path / "memory.max").read_text() == str(300 << 20)
    assert group.path.parent == fs / "user.slice"
    (fs / "user.slice/cgroup.subtree_control").write_text("cpu pids\n")
    groups, reason = memlimit.MemoryCgroups.find(tmp_path)
    assert groups is None and "memory controller is not enabled" in reason


def test_worker_is_killed_with_its_process_group():
    box = sandbox.Sandbox(sandbox.SandboxConfig(mode="auto"))
    worker = box.spawn()
    pid = worker.proc.pid
    worker.kill()
    assert worker.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert worker.memory is None or not worker.memory.path.exists()


def test_launcher_refuses_to_run_a_command_it_could_not_limit():
    spec = launch.Launch(argv=[sys.executable, "-c", "print('ran')"], rlimits={"RLIMIT_NOPE": 1})
    proc = launch.start(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == launch.FAILED and out == b""
    assert b"RLIMIT_NOPE" in err


def test_probe_uses_the_numbers_of_this_machine():
    """grader._probe hard-codes the new mount API's numbers: they are the same everywhere."""
    from grader import _probe

    for name, number in _probe.NEW_MOUNT_CALLS.items():
        assert NUMBERS[name] == (number, number)
    assert ctypes.sizeof(_probe.MountAttr) == 32
