"""The built-in probing tasks, one module each; every module defines ``TASK``."""
