"""Whether the sandbox holds here: tried from inside a real one (``grader check-sandbox``).

``run_checks(box, mode)`` starts grader._probe in a worker's sandbox, exactly as
a submission would run (same launcher, user, limits, seccomp filter and, with
bubblewrap, the same mounts), lets it try what an escape needs, looks at its
processes from outside, and returns one ``Check`` per property. The grader
grades in bubblewrap only when every check passes there (a missing memory
cgroup is only reported: the address-space limit then bounds memory); the
fallback must at least pass ``FALLBACK_REQUIRED`` (and, when the grader runs as
root, the Python installation must be read-only for it).
"""

from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass

from .sandbox import PROBE_BOOT, Sandbox, _site_dirs_cached

REFUSED = {errno.EPERM, errno.ENOSYS}
FALLBACK_REQUIRED = {
    "starts",
    "unprivileged user",
    "no capabilities",
    "no remount",
    "new mount calls refused",
    "no new namespaces",
    "memfd_create refused",
    "no network",
    "no new processes",
}
INFORMATIONAL = {"memory cgroup"}  # without one, RLIMIT_AS limits memory (memfd is refused)
PROBE_TIMEOUT = 120.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok ' if self.ok else 'NO '} {self.name}: {self.detail}"


def failures(checks: list[Check], mode: str) -> list[str]:
    """The checks ``mode`` needs that failed, as short sentences."""
    required = {c.name for c in checks} - INFORMATIONAL
    if mode == "rlimits":
        required &= FALLBACK_REQUIRED | ({"python read-only"} if os.geteuid() == 0 else set())
    return [f"{c.name}: {c.detail}" for c in checks if c.name in required and not c.ok]


def _host_uids(pid: int) -> dict[int, list[int]]:
    """Real, effective, saved and file-system uids of ``pid`` and its descendants."""
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            out[p] = [int(u) for u in uids]
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return out


def _read_line(fd: int, deadline: float) -> bytes:
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("the probe did not answer in time")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise EOFError("the probe ended without answering")
        buf += chunk
    return buf.split(b"\n", 1)[0]


def run_checks(box: Sandbox, mode: str) -> list[Check]:
    """Start the probe sandboxed in ``mode`` and judge what it could do."""
    site = str(_site_dirs_cached(box.python)[0])
    scan = "scan" if mode == "bubblewrap" else "no-scan"
    try:
        worker = box.start(mode, PROBE_BOOT, [site, scan], stderr=subprocess.PIPE)
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("starts", False, f"could not start the sandbox ({exc})")]
    found = uids = error = None
    try:
        line = _read_line(worker.from_child, time.monotonic() + PROBE_TIMEOUT)
        uids = _host_uids(worker.proc.pid)
        found = json.loads(line)
    except (OSError, EOFError, TimeoutError, ValueError) as exc:
        error = str(exc)
    worker.kill()
    err = worker.proc.stderr.read(4000).decode(errors="replace").strip().splitlines()
    worker.proc.stderr.close()
    if found is None:
        return [Check("starts", False, f"the sandbox did not start: {err[-1] if err else error}")]
    return judge(found, uids, box, mode)


def _refused(result: int | None) -> bool:
    return result in REFUSED


