"""``grader``: thin command line over the grader library (see grader/README.md).

    grader release [ASSIGNMENT ...] [--check]
    grader collect ASSIGNMENT SOURCE --course DIR [--pattern RE] [--roster CSV]
    grader autograde ASSIGNMENT --course DIR [--student ID ...] [--workers N | --scheduler ADDR]
    grader feedback ASSIGNMENT --course DIR [--student ID ...]
    grader export --course DIR [--assignment A ...] [--out DIR]
    grader check-leaks PATH ...
    grader check-leaks --behaviour [--assignment A ...]
    grader check-sandbox [--assignment A]

Exit codes: 0 success, 1 other grader error, 2 bad option or missing folder,
3 a student-facing file would leak solutions or hidden tests, 4 assignments/ is
stale, 5 a source notebook breaks the assignment rules, 6 bubblewrap required but
unavailable, 7 submissions could not be imported (or none were), 8 grading
infrastructure failed for some students (the others were graded), 9 feedback or
export skipped some students' records (the others were written), 10 the Dask
scheduler given with --scheduler cannot be reached, 130 or 143 interrupted
(Ctrl-C or SIGTERM; the students graded so far are saved).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import config as config_mod
from .errors import (
    CollectError,
    ConfigError,
    GraderError,
    GradingError,
    LeakError,
    SandboxUnavailable,
)
from .text import safe_line, safe_text


def _common(p: argparse.ArgumentParser, course: bool = True) -> None:
    if course:
        p.add_argument(
            "--course",
            metavar="DIR",
            help=f"course folder for student data (default: ${config_mod.COURSE_ENV})",
        )
    p.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="extra nbgrader_config.py loaded over grader/nbgrader_config.py",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Release, collect, autograde, feedback and export "
        "for the course's nbgrader assignments.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; fail if assignments/ differs from regeneration",
    )
    _common(p, course=False)

    p = sub.add_parser("collect", help="import submissions from a folder or zip")
    p.add_argument("assignment")
    p.add_argument("source", type=Path, help="folder or .zip of submitted notebooks")
    p.add_argument("--pattern", help="regex with a (?P<student>...) group, matched on file names")
    p.add_argument("--roster", type=Path, help="CSV of student ids (column student_id or id)")
    _common(p)

    p = sub.add_parser("autograde", help="grade submissions in isolation")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", metavar="ID", help="only this student (repeat)")
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes on this machine (default 2); ignored with --scheduler",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the workers of this Dask scheduler (tcp://host:8786, or the "
        "file `dask scheduler --scheduler-file` wrote) instead of this machine's cores",
    )
    p.add_argument(
        "--regrade",
        action="store_true",
        help="grade every student again (default: skip those already graded from their "
        "current submission with the same tests and limits)",
    )
    p.add_argument("--cell-timeout", type=float, metavar="S", help="seconds per cell")
    p.add_argument("--notebook-timeout", type=float, metavar="S", help="seconds per notebook")
    p.add_argument("--memory-mb", type=int, metavar="MB", help="memory limit per submission")
    p.add_argument(
        "--sandbox",
        choices=("auto", "bubblewrap", "rlimits"),
        help="auto (default): bubblewrap if it works here, else a loud fallback",
    )
    _common(p)

    p = sub.add_parser("feedback", help="per-student HTML feedback without test code")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", metavar="ID", help="only this student (repeat)")
    _common(p)

    p = sub.add_parser("export", help="grades CSV, summary and grade-distribution figure")
    p.add_argument("--assignment", action="append", metavar="A", help="only this assignment")
    p.add_argument("--out", type=Path, help="output folder (default: <course>/exports)")
    p.add_argument(
        "--canvas-id",
        choices=("ID", "SIS User ID", "SIS Login ID"),
        default="ID",
        help="the canvas.csv column that holds the student id (default: ID, Canvas's user id)",
    )
    _common(p)

    p = sub.add_parser("check-leaks", help="scan files for solution code or hidden tests")
    p.add_argument("paths", nargs="*", type=Path)
    p.add_argument(
        "--no-markers",
        action="store_true",
        help="ignore nbgrader marker words (e.g. for docs that mention them)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="flag any single shared line, not only 3 lines of one block",
    )
    p.add_argument(
        "--behaviour",
        action="store_true",
        help="run the assignments' tests against every function of the helper package "
        "and the chapters instead of scanning files",
    )
    p.add_argument("--assignment", action="append", metavar="A", help="only this assignment")
    p.add_argument(
        "--package",
        action="append",
        metavar="NAME",
        help="with --behaviour: package whose functions are tried (default: cnn_course)",
    )
    p.add_argument(
        "--chapters",
        type=Path,
        metavar="DIR",
        help="with --behaviour: folder of chapter notebooks (default: chapters/)",
    )
    _common(p, course=False)

    p = sub.add_parser(
        "check-sandbox",
        help="try from inside a real sandbox what a submission could do; exit 6 unless "
        "bubblewrap holds",
    )
    p.add_argument("--assignment", help="with this assignment's settings (sandbox_packages, ...)")
    _common(p, course=False)
    return parser


def _run(args) -> int:
    cfg = config_mod.load_config(args.config)
    paths = config_mod.resolve_paths(cfg, getattr(args, "course", None))

    if args.command == "release":
        from .release import release

        reports = release(cfg, paths, args.assignments or None, check=args.check)
        for r in reports:
            if args.check:
                print(f"{r.assignment}: assignments/ is up to date ({len(r.files)} files)")
            elif r.changed:
                print(f"{r.assignment}: regenerated {', '.join(r.changed)}")
            else:
                print(f"{r.assignment}: unchanged")
        return 0

    if args.command == "collect":
        from .collect import collect

        paths.check_assignment(args.assignment)
        notebooks = sorted(p.stem for p in (paths.source / args.assignment).glob("*.ipynb"))
        r = collect(paths, args.assignment, args.source, notebooks, args.pattern, args.roster)
        print(
            f"imported {len(r.imported)} submissions of {args.assignment} into "
            f"{paths.require_course() / 'submitted'}"
        )
        if r.unmatched:
            print(f"could not match {len(r.unmatched)} files:")
            for name, reason in r.unmatched:  # names as repr: a zip's names are the students'
                print(f"  {name!r}: {safe_line(reason)}")
        if not r.imported:
            raise CollectError(
                f"no submission of {args.assignment} could be imported from {args.source} "
                "(see above): check the file names, --pattern and --roster"
            )
        return 0

    if args.command == "autograde":
        from .autograde import autograde
        from .progress import Progress

        bar: list[Progress] = []

        def planned(to_grade: int, skipped: int) -> None:
            if skipped:
                print(
                    f"skipping {skipped} students already graded from their current "
                    "submission with these tests and limits (--regrade grades them again)",
                    flush=True,
                )
            bar.append(Progress(to_grade, "students", stream=sys.stdout))

        def progress(o):
            if o.status == "error":
                line = f"  {o.student}: ERROR {safe_line(o.error, 500)}"
            else:
                extra = f" ({o.status})" if o.status != "graded" else ""
                line = f"  {o.student}: {o.score:g}/{o.max_score:g}{extra} in {o.seconds:.1f} s"
            bar[0].log(line)
            bar[0].advance(failed=o.status == "error")

        try:
            report = autograde(
                cfg,
                paths,
                args.assignment,
                students=args.student,
                workers=args.workers,
                cell_timeout=args.cell_timeout,
                notebook_timeout=args.notebook_timeout,
                memory_mb=args.memory_mb,
                sandbox=args.sandbox,
                progress=progress,
                scheduler=args.scheduler,
                regrade=args.regrade,
                planned=planned,
            )
        finally:
            for b in bar:
                b.close()
        n = len(report.outcomes)
        rate = 60.0 * n / report.seconds if report.seconds else 0.0
        where = f"on {args.scheduler}" if args.scheduler else "on this machine"
        print(
            f"graded {n} submissions of {args.assignment} with {report.workers} workers "
            f"{where} in {report.seconds:.1f} s ({rate:.1f}/min); sandbox: {report.sandbox}"
        )
        if report.warning:
            print(report.warning, file=sys.stderr)
        if report.errors:
            raise GradingError(
                "grading failed (not the students' fault) for: "
                + ", ".join(o.student for o in report.errors)
                + f"; their previous grades are unchanged. See {paths.require_course()}"
                "/autograded/.logs/ and run again with --student."
            )
        return 0

    if args.command == "feedback":
        from .feedback import feedback

        written = feedback(paths, args.assignment, args.student)
        print(f"wrote {len(written)} feedback files under {paths.require_course() / 'feedback'}")
        return 0

    if args.command == "export":
        from .export import export

        st = config_mod.settings(cfg)
        r = export(paths, args.out, args.assignment, dict(st.lms_columns), args.canvas_id)
        print(f"wrote {r.csv} ({r.rows} rows), {r.summary} and {r.figure}")
        print(f"for the LMS: {r.canvas} (Canvas) and {r.moodle} (Moodle)")
        return 0

    if args.command == "check-leaks" and args.behaviour:
        from .behaviour import check_behaviour

        chapters = sorted(args.chapters.glob("*.ipynb")) if args.chapters else None
        report = check_behaviour(
            paths, args.assignment, packages=args.package, chapters=chapters
        )
        print(report.summary())
        if report.leaks:
            raise LeakError(
                f"{len(report.leaks)} test cells pass with a function students can read:\n  "
                + "\n  ".join(str(x) for x in report.leaks)
            )
        print("no function of the helper package or the chapters earns a point")
        return 0

    if args.command == "check-leaks":
        if not args.paths:
            raise ConfigError("check-leaks needs PATH ... (or --behaviour)")
        from .leaks import course_blocks, iter_files, scan_files

        files = iter_files(args.paths)
        leaks = scan_files(
            files,
            markers=not args.no_markers,
            blocks=course_blocks(paths.source),
            min_lines=1 if args.strict else 3,
        )
        if leaks:
            raise LeakError(
                f"{len(leaks)} leaks in {len(files)} files:\n  "
                + "\n  ".join(str(x) for x in leaks[:50])
            )
        print(f"no solution code or hidden tests in {len(files)} files")
        return 0

    if args.command == "check-sandbox":
        from .sandbox_check import check_sandbox

        assignment = args.assignment and paths.check_assignment(args.assignment)
        ok, report = check_sandbox(config_mod.settings(cfg, assignment))
        print(report, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else SandboxUnavailable.exit_code
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    try:
        return _run(args)
    except GraderError as exc:
        print(f"grader: error: {safe_text(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
