"""The submission's side of the sandbox (runs untrusted code; trusts nothing).

Started by grader.runner inside the sandbox (grader.sandbox). It reads a job
from fd ``IN``: the code cells to run, in order. It runs them in an IPython
shell (so magics work), reporting ``start``/``done`` for each, then serves
requests to call the submission's functions or read its variables, answering
with plain data (grader.wire). A function that a test passes as an argument
arrives as a stub: calling it asks the runner to call the real one, so the
submission learns the function's values, never its code (A2's gradient checks).

Nothing here is trusted by the grader: a submission can rewrite this module,
the wire format, numpy or builtins. The runner only ever believes data that
its own decoder rebuilt, and decides pass/fail in its own process.
"""

from __future__ import annotations

import io
import os
import sys
import traceback

CAP_OUTPUT = 16 * 1024


class CappedWriter(io.TextIOBase):
    """sys.stdout/sys.stderr replacement that keeps only the first CAP_OUTPUT chars."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = CAP_OUTPUT - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def flush(self):
        pass

    def take(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output dropped]"
        self.parts, self.size, self.dropped = [], 0, 0
        return text

    def isatty(self):
        return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.text:  # say which line, and show it
        line = exc.text.strip()[:300]
        return f"{type(exc).__name__}: {exc.msg} on line {exc.lineno} of the cell: {line}"
    msg = str(exc)
    if len(msg) > 2000:
        msg = msg[:2000] + " [...]"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _student_traceback(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    # only the submission's own frames (cells compiled by IPython)
    frames = [f for f in frames if "ipython-input" in f.filename or f.filename.startswith("<")]
    text = "".join(traceback.format_list(frames[-8:]))
    return text[-4000:]


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "nocolor"
    cfg.InteractiveShell.autocall = 0
    cfg.InteractiveShell.xmode = "Plain"
    return InteractiveShell.instance(config=cfg)


class GraderFunctionError(Exception):
    """A function the grader passed in (through a test) failed on the arguments given."""


def _grader_function(ref: int, channel):
    """What the submission receives for a function a test passes to it: calling it
    asks the runner to call the real one (which never leaves the runner)."""

    def grader_function(*args, **kwargs):
        from grader import wire

        try:
            frame = wire.encode({"ev": "callback", "id": ref, "args": args, "kwargs": kwargs})
        except wire.Unencodable as exc:
            raise TypeError(f"the grader's function accepts plain data only: {exc}") from None
        wire.send_bytes(channel.fd_out, frame)
        while True:
            msg = channel.recv()
            if msg.get("op") != "return":  # the function calls one of yours: answer that first
                channel.answer(msg)
                continue
            if msg.get("ok") is True:
                return msg.get("value")
            raise GraderFunctionError(
                f"the grader's function raised {msg.get('etype')} on the arguments given"
            )

    return grader_function


class Channel:
    """The submission's end of the protocol: requests in, results out."""

    def __init__(self, fd_in: int, fd_out: int, shell, out: CappedWriter):
        self.fd_in, self.fd_out, self.shell, self.out = fd_in, fd_out, shell, out

    def recv(self) -> dict:
        from grader import wire

        return wire.recv(self.fd_in, stub=lambda ref: _grader_function(ref, self))

    def answer(self, req: dict) -> None:
        """Call a function of the submission (or read a variable) and send the result."""
        from grader import wire

        op, name = req.get("op"), req.get("name")
        if op == "exit":
            os._exit(0)
        user_ns = self.shell.user_ns
        try:
            if name not in user_ns:
                raise NameError(f"name {name!r} is not defined in your notebook")
            obj = user_ns[name]
            if op == "call":
                if not callable(obj):
                    raise TypeError(f"{name} is not a function")
                value = obj(*req.get("args", ()), **req.get("kwargs", {}))
            else:
                value = obj
            try:
                frame = wire.encode({"ev": "result", "ok": True, "value": value}, where="")
            except wire.Unencodable as exc:
                what = "returned" if op == "call" else "holds"
                detail = str(exc).replace("['value']", "", 1).lstrip(": ")
                raise TypeError(
                    f"{name} {what} something that cannot be graded: {detail}"
                ) from None
        except BaseException as exc:  # noqa: BLE001 - report whatever the code raised
            frame = wire.encode(
                {
                    "ev": "result",
                    "ok": False,
                    "etype": type(exc).__name__,
                    "message": _describe(exc),
                    "traceback": _student_traceback(exc),
                }
            )
        sys.stdout = sys.stderr = self.out
        self.out.take()
        wire.send_bytes(self.fd_out, frame)


def main(fd_in: int, fd_out: int) -> None:
    # the protocol pipes are fds fd_in/fd_out; stdin/stdout/stderr go nowhere
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    out = CappedWriter()
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = sys.stderr = out

    from grader import wire

    wire.send(fd_out, {"ev": "hello", "pid": os.getpid()})
    job = wire.recv(fd_in)
    shell = _make_shell()
    for cell in job["cells"]:
        wire.send(fd_out, {"ev": "start", "cell": cell["id"]})
        try:
            result = shell.run_cell(cell["source"], store_history=False, silent=False)
            err = result.error_before_exec or result.error_in_exec
        except BaseException as exc:  # noqa: BLE001 - anything a cell can raise
            err = exc
        sys.stdout = sys.stderr = out  # a cell may have replaced them
        reply = {
            "ev": "done",
            "cell": cell["id"],
            "ok": err is None,
            "error": None if err is None else _describe(err),
            "output": out.take(),
        }
        wire.send(fd_out, reply)
    wire.send(fd_out, {"ev": "ready"})

    channel = Channel(fd_in, fd_out, shell, out)
    while True:
        channel.answer(channel.recv())
