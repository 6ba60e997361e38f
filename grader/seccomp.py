"""The seccomp filter of submission processes: an allowlist of system calls.

A notebook needs files, memory, threads, time and signals; everything else is
refused. Calls on the allowlist (``ALLOWED``) run; a few run only with safe
arguments (``clone`` for threads only, ``ioctl`` without terminal injection,
``prlimit64`` on itself, and in the fallback without bubblewrap, signals to
itself only); the dangerous families get ``EPERM`` (``DENIED``: new processes,
sockets, ptrace and other processes' memory, io_uring, namespaces, every mount
call old and new, keyrings, BPF, perf, userfaultfd, ``memfd_create``); any other
call, including every call added to the kernel after this list was written,
fails with ``ENOSYS``, as if the kernel were older (the C library then falls
back, e.g. from ``clone3`` to ``clone``). A call from a foreign ABI (32-bit
calls on x86_64) kills the process, so the filter cannot be sidestepped.

``program(...)`` returns the raw BPF bytes (the format bubblewrap's ``--seccomp
FD`` reads); ``install(...)`` loads it into the calling process (the fallback
sandbox's launcher, grader._launch, does that just before ``execve``).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from .syscalls import NUMBERS

# File, memory, thread, time and signal calls of an ordinary Python process
# (NumPy, IPython, TensorFlow). Names that an architecture lacks are skipped.
ALLOWED = """
read write open close stat fstat lstat newfstatat statx poll ppoll select pselect6 lseek
mmap mprotect munmap mremap brk msync mincore madvise mlock mlock2 munlock mlockall munlockall
get_mempolicy set_mempolicy mbind pkey_mprotect pkey_alloc pkey_free membarrier mseal
map_shadow_stack
rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack
pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 access faccessat faccessat2
pipe pipe2 dup dup2 dup3 fcntl flock fsync fdatasync truncate ftruncate fallocate
getdents getdents64 getcwd chdir fchdir rename renameat renameat2 mkdir mkdirat rmdir creat
link linkat unlink unlinkat symlink symlinkat readlink readlinkat chmod fchmod fchmodat fchmodat2
umask utime utimes utimensat futimesat statfs fstatfs readahead fadvise64 sendfile splice tee
copy_file_range sync_file_range getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
openat openat2 close_range
epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 eventfd eventfd2
signalfd signalfd4 timerfd_create timerfd_settime timerfd_gettime
inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
socketpair sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown getsockname getpeername
setsockopt getsockopt
execve exit exit_group wait4 waitid getpid getppid gettid getuid geteuid getgid getegid
getgroups getresuid getresgid getpgrp getpgid getsid capget
sched_yield sched_setparam sched_getparam sched_setscheduler sched_getscheduler
sched_get_priority_max sched_get_priority_min sched_rr_get_interval sched_setaffinity
sched_getaffinity sched_setattr sched_getattr getpriority setpriority ioprio_get
nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time times getitimer
setitimer alarm pause timer_create timer_settime timer_gettime timer_getoverrun timer_delete
futex futex_waitv futex_wake futex_wait futex_requeue set_tid_address set_robust_list
get_robust_list restart_syscall rseq
getrlimit setrlimit getrusage sysinfo uname getrandom getcpu prctl arch_prctl
""".split()

# Refused with EPERM: what a sandbox escape, a memory-limit bypass or an attack
# on other processes would use.
DENIED = """
fork vfork socket connect accept accept4 bind listen
ptrace process_vm_readv process_vm_writev process_madvise process_mrelease
pidfd_open pidfd_getfd pidfd_send_signal kcmp
io_uring_setup io_uring_enter io_uring_register
unshare setns mount umount2 pivot_root chroot
open_tree open_tree_attr move_mount fsopen fsconfig fsmount fspick mount_setattr statmount listmount
add_key request_key keyctl
bpf perf_event_open userfaultfd seccomp
memfd_create memfd_secret
""".split()

# Refused with ENOSYS so that the C library falls back to an allowed call.
FALLS_BACK = ["clone3"]

# Checked by argument (see program())
BY_ARGUMENT = ["clone", "ioctl", "prlimit64", "kill", "tgkill", "tkill", "rt_sigqueueinfo",
               "rt_tgsigqueueinfo"]  # fmt: skip

_ARCHES = {
    # machine: (index in NUMBERS, AUDIT_ARCH_*, first number of the x32 ABI)
    "x86_64": (0, 0xC000003E, 0x40000000),
    "aarch64": (1, 0xC00000B7, None),
}

# BPF opcodes
_LD_W_ABS = 0x20
_JA = 0x05
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
EPERM = _RET_ERRNO | errno.EPERM
ENOSYS = _RET_ERRNO | errno.ENOSYS

_CLONE_THREAD = 0x00010000
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_CLONE_NEW_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
_CLONE_NEW_NAMESPACES |= 0x20000000 | 0x40000000
_TIOCSTI = 0x5412  # push characters into a terminal's input
_TIOCLINUX = 0x541C  # the Linux console's own copy-and-paste

# offsets in struct seccomp_data
_OFF_NR = 0
_OFF_ARCH = 4


def _off_arg(i: int) -> int:  # low 32 bits of args[i] (little-endian)
    return 16 + 8 * i


def supported() -> bool:
    """Whether this machine's architecture has a filter."""
    return platform.machine() in _ARCHES


