"""A small seccomp filter for submission processes.

The filter stops a submission from starting processes (``fork``, ``vfork``,
``clone`` without ``CLONE_THREAD``; threads still work), from opening any socket
(no network even where no network namespace exists, and no Unix socket such as
a Docker daemon's; ``socketpair`` still works), from ``ptrace`` and
``process_vm_readv`` on other processes, from ``io_uring`` (which could bypass the
rest), from namespaces, mounts, keyrings, BPF, perf and userfaultfd (kernel attack
surface a notebook never needs), and, in the fallback without bubblewrap, from
signalling any process but itself. A system call from a foreign ABI (32-bit calls on x86_64) kills
the process, so the filter cannot be sidestepped.

``program(...)`` returns the raw BPF bytes (the format bubblewrap's ``--seccomp FD``
reads); ``install(...)`` loads it into the calling process (used in ``preexec_fn``
of the fallback sandbox).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

_CLONE_THREAD = 0x00010000

# offsets in struct seccomp_data
_OFF_NR = 0
_OFF_ARCH = 4


def _off_arg(i: int) -> int:  # low 32 bits of args[i] (little-endian)
    return 16 + 8 * i


_ARCHES = {
    "x86_64": {
        "audit": 0xC000003E,
        "x32_bit": 0x40000000,
        "fork": 57,
        "vfork": 58,
        "clone": 56,
        "clone3": 435,
        "socket": 41,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "kill": 62,
        "tkill": 200,
        "tgkill": 234,
        "pidfd_send_signal": 424,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
    },
    "aarch64": {
        "audit": 0xC00000B7,
        "x32_bit": None,
        "fork": None,
        "vfork": None,
        "clone": 220,
        "clone3": 435,
        "socket": 198,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "kill": 129,
        "tkill": 130,
        "tgkill": 131,
        "pidfd_send_signal": 424,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
    },
}


def supported() -> bool:
    """Whether this machine's architecture has a filter."""
    return platform.machine() in _ARCHES


def program(own_pid: int | None = None) -> bytes:
    """BPF program as bytes (array of ``struct sock_filter``).

    With ``own_pid``, kill/tgkill are allowed only towards that pid (the
    fallback sandbox); without it (bubblewrap, which has its own PID namespace)
    signals are left alone.
    """
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        raise OSError(f"no seccomp filter for architecture {platform.machine()}")

    insns: list[tuple[int, int, int, int]] = []
    labels: dict[str, int] = {}
    fixups: list[tuple[int, str, str]] = []  # (insn index, jt label, jf label)

    def emit(code, k=0, jt=0, jf=0):
        insns.append([code, jt, jf, k])
        return len(insns) - 1

    def jump(code, k, jt_label, jf_label):
        idx = emit(code, k)
        fixups.append((idx, jt_label, jf_label))

    def label(name):
        labels[name] = len(insns)

    eperm = _RET_ERRNO | errno.EPERM
    enosys = _RET_ERRNO | errno.ENOSYS

    emit(_LD_W_ABS, _OFF_ARCH)
    jump(_JEQ_K, arch["audit"], "arch_ok", "kill")
    label("arch_ok")
    emit(_LD_W_ABS, _OFF_NR)
    if arch["x32_bit"] is not None:
        jump(_JGE_K, arch["x32_bit"], "kill", "next0")
        label("next0")
    deny = [
        "fork",
        "vfork",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "tkill",
        "pidfd_send_signal",
        "socket",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "add_key",
        "request_key",
        "keyctl",
        "perf_event_open",
        "bpf",
        "userfaultfd",
    ]
    if own_pid is None:
        deny.remove("tkill")
        deny.remove("pidfd_send_signal")
    for n, name in enumerate(deny):
        nr = arch[name]
        if nr is None:
            continue
        jump(_JEQ_K, nr, "eperm", f"d{n}")
        label(f"d{n}")
    jump(_JEQ_K, arch["clone3"], "enosys", "c3")  # glibc then falls back to clone
    label("c3")
    jump(_JEQ_K, arch["clone"], "check_clone", "c1")
    label("c1")
    if own_pid is not None:
        jump(_JEQ_K, arch["kill"], "check_pid", "k1")
        label("k1")
        jump(_JEQ_K, arch["tgkill"], "check_pid", "k2")
        label("k2")
    emit(_RET_K, _RET_ALLOW)
    label("check_clone")
    emit(_LD_W_ABS, _off_arg(0))
    jump(_JSET_K, _CLONE_THREAD, "allow", "eperm")
    if own_pid is not None:
        label("check_pid")
        emit(_LD_W_ABS, _off_arg(0))
        jump(_JEQ_K, own_pid, "allow", "eperm")
    label("eperm")
    emit(_RET_K, eperm)
    label("allow")
    emit(_RET_K, _RET_ALLOW)
    label("enosys")
    emit(_RET_K, enosys)
    label("kill")
    emit(_RET_K, _RET_KILL_PROCESS)

    for idx, jt_label, jf_label in fixups:
        for slot, name in ((1, jt_label), (2, jf_label)):
            offset = labels[name] - idx - 1
            if not 0 <= offset <= 255:
                raise OSError("seccomp program too long for a relative jump")
            insns[idx][slot] = offset
    return b"".join(struct.pack("=HBBI", *ins) for ins in insns)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def install(own_pid: int | None = None) -> None:
    """Load the filter into the calling process (irreversible)."""
    prog = program(own_pid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.prctl.restype = ctypes.c_int
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
