"""The result type of every exercise checker."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Feedback:
    """Outcome of an exercise check: ``ok`` and a message saying why.

    ``bool(feedback)`` is ``feedback.ok``; the repr shows the message, so a notebook cell
    that ends with ``check_...(answer)`` prints it.
    """

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return ("✅ Correct. " if self.ok else "❌ Not yet. ") + self.message

    __repr__ = __str__

    @classmethod
    def right(cls, message: str = "") -> "Feedback":
        return cls(True, message)

    @classmethod
    def wrong(cls, message: str) -> "Feedback":
        return cls(False, message)
