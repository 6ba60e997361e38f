"""What a submission could do, tried from inside a real sandbox (``grader check-sandbox``).

Started by grader.sandbox_check in place of the worker, with exactly the
worker's sandbox (bubblewrap or the fallback, seccomp, limits, user). It tries
what an escape would need and writes one JSON line of findings to fd ``OUT``,
then waits until the grader has looked at it from outside and closes ``IN``.
Standard library only: it must run where nothing else is visible.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

AT_FDCWD = -100
MS_REMOUNT = 0x20
MS_BIND = 0x1000
OPEN_TREE_CLONE = 1
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
PACKAGE_FOLDERS = ("site-packages", "dist-packages")
# the new mount API (Linux 5.2+), the same numbers on every architecture
NEW_MOUNT_CALLS = {
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}
MEMFD_CREATE = {"x86_64": 319, "aarch64": 279}

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "propagation", "userns")]


def _errno_of(result: int) -> int | None:
    """None if the call succeeded, else its errno."""
    return None if result >= 0 else ctypes.get_errno()


def capabilities() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {
            line.split(":")[0]: int(line.split()[1], 16) for line in f if line.startswith("Cap")
        }


def new_mount_calls(target: str) -> dict[str, int | None]:
    """Each call of the new mount API with arguments that would work for root."""
    path = target.encode()
    attr = MountAttr(0, 1, 0, 0)  # clear MOUNT_ATTR_RDONLY
    tries = {
        "open_tree": lambda: libc.syscall(428, AT_FDCWD, path, OPEN_TREE_CLONE),
        "move_mount": lambda: libc.syscall(429, AT_FDCWD, path, AT_FDCWD, b"/tmp", 0),
        "fsopen": lambda: libc.syscall(430, b"tmpfs", 0),
        "fsconfig": lambda: libc.syscall(431, 0, 6, None, None, 0),  # FSCONFIG_CMD_CREATE
        "fsmount": lambda: libc.syscall(432, 0, 0, 0),
        "fspick": lambda: libc.syscall(433, AT_FDCWD, path, 0),
        "mount_setattr": lambda: libc.syscall(
            442, AT_FDCWD, path, 0, ctypes.byref(attr), ctypes.sizeof(attr)
        ),
    }
    out = {}
    for name, call in tries.items():
        ctypes.set_errno(0)
        out[name] = _errno_of(call())
    return out


def remount_writable(target: str) -> int | None:
    ctypes.set_errno(0)
    return _errno_of(libc.mount(None, target.encode(), None, MS_REMOUNT | MS_BIND, None))


def try_write(folder: str) -> str | None:
    """None if a file could be created in ``folder``, else the error."""
    path = os.path.join(folder, "zz_grader_probe.pth")
    try:
        with open(path, "w") as f:
            f.write("import os\n")
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    os.unlink(path)
    return None


def writable_mounts() -> list[str]:
    """Mount points (from /proc/self/mountinfo) not mounted read-only."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, options = fields[4], fields[5].split(",")
            fstype = fields[fields.index("-") + 1]
            if "ro" not in options:
                out.append(f"{point} ({fstype})")
    return out


def package_folders(roots: list[str], depth: int = 32) -> dict[str, list[str]]:
    """Every site-packages or dist-packages folder visible, and what it holds."""
    found = {}
    stack = [(r, 0) for r in roots]
    while stack:
        folder, d = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                continue
            if e.name in PACKAGE_FOLDERS:
                try:
                    found[e.path] = sorted(os.listdir(e.path))
                except OSError:
                    found[e.path] = []
            elif d + 1 < depth and e.path not in ("/proc", "/sys", "/dev"):
                stack.append((e.path, d + 1))
    return found


def main(fd_in: int, fd_out: int, site: str, scan: bool) -> None:
    import platform
    import socket

    findings: dict = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid()}
    findings["capabilities"] = capabilities()
    findings["remount"] = remount_writable(site)
    findings["new_mount_calls"] = new_mount_calls(site)
    ctypes.set_errno(0)
    findings["unshare_user"] = _errno_of(libc.unshare(CLONE_NEWUSER))
    ctypes.set_errno(0)
    findings["unshare_mount"] = _errno_of(libc.unshare(CLONE_NEWNS))
    memfd = MEMFD_CREATE.get(platform.machine())
    ctypes.set_errno(0)
    findings["memfd_create"] = _errno_of(libc.syscall(memfd, b"probe", 0)) if memfd else None
    findings["write"] = {
        folder: try_write(folder) for folder in [site, sys.prefix, sys.base_prefix, "/usr"]
    }
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        findings["socket"] = None
    except OSError as exc:
        findings["socket"] = exc.errno
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        findings["fork"] = None
    except OSError as exc:
        findings["fork"] = exc.errno
    findings["writable_mounts"] = writable_mounts()
    # the fallback sees the machine's whole file system: too much to walk
    findings["package_folders"] = package_folders(["/"]) if scan else None
    os.write(fd_out, (json.dumps(findings) + "\n").encode())
    os.read(fd_in, 1)  # wait while the grader looks at this process from outside


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "scan")
