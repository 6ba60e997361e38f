# nbgrader configuration for the course, read by grader (grader/config.py).
#
# The grader loads this file explicitly, so every `grader ...` command behaves the
# same from any directory. Relative source/release folders are taken relative to
# the repository root; the course folder (student data, gradebook) is chosen by
# the instructor with `--course DIR` (or $GRADER_COURSE) and never committed.
c = get_config()  # noqa: F821  (provided by traitlets when the file is loaded)

# nbgrader's SaveCells always uses the gradebook's default course: keep them in step
c.CourseDirectory.course_id = "default_course"
# nbgrader's "source" folder: solutions and hidden tests (instructors only)
c.CourseDirectory.source_directory = "solutions"
# nbgrader's "release" folder: generated student versions, committed
c.CourseDirectory.release_directory = "assignments"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
# files in a source folder that never go to students
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.bak"]

# ---------------------------------------------------------------- grader's own settings
# Limits for one submission (see grader/README.md, "What a submission can do").
c.GraderSettings.cell_timeout = 30  # seconds per cell and per test cell
c.GraderSettings.notebook_timeout = 120  # seconds for one notebook, startup included
# seconds of the tests' own code per test cell in the trusted runner (references,
# models built from student data); past it the test counts 0
c.GraderSettings.trusted_timeout = 120
# memory per submission process: its memory cgroup's limit where the machine has one
# (counts everything it holds), and its address-space limit (RLIMIT_AS)
c.GraderSettings.memory_mb = 2048
c.GraderSettings.address_space_mb = 0  # RLIMIT_AS if not memory_mb (TensorFlow: see below)
c.GraderSettings.runner_memory_mb = 4096  # each trusted test runner (builds student models)
c.GraderSettings.workers = 2  # submissions graded at the same time
# What a submission can import besides the standard library: distribution names
# ("keras") or top-level package names ("tensorflow"), each with everything it depends
# on (IPython and NumPy, which the worker itself needs, always). Everything else
# installed, in the virtual environment, the base interpreter or the system, is
# invisible in the bubblewrap sandbox: "from scratch" means from scratch.
c.GraderSettings.sandbox_packages = ["numpy"]
# Never visible, even as a dependency of an allowed package (the tests still use them).
c.GraderSettings.hidden_packages = [
    "scipy",
    "torch",
    "jax",
    "jaxlib",
    "sklearn",
    "skimage",
    "cv2",
    "cnn_course",  # the chapters' helper package must never answer an assignment
]
# imported once per grading worker so that each submission does not pay for them
c.GraderSettings.warm_imports = ["numpy", "scipy.signal", "keras"]
# Per-assignment overrides of the settings above (workers, cell_timeout,
# notebook_timeout, trusted_timeout, memory_mb, address_space_mb, runner_memory_mb,
# sandbox_packages, hidden_packages, warm_imports). An assignment whose students
# use Keras in the sandbox (A4-A6) gets KERAS_SANDBOX: Keras with the TensorFlow
# backend importable, a 3 GB memory cgroup and room for the address space
# TensorFlow reserves (grader/README.md, "Keras in the sandbox"). Another example:
# {"a9_x": {"sandbox_packages": ["numpy", "scipy"], "hidden_packages": []}}.
from grader.config import KERAS_SANDBOX  # noqa: E402

c.GraderSettings.assignments = {
    "a4_small_cnn_budget": KERAS_SANDBOX,
    "a5_functional_api": KERAS_SANDBOX,
    "a6_transfer_learning": KERAS_SANDBOX,
}
