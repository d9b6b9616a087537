"""fastopt's exception types, in a module of their own so that every other module can raise
them without importing the optimizers (``fastopt.optim`` and ``fastopt`` re-export them)."""

from __future__ import annotations

__all__ = ["NonFiniteGradientError"]


class NonFiniteGradientError(ValueError):
    """A gradient passed to ``step`` holds a NaN or an infinity (``nonfinite="raise"``)."""
