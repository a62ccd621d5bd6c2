"""The durable-rules adapter: the only module that imports durable-rules.

durable-rules 2.0.28 is an unmaintained C extension (see
shared/notes/durable-rules.md).  This module calls its C layer directly,
following the pattern that held up under measurement:

- one process-wide lock around every C call (they hold the GIL anyway);
- a fresh session id per evaluation; an always-matching ``open`` marker is
  asserted alone first, which initialises the session's action context (a
  session created by an unmatched fact crashes on ``delete_state``);
- all facts plus an always-matching ``close`` marker in one batch: if the
  close marker does not fire, the engine silently dropped part of the batch,
  and the evaluation is an error, never a score;
- actions drained synchronously, ``delete_state`` in ``finally``;
- numbers written as plain decimal text (the engine cannot parse ``1e+16``);
- a changed scheme compiles under a new ruleset name and the old one is
  released with ``delete_ruleset``.

Crashes and hangs inside the C code cannot be caught here; ``pool.py`` runs
this module in worker processes and contains them.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Sequence
from decimal import Decimal
from json.decoder import scanstring

import durable_rules_engine as _engine

from service.domain.conditions import AllOf, Comparison, Condition
from service.domain.numbers import plain

OPEN, CLOSE = "$open", "$close"
_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
ENGINE_VERSION = "durable-rules 2.0.28"

_lock = threading.Lock()
_sessions = itertools.count(1)


class EngineError(RuntimeError):
    """The engine did not evaluate the facts completely; no score may be given."""


def dumps(value) -> str:
    """JSON with decimals as plain digits (never exponent form, never a float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = plain(value)
        return text if "." in text else text  # integers are fine as they are
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if value is None:
        return "null"
    raise TypeError(f"cannot send {type(value).__name__} to the engine")


@functools.lru_cache(maxsize=65536)
def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False) + ":"


#: text values as JSON: mostly the clauses' group names, the same few for every unit (``json.dumps``
#: with an argument builds an encoder on every call)
_text = functools.lru_cache(maxsize=4096)(functools.partial(json.dumps, ensure_ascii=False))


def dumps_fact(fact: dict) -> str:
    """``dumps`` for the flat facts of an evaluation (the hot path): same output, less work.

    Most values are operands (decimals), written in the same expression as their key; the group
    name and the yes/no values by ``_value``."""
    return (
        "{"
        + ",".join(
            [
                _key(name) + (plain(value) if value.__class__ is Decimal else _value(value))
                for name, value in fact.items()
            ]
        )
        + "}"
    )


