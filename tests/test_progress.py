"""grader.progress: a live bar on a terminal, plain lines in a log (CI)."""

from __future__ import annotations

import io

from grader.progress import Progress, clock


def test_clock_formats_durations():
    assert clock(0) == "0:00" and clock(61.4) == "1:01" and clock(3725) == "1:02:05"


def test_not_a_terminal_gets_plain_lines_and_a_status_every_tenth():
    out = io.StringIO()
    bar = Progress(20, "students", stream=out)  # StringIO.isatty() is False
    assert not bar.tty
    for i in range(20):
        bar.log(f"  s{i:02d}: 100/100")
        bar.advance(failed=i == 3)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text  # nothing redrawn in a log
    lines = text.splitlines()
    assert lines[0] == "  s00: 100/100"
    status = [line for line in lines if line.startswith("progress: ")]
    assert len(status) == 10  # one per tenth of the batch
    assert status[0].startswith("progress: 2/20 students (10%)") and "left" in status[0]
    assert status[-1].startswith("progress: 20/20 students (100%)") and "1 failed" in status[-1]
    assert "left" not in status[-1]


def test_a_terminal_gets_one_line_redrawn_in_place_with_counts_and_time_left():
    out = io.StringIO()
    bar = Progress(10, "students", stream=out, tty=True, tick=None)
    bar.started -= 20  # 20 s spent so far
    bar.advance()
    bar.advance(current="s002")
    text = out.getvalue()
    assert "\r\x1b[K[" in text  # the line is cleared and redrawn
    last = text.rsplit("\r\x1b[K", 1)[1]
    assert "2/10 students" in last and "0:20" in last and "1:20 left" in last
    assert "s002" in last and "\n" not in last
    bar.log("  s001: 5/5")
    assert "\r\x1b[K  s001: 5/5\n" in out.getvalue()  # above the bar, which is redrawn
    bar.close()
    assert out.getvalue().endswith("\r\x1b[K")  # the bar is gone when the batch ends


def test_time_left_is_the_mean_time_per_item_times_the_items_left():
    bar = Progress(8, stream=io.StringIO())
    assert bar.left() is None
    bar.started -= 30
    bar.advance(3)
    assert 49 <= bar.left() <= 51  # 10 s each, 5 left
