"""The run's own errors: each message is one line naming the problem and what to do next."""


class RunError(Exception):
    """A problem with the run folder, stated in one line with its fix."""


class RunAborted(Exception):
    """A part of the run that cannot be replaced died; one line says what and what next."""