def _value(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is str:
        return _text(value)
    return dumps(value)


def _test(cond: Condition) -> dict:
    if isinstance(cond, Comparison):
        if cond.op == "==":
            return {cond.operand: cond.value}
        return {_OPS[cond.op]: {cond.operand: cond.value}}
    parts = [_test(p) for p in cond.parts]
    if isinstance(cond, AllOf):
        return {"$and": parts}
    if not parts:  # an empty "or" never holds
        return {"$and": [{"group": "$never"}]}
    return {"$or": parts}


def compile_ruleset(matches: Sequence) -> dict:
    """durable-rules JSON ruleset: one rule per match key, group equality first."""
    rules = {
        OPEN: {"all": [{"m": {"$t": OPEN}}]},
        CLOSE: {"all": [{"m": {"$t": CLOSE}}]},
    }
    for m in matches:
        cond = _test(m.condition)
        parts = [{"group": m.group}] + ([cond] if cond != {"$and": []} else [])
        rules[m.key] = {"all": [{"m": {"$and": parts} if len(parts) > 1 else parts[0]}]}
    return rules


class Ruleset:
    """One compiled scheme version living in this process's engine."""

    _names = itertools.count(1)

    def __init__(self, key: str, definition: dict):
        self.key = key
        self.name = f"r{next(self._names)}"  # names can never be registered twice
        with _lock:
            self.handle = _engine.create_ruleset(self.name, dumps(definition))
        self.released = False
        #: a session opened ahead of the next evaluation (``open_ahead``), as (sid, fact head)
        self._ready: tuple[str, str] | None = None
        #: the session of the evaluation just answered, deleted by ``open_ahead``
        self._spent: str | None = None

    def release(self) -> None:
        with _lock:
            if not self.released:
                for sid in (self._ready[0] if self._ready else None, self._spent):
                    if sid is not None:
                        _engine.delete_state(self.handle, sid)
                self._ready = self._spent = None
                _engine.delete_ruleset(self.handle)
                self.released = True

    def _drain(self, state_handle) -> list[str]:
        fired = []
        result = _engine.start_action_for_state(self.handle, state_handle)
        while result:
            # a message is {"<rule name>": {<the matched fact>}}: read only the name
            message = result[1]
            if message.startswith('{"'):
                fired.append(scanstring(message, 2)[0])
            else:  # pragma: no cover - never seen; decode it the slow way
                fired.extend(json.loads(message).keys())
            following = _engine.complete_and_start_action(self.handle, state_handle)
            result = (None, following) if following else None
        return fired

    def _open(self) -> tuple[str, str]:
        """A fresh session, initialised by the open marker asserted alone (under ``_lock``).

        The engine builds a session's state at its first fact, in time growing with the
        ruleset (about 40 % of an evaluation of the largest seed scheme): ``open_ahead`` does
        it while the worker waits for its next call."""
        sid = f"s{next(_sessions)}"
        head = f'{{"sid":"{sid}","id":"'
        try:
            code, state = _engine.assert_fact(self.handle, f'{head}open","$t":"{OPEN}"}}')
            if OPEN not in self._drain(state):
                raise EngineError("会话初始化失败：开始标记未触发")
        except BaseException:
            _engine.delete_state(self.handle, sid)
            raise
        return sid, head

    def open_ahead(self) -> None:
        """Between calls, off the caller's time: delete the state of the session just answered
        (``evaluate_raw(keep=True)``) and open the next evaluation's session.  It is as fresh as
        one opened at the call (nothing else is ever asserted into it), so units still never
        share a session.  A failure to open is left for the call to meet and report."""
        with _lock:
            spent, self._spent = self._spent, None
            if spent is not None and not self.released:
                _engine.delete_state(self.handle, spent)
            if self._ready is None and not self.released:
                try:
                    self._ready = self._open()
                except EngineError:
                    pass

    def evaluate_raw(self, facts_json: Sequence[str], keep: bool = False) -> set:
        """Evaluate facts already serialised as JSON objects (no sid/id); fired rule names.

        ``keep``: the session's state is deleted by ``open_ahead`` rather than now (the worker
        answers first), except after a failure, when it is deleted at once as always."""
        with _lock:
            ready, self._ready = self._ready, None
            sid, head = ready if ready is not None else self._open()
            done = False
            try:
                body = [head + f'f{i}",' + text[1:] for i, text in enumerate(facts_json)]
                body.append(f'{head}close","$t":"{CLOSE}"}}')
                code, state = _engine.assert_facts(self.handle, "[" + ",".join(body) + "]")
                fired = set(self._drain(state))
                if CLOSE not in fired:
                    raise EngineError("规则引擎未处理完全部事实（结束标记未触发），本次不计分")
                done = True
            finally:
                if keep and done:
                    self._spent = sid
                else:
                    _engine.delete_state(self.handle, sid)
        fired.discard(CLOSE)
        return fired

    def evaluate(self, facts: Sequence[dict]) -> set:
        return self.evaluate_raw([dumps_fact(f) for f in facts])


class InProcessMatcher:
    """durable-rules in this very process, no containment: for the worker and for tests."""

    name = ENGINE_VERSION

    def __init__(self):
        self._rulesets: dict[str, Ruleset] = {}

    def ruleset(self, key: str, matches) -> Ruleset:
        rs = self._rulesets.get(key)
        if rs is None:
            rs = self._rulesets[key] = Ruleset(key, compile_ruleset(matches))
        return rs

    def release(self, key: str) -> None:
        rs = self._rulesets.pop(key, None)
        if rs is not None:
            rs.release()

    def match(self, scheme, batch):
        rs = self.ruleset(scheme.program_name, scheme.matches)
        return [rs.evaluate(facts) for facts in batch]
