"""The one error type users see: it names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class WsssError(Exception):
    """A user-facing error about one input.

    Args:
        problem: What is wrong, in a few words.
        path: The file or folder concerned, if any.
        hint: How to fix it, if known.

    The CLI prints ``str(err)`` as a single line and exits non-zero.
    """

    def __init__(self, problem: str, path: str | Path | None = None, hint: str | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path is not None else self.problem
        if self.hint:
            text += f" ({self.hint})"
        return text.replace("\n", " ")
