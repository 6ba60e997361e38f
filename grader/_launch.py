"""Trampoline that applies limits and drops privileges, then becomes the command.

Run as ``python -I -S _launch.py JSON`` by grader.launch, so that no
``preexec_fn`` runs inside the (multi-threaded) grader after ``fork``. In order:

1. the resource limits (``rlimits``);
2. the memory cgroup (``cgroup_procs``): it writes its own pid there, so that
   everything it and its children hold is counted from the start;
3. as root, when asked to run as another user (``user``): a private mount
   namespace in which the folders that user must read (``reveal``: the Python
   installation, the grader) are reachable even where an ancestor is not (for
   example ``/root``, mode 700): the first ancestor the user cannot pass is
   replaced, in this namespace only, by a read-only tmpfs holding just those
   folders, bound read-only; then all groups, gid and uid are dropped, which
   leaves no capability;
4. the parent-death signal (after the drop, which clears it);
5. in the fallback without bubblewrap, the seccomp filter (grader.seccomp);
6. ``execve`` of the command.

Standard library only; any failure exits with status 125 and a message on
stderr, before the command runs.
"""

import ctypes
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _passable(path: str, uid: int, gid: int, need: int) -> bool:
    """Whether ``uid``/``gid`` (without supplementary groups) has ``need`` bits on ``path``."""
    st = os.stat(path)
    if st.st_uid == uid:
        return st.st_mode & (need << 6) == need << 6
    if st.st_gid == gid:
        return st.st_mode & (need << 3) == need << 3
    return st.st_mode & need == need


def _blocked_ancestor(path: str, uid: int, gid: int) -> str | None:
    """The outermost folder above ``path`` that ``uid`` cannot pass through, if any."""
    parts = path.strip("/").split("/")
    for i in range(len(parts)):
        folder = "/" + "/".join(parts[:i])
        if not _passable(folder, uid, gid, 0o1):
            return folder
    return None


def reveal(paths: list[str], uid: int, gid: int) -> None:
    """In a new private mount namespace, make ``paths`` reachable for ``uid``."""
    blocked: dict[str, list[str]] = {}
    for p in sorted(set(os.path.realpath(p) for p in paths)):
        if not os.path.exists(p):
            continue
        ancestor = _blocked_ancestor(p, uid, gid)
        if ancestor is not None:
            blocked.setdefault(ancestor, []).append(p)
        need = 0o5 if os.path.isdir(p) else 0o4
        if not _passable(p, uid, gid, need):
            raise OSError(f"{p} is not readable by uid {uid}: make it readable by all users")
    if not blocked:
        return
    os.umask(0o022)  # the folders made below must be passable by uid
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # keep each folder open: once its ancestor is covered, /proc/self/fd still reaches it
    held = {p: os.open(p, os.O_PATH) for ps in blocked.values() for p in ps}
    for ancestor, inside in blocked.items():
        _mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for p in inside:
            if os.path.isdir(f"/proc/self/fd/{held[p]}"):
                os.makedirs(p, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                open(p, "w").close()  # noqa: SIM115 - an empty mount point
            _mount(f"/proc/self/fd/{held[p]}", p, None, MS_BIND | MS_REC)
            _mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        _mount(None, ancestor, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in held.values():
        os.close(fd)


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/self/status") as f:
        caps = [line.split() for line in f if line.startswith(("CapEff", "CapPrm", "CapAmb"))]
    if os.getuid() != uid or os.geteuid() != uid or any(int(c[1], 16) for c in caps):
        raise OSError(f"could not drop privileges to uid {uid}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    for name, value in spec.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if spec.get("cgroup_procs"):
        with open(spec["cgroup_procs"], "w") as f:
            f.write(str(os.getpid()))
    if spec.get("user") is not None:
        uid, gid = spec["user"]
        if os.geteuid() == 0:
            reveal(spec.get("reveal", []), uid, gid)
        if os.geteuid() != uid:
            drop_privileges(uid, gid)
    if spec.get("pdeathsig"):
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != spec["parent"]:  # the parent died before prctl
            os._exit(1)
    if spec.get("seccomp"):
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from grader import seccomp

        seccomp.install(own_pid=os.getpid())
    if spec.get("cwd"):
        os.chdir(spec["cwd"])
    env = spec["env"] if spec.get("env") is not None else dict(os.environ)
    os.execve(spec["argv"][0], spec["argv"], env)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - report why, never run the command half-limited
        print(f"grader launcher: {type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(FAILED)
