"""The one exception type for problems a user can cause and fix (bad file, unsupported op, too big...).

The command line prints its message as a single line and exits with code 2; anything else is a bug.
"""


class UserError(Exception):
    """A problem with the user's model, data or options; the message names the cause and the fix."""


class UnsupportedError(UserError):
    """The model uses an operator or an attribute value that mcucompile does not support."""