def judge(found: dict, uids: dict[int, list[int]], box: Sandbox, mode: str) -> list[Check]:
    """One Check per property from the probe's findings and the processes' host uids."""
    checks = [Check("starts", True, f"{mode} sandbox started")]
    inside = {found["uid"], found["euid"]}
    outside = sorted({u for us in uids.values() for u in us})
    checks.append(
        Check(
            "unprivileged user",
            0 not in inside and bool(outside) and 0 not in outside,
            f"uid {found['uid']} inside, uids {outside} on the host",
        )
    )
    caps = {k: v for k, v in found["capabilities"].items() if k in ("CapEff", "CapPrm", "CapAmb")}
    checks.append(
        Check(
            "no capabilities",
            not any(caps.values()),
            ", ".join(f"{k} {v:#x}" for k, v in caps.items()),
        )
    )
    checks.append(
        Check(
            "no remount",
            found["remount"] is not None,
            "remounting the virtual environment writable "
            + ("succeeded" if found["remount"] is None else f"failed ({_name(found['remount'])})"),
        )
    )
    calls = found["new_mount_calls"]
    checks.append(
        Check(
            "new mount calls refused",
            all(_refused(v) for v in calls.values()),
            ", ".join(f"{k} {'ran' if v is None else _name(v)}" for k, v in calls.items()),
        )
    )
    ns = {k: found[k] for k in ("unshare_user", "unshare_mount")}
    checks.append(
        Check(
            "no new namespaces",
            all(v is not None for v in ns.values()),
            ", ".join(f"{k} {'ran' if v is None else _name(v)}" for k, v in ns.items()),
        )
    )
    checks.append(
        Check(
            "memfd_create refused",
            _refused(found["memfd_create"]),
            "memfd_create " + ("ran" if found["memfd_create"] is None else "refused"),
        )
    )
    written = [f for f, err in found["write"].items() if err is None]
    checks.append(
        Check(
            "python read-only",
            not written,
            f"wrote into {', '.join(written)}" if written else "site-packages, prefixes, /usr",
        )
    )
    checks.append(Check("no network", found["socket"] is not None, "socket() refused"))
    checks.append(Check("no new processes", found["fork"] is not None, "fork() refused"))
    if mode == "bubblewrap":
        writable = [m for m in found["writable_mounts"] if not _expected_writable(m)]
        checks.append(
            Check(
                "read-only mounts",
                not writable,
                f"writable: {', '.join(writable)}" if writable else "all but /tmp (and devices)",
            )
        )
        view = box.view().visible
        extra = {
            folder: sorted(set(names) - set(view.get(folder, ())))
            for folder, names in found["package_folders"].items()
        }
        extra = {k: v for k, v in extra.items() if v}
        checks.append(
            Check(
                "only allowed packages",
                not extra,
                "; ".join(f"{k} has {', '.join(v[:5])}" for k, v in extra.items())
                or f"{len(found['package_folders'])} package folders show only "
                f"{len(box.view().distributions)} distributions",
            )
        )
    if box.groups is not None:
        checks.append(
            Check("memory cgroup", True, f"{box.cfg.memory_mb} MB per worker ({box.groups!r})")
        )
    else:
        checks.append(
            Check("memory cgroup", False, f"address-space limit only: {box.memory_reason}")
        )
    return checks


def _expected_writable(mount: str) -> bool:
    """/tmp, and device nodes bubblewrap binds into its read-only /dev (writing them is I/O)."""
    point, _, fstype = mount.partition(" ")
    return point == "/tmp" or fstype in ("(devtmpfs)", "(devpts)")


def _name(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def check_sandbox(settings) -> tuple[bool, str]:
    """(whether bubblewrap holds, a report of every check) for GraderSettings ``settings``."""
    from .sandbox import SandboxConfig

    box = Sandbox(SandboxConfig.from_settings(settings, mode="auto"), choose=False)
    who = f"uid {box.user[0]} (the grader runs as root)" if box.user else f"uid {os.getuid()}"
    lines = [f"submissions run as {who}; sandbox_packages: {list(box.cfg.packages) or 'none'}"]
    lines += ["bubblewrap:"] + [f"  {c}" for c in box.checks("bubblewrap")]
    problem = box.bubblewrap_problem()
    if problem is None:
        lines.append(
            "bubblewrap holds here: submissions are isolated (no capabilities, unprivileged, "
            "read-only mounts, no network, only the allowed packages)"
        )
        return True, "\n".join(lines)
    lines += ["fallback (--sandbox rlimits):"] + [f"  {c}" for c in box.checks("rlimits")]
    failed = failures(box.checks("rlimits"), "rlimits")
    if failed:
        lines.append("the grader refuses to grade here: even the fallback does not hold")
    else:
        lines.append(box.fallback_warning(problem))
    return False, "\n".join(lines)
