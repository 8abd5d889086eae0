"""Errors the CLI turns into a message and an exit code, never a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user (arguments, files, scenario): exit 2 with this message."""

    exit_code = EXIT_USAGE


class InputError(UsageError):
    """A file that cannot be read or parsed; the message names file, line and column."""
