"""Errors raised when FastV cannot give a correct result; each message says what to change."""


class FastVError(ValueError):
    """A setting or input FastV cannot run correctly."""


class UnsupportedModelError(FastVError):
    """The model's family has no FastV adapter."""
