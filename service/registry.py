"""The schemes being served, swapped all-or-nothing when the rules change.

``reload`` reads the whole rules directory; if any file has any error, the
current schemes keep serving and the errors are raised.  If it loads, the new
set replaces the old in one assignment, and each scheme version no longer
served is retired from the engine (its memory released).  Every version ever
loaded stays known by its hash, so a stored score can be replayed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from service.domain.model import Scheme
from service.rulefiles.loader import load_all


class Registry:
    def __init__(self, rules_dir: Path, engine=None):
        self.rules_dir = Path(rules_dir)
        self.engine = engine
        self._current: dict[str, Scheme] = {}
        self._versions: dict[str, Scheme] = {}  # version hash -> scheme
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
            merged = {sid: self._versions.get(s.version, s) for sid, s in fresh.items()}
            for s in merged.values():
                self._versions.setdefault(s.version, s)
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
        return self._versions.get(version)

    def remember(self, scheme: Scheme) -> None:
        """Keep an old version (reloaded from the database) for replays."""
        with self._lock:
            self._versions.setdefault(scheme.version, scheme)
