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
c.GraderSettings.memory_mb = 2048  # address-space limit per submission process
c.GraderSettings.workers = 2  # submissions graded at the same time
# "from scratch" means from scratch: these packages are invisible to submissions
# (the tests themselves still use them as references)
c.GraderSettings.hidden_packages = [
    "scipy",
    "keras",
    "tensorflow",
    "tf_keras",
    "torch",
    "jax",
    "jaxlib",
    "sklearn",
    "skimage",
    "cv2",
    "cnn_course",  # the chapters' reference code (conv_numpy, backprop_numpy) answers A1 and A2
]
# imported once per grading worker so that each submission does not pay for them
c.GraderSettings.warm_imports = ["numpy", "scipy.signal", "keras"]
# Per-assignment overrides of the settings above (workers, cell_timeout,
# notebook_timeout, trusted_timeout, memory_mb, hidden_packages, warm_imports), for
# example, for an assignment whose students build Keras models inside the sandbox
# (TensorFlow needs about 1.5 GB of address space and 10-20 s to start):
#   c.GraderSettings.assignments = {
#       "a9_keras_models": {"hidden_packages": ["torch", "jax"], "notebook_timeout": 180},
#   }
c.GraderSettings.assignments = {}
