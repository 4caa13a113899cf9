"""The one exception family for problems a user can fix.

Every layer raises a ``FleetError`` subclass with a message that names the file,
the field and the fix; the CLI prints it as one line and exits non-zero.
"""


class FleetError(Exception):
    """A user-fixable problem; ``str(error)`` is the whole message shown."""