def numbers(names: list[str], machine: str | None = None) -> list[int]:
    """The numbers of ``names`` on ``machine`` (this one by default), skipping absent calls."""
    index = _ARCHES[machine or platform.machine()][0]
    return [n for n in (NUMBERS[name][index] for name in names) if n is not None]


class _Assembler:
    """Classic BPF with symbolic labels for the conditional jumps."""

    def __init__(self):
        self.insns: list[list[int]] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str | None, str | None]] = []

    def load(self, offset: int) -> None:
        self.insns.append([_LD_W_ABS, 0, 0, offset])

    def ret(self, value: int) -> None:
        self.insns.append([_RET_K, 0, 0, value])

    def skip(self, count: int) -> None:
        self.insns.append([_JA, 0, 0, count])

    def jump(self, code: int, k: int, jt: str | None, jf: str | None) -> None:
        """Conditional jump; a label of None means the next instruction."""
        self.fixups.append((len(self.insns), jt, jf))
        self.insns.append([code, 0, 0, k])

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def returns_for(self, nrs: list[int], value: int, tag: str) -> None:
        """Return ``value`` for each syscall number in ``nrs``; fall through otherwise.

        Blocks of at most 200 comparisons keep every jump within BPF's 255.
        """
        for b in range(0, len(nrs), 200):
            target = f"{tag}{b}"
            for nr in nrs[b : b + 200]:
                self.jump(_JEQ_K, nr, target, None)
            self.skip(1)
            self.label(target)
            self.ret(value)

    def assemble(self) -> bytes:
        for idx, jt, jf in self.fixups:
            for slot, name in ((1, jt), (2, jf)):
                offset = 0 if name is None else self.labels[name] - idx - 1
                if not 0 <= offset <= 255:
                    raise OSError("seccomp program too long for a relative jump")
                self.insns[idx][slot] = offset
        return b"".join(struct.pack("=HBBI", *ins) for ins in self.insns)


def program(own_pid: int | None = None) -> bytes:
    """BPF program as bytes (array of ``struct sock_filter``).

    With ``own_pid`` (the fallback sandbox, which shares the machine's process
    IDs), signals go only to that pid; without it (bubblewrap, which has its own
    PID namespace) a submission may signal the processes it can see.
    """
    machine = platform.machine()
    if machine not in _ARCHES:
        raise OSError(f"no seccomp filter for architecture {machine}")
    _, audit_arch, x32_bit = _ARCHES[machine]

    def nr(name: str) -> int | None:
        found = numbers([name], machine)
        return found[0] if found else None

    asm = _Assembler()
    asm.load(_OFF_ARCH)
    asm.jump(_JEQ_K, audit_arch, "arch_ok", None)
    asm.ret(_RET_KILL_PROCESS)
    asm.label("arch_ok")
    asm.load(_OFF_NR)
    if x32_bit is not None:
        asm.jump(_JGE_K, x32_bit, None, "abi_ok")
        asm.ret(_RET_KILL_PROCESS)
        asm.label("abi_ok")

    def by_argument(name: str, body) -> None:
        """Jump into ``body`` (which must end in returns) for syscall ``name``."""
        number = nr(name)
        if number is None:
            return
        asm.jump(_JEQ_K, number, None, f"after_{name}")
        body()
        asm.label(f"after_{name}")

    def clone_body():  # threads only, never a namespace
        asm.load(_off_arg(0))
        asm.jump(_JSET_K, _CLONE_THREAD, None, "clone_no")
        asm.jump(_JSET_K, _CLONE_NEW_NAMESPACES, "clone_no", None)
        asm.ret(_RET_ALLOW)
        asm.label("clone_no")
        asm.ret(EPERM)

    def ioctl_body():
        asm.load(_off_arg(1))
        asm.jump(_JEQ_K, _TIOCSTI, "ioctl_no", None)
        asm.jump(_JEQ_K, _TIOCLINUX, "ioctl_no", None)
        asm.ret(_RET_ALLOW)
        asm.label("ioctl_no")
        asm.ret(EPERM)

    def prlimit_body():  # pid 0: the caller (other processes' limits are not its business)
        asm.load(_off_arg(0))
        asm.jump(_JEQ_K, 0, None, "prlimit_no")
        asm.ret(_RET_ALLOW)
        asm.label("prlimit_no")
        asm.ret(EPERM)

    def own_pid_body(name):
        def body():
            asm.load(_off_arg(0))
            asm.jump(_JEQ_K, own_pid, None, f"{name}_no")
            asm.ret(_RET_ALLOW)
            asm.label(f"{name}_no")
            asm.ret(EPERM)

        return body

    by_argument("clone", clone_body)
    by_argument("ioctl", ioctl_body)
    by_argument("prlimit64", prlimit_body)
    signals = ["kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"]
    if own_pid is not None:
        for name in signals:
            by_argument(name, own_pid_body(name))
        asm.returns_for(numbers(["tkill"], machine), EPERM, "tkill")
    else:
        asm.returns_for(numbers([*signals, "tkill"], machine), _RET_ALLOW, "signal")
    asm.returns_for(numbers(DENIED, machine), EPERM, "deny")
    asm.returns_for(numbers(FALLS_BACK, machine), ENOSYS, "fallback")
    asm.returns_for(numbers(ALLOWED, machine), _RET_ALLOW, "allow")
    asm.ret(ENOSYS)
    return asm.assemble()


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
