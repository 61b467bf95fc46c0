"""The one exception type a user sees as a clean message and a non-zero exit (no traceback)."""


class UserError(Exception):
    """Bad input: says what is wrong and how to fix it. ``run.py`` prints it and exits 2."""
