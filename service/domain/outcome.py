"""What scoring one rule gives: its points, its structured trace, and its sentence on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from .numbers import ZERO


class _Words(Protocol):
    _explanation: str | None
    _write: Callable | None


class _Worded:
    """``explanation`` is written on first access: scoring a batch computes the
    numbers and the structured trace; the sentences cost nothing until read."""

    TEXT = ("explanation",)
    __slots__ = ()
    # fields of each subclass (a slotted dataclass), declared here for the type checker
    _explanation: str | None
    _write: Callable | None

    @property
    def explanation(self) -> str:
        # the slots are the subclass's: written through the protocol, which the checker
        # does not hold to this class's empty __slots__
        state: _Words = self
        text = state._explanation
        if text is None:
            # the writer is given the object, not bound to it: no reference cycle, so a result
            # nobody reads is freed at once instead of waiting for the garbage collector
            text = state._explanation = self._write(self) if self._write is not None else ""
            state._write = None
        return text

    @explanation.setter
    def explanation(self, text: str) -> None:
        state: _Words = self
        state._explanation, state._write = text, None


@dataclass(slots=True)
class RuleOutcome(_Worded):
    #: the fields that are the same for every unit: ``trace.fixed_data``, held in ``_fixed``
    FIXED = ("rule", "kind", "title", "note")

    rule: str
    kind: str
    title: str
    fired: bool
    amount: Decimal = ZERO
    raw: Decimal | None = None  # before the rule's own cap
    capped: bool = False
    facts: dict = field(default_factory=dict)
    band: int | None = None
    note: str = ""
    _explanation: str | None = field(default=None, repr=False, compare=False)
    _write: Callable | None = field(default=None, repr=False, compare=False)
    # what the rule's block worked out on the way to its points (a measure, a count of steps),
    # kept for its sentence so that writing it later works nothing out a second time
    _why: tuple = field(default=(), repr=False, compare=False)
    #: the data of the ``FIXED`` fields, written once per rule (``trace.fixed_data``), or None
    _fixed: dict | None = field(default=None, init=False, repr=False, compare=False)


@dataclass(slots=True)
class PanelOutcome(RuleOutcome):
    """The outcome of a rule scored by a panel of reviewers: the panel's marks and mean besides
    (``domain.panel.PanelResult``).  A class of its own, so the traces of other rules are as
    they were, without a ``panel`` key."""

    panel: Any = None
