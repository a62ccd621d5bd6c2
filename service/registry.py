"""The schemes being served, swapped all-or-nothing when the rules change.

``reload`` reads the whole rules directory; if any file has any error, the
current schemes keep serving and the errors are raised.  If it loads, the new
set replaces the old in one assignment, and each scheme version no longer
served is retired from the engine (its memory released).  Any version stays
known by its hash while anything holds it, and a stored score replays from the
archive otherwise (``operations.scheme_by_version``).

What the registry itself holds: the versions it serves, and the ``KEPT`` versions
asked for by version lately that it does not serve (a round pinned to an earlier
version, a replay, a comparison), a version asked for while served among them once
it is no longer served.  It held every version it ever served or was handed: a web
worker grew 0.65 MiB a reload of an edited scheme (``tests/unit/test_reload_cache.py``).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from service.domain.model import Scheme
from service.rulefiles.loader import load_all


class Registry:
    #: versions not served held at most, the ones asked for by version last
    KEPT = 16

    def __init__(self, rules_dir: Path, engine=None):
        self.rules_dir = Path(rules_dir)
        self.engine = engine
        self._current: dict[str, Scheme] = {}
        # version hash -> scheme, of every version handed out while anything holds it: one
        # object per version (its plan and compiled parts made once)
        self._alive: weakref.WeakValueDictionary[str, Scheme] = weakref.WeakValueDictionary()
        self._asked: OrderedDict[str, Scheme] = OrderedDict()  # not served, asked for lately
        self._asked_served: set[str] = set()  # served versions asked for by version
        self._lock = threading.Lock()
        self.generation: int | None = None  # the published rule set (database row) this one serves

    def reload(self) -> dict:
        """Load the rules directory; return {scheme id: (old version, new version)} of what changed."""
        return self.swap(
            load_all(self.rules_dir)
        )  # raises RuleSetError, leaving everything as it was

    def swap(self, fresh: dict[str, Scheme]) -> dict:
        """Serve ``fresh`` (scheme id -> scheme) from now on; what changed, as ``reload`` says it."""
        with self._lock:
            old = self._current
            changes = {}
            for sid in sorted(set(old) | set(fresh)):
                before = old[sid].version if sid in old else None
                after = fresh[sid].version if sid in fresh else None
                if before != after:
                    changes[sid] = (before, after)
            # a version known already (still served, or served before) keeps its compiled object
            merged = {sid: self._alive.setdefault(s.version, s) for sid, s in fresh.items()}
            serving = {s.version for s in merged.values()}
            for s in old.values():
                if s.version not in serving and s.version in self._asked_served:
                    self._hold(s)  # a round pinned to it goes on scoring by it
            self._asked_served &= serving
            for version in serving:
                self._asked.pop(version, None)  # held as served
            self._current = merged
        if self.engine is not None:
            for sid, (before, after) in changes.items():
                if before is not None:
                    self.engine.retire(old[sid].program_name)
                if after is not None and hasattr(self.engine, "serve"):
                    self.engine.serve(merged[sid].program_name)  # it may have been retired before
        return changes

    def versions(self) -> dict[str, str]:
        """scheme id -> version hash, of what is served now."""
        return {sid: s.version for sid, s in self._current.items()}

    def schemes(self) -> dict[str, Scheme]:
        return dict(self._current)

    def get(self, scheme_id: str) -> Scheme | None:
        return self._current.get(scheme_id)

    def by_version(self, version: str) -> Scheme | None:
        """The version, if it is served, asked for lately or still held anywhere; asked for so,
        it is kept among the ``KEPT`` versions not served (and when it stops being served)."""
        with self._lock:
            scheme = self._alive.get(version)
            if scheme is not None:
                self._asked_for(scheme)
            return scheme

    def remember(self, scheme: Scheme) -> None:
        """Keep a version loaded to be asked for by version (from the database, for a replay or a
        round pinned to it; just published), among the ``KEPT`` versions not served."""
        with self._lock:
            self._asked_for(self._alive.setdefault(scheme.version, scheme))

    def _asked_for(self, scheme: Scheme) -> None:
        if any(s is scheme for s in self._current.values()):
            self._asked_served.add(scheme.version)
        else:
            self._hold(scheme)

    def _hold(self, scheme: Scheme) -> None:
        self._asked[scheme.version] = scheme
        self._asked.move_to_end(scheme.version)
        while len(self._asked) > self.KEPT:
            self._asked.popitem(last=False)
