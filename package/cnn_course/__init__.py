"""Helpers imported by the course notebooks: `from cnn_course import data`.

Submodules are imported on demand so that `import cnn_course` stays cheap and
never pulls in TensorFlow by itself.
"""

__version__ = "0.1.0"
