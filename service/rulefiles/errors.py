"""Errors in rule files, each at a file, line and column."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RuleFileError:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleSetError(Exception):
    """A scheme folder (or rules directory) that cannot be loaded; nothing of it is used."""

    def __init__(self, errors: list[RuleFileError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(map(str, self.errors)))
