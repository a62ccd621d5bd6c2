"""Where each fact of a score came from (issue 11): its value, the submission version it came from,
who entered or last changed it, as what (自评 / 评审 / 申诉更正), when, with what reason and evidence.

Derived on read from the unit's submissions, never stored: a score's stored trace and its hash
stay as they were written.  The source of a fact is the version in which its value last changed,
found by walking the unit's versions of the scheme in the score's round up to the scored version,
oldest first: one query for the versions, one for the names of their authors and one for the
appeal answers that made versions (a 更正 is a reviewed version, role "review", that an appeal
item names) — never one query per fact.
"""

from __future__ import annotations

from sqlalchemy import select

from . import operations as ops
from .access import Actor
from .db import Appeal, AppealItem, Score, Submission, Unit, User
from .exceptions import NotFound

#: as what a version was entered, in the pages' words
ROLE_WORDS = {"self": "自评", "review": "评审", "appeal": "申诉更正"}
_ABSENT = object()  # a fact a version does not have (distinct from any stored value, None included)


def _appeal_versions(s, unit_id: int, round_ids: set) -> dict:
    """{submission version: (appeal id, clause)} of the versions appeal answers (更正) made."""
    if not round_ids:
        return {}
    rows = s.execute(
        select(AppealItem.new_submission_version, Appeal.id, AppealItem.clause_id)
        .join(Appeal, Appeal.id == AppealItem.appeal_id)
        .where(
            Appeal.unit_id == unit_id,
            Appeal.round_id.in_(sorted(round_ids)),
            AppealItem.new_submission_version.is_not(None),
        )
    )
    return {version: (appeal, clause) for version, appeal, clause in rows}


def _names(s, user_ids: set) -> dict:
    if not user_ids:
        return {}
    return dict(
        s.execute(select(User.id, User.username).where(User.id.in_(sorted(user_ids)))).all()
    )


def _source(version: Submission, name: str, names: dict, appeals: dict) -> dict:
    """What one version says about one fact: who, when, as what, why, with what evidence."""
    appeal = appeals.get(version.version)
    role = "appeal" if appeal is not None else version.role
    own = (version.reasons or {}).get(name)
    return {
        "version": version.version,
        "submission_id": version.id,
        "round": version.round_id,
        "role": role,
        "role_words": ROLE_WORDS.get(role, role),
        "by": names.get(version.author_id, str(version.author_id)),
        "at": version.created_at,
        # the fact's own reason, else the version's general one (as the comparison of versions says)
        "reason": own or version.reason or "",
        "evidence": list((version.evidence or {}).get(name) or []),
        "appeal": appeal[0] if appeal is not None else None,
        "appeal_clause": appeal[1] if appeal is not None else None,
    }


def walk(versions: list, names: set, users: dict, appeals: dict) -> dict:
    """{fact: its provenance} over ``versions`` (oldest first, the last one the scored version):
    the value in the last version, and the source: the version where that value last changed
    (for a fact the last version lacks, the version that dropped it, or none if none had it)."""
    out = {}
    last = versions[-1] if versions else None
    for name in names:
        before, since, changes = _ABSENT, None, 0
        for version in versions:
            value = (version.facts or {}).get(name, _ABSENT)
            if value != before:
                before, since = value, version
                changes += 1
        present = last is not None and name in (last.facts or {})
        entry = {
            "fact": name,
            "value": (last.facts or {}).get(name) if present else None,
            "present": present,
            "changes": changes,  # versions that set or changed it (the first entry included)
        }
        entry.update(
            _source(since, name, users, appeals)
            if since is not None
            else {"version": None, "role": None, "role_words": None, "by": None, "at": None,
                  "reason": "", "evidence": [], "submission_id": None, "round": None,
                  "appeal": None, "appeal_clause": None}
        )  # fmt: skip
        out[name] = entry
    return out


def clause_facts(trace: dict) -> dict:
    """{clause id: [the facts it read, then those it lacked]} of a stored trace."""
    out = {}
    for clause in trace.get("clauses") or []:
        read = list((clause.get("facts") or {}).keys())
        out[clause["id"]] = read + [n for n in clause.get("missing") or [] if n not in read]
    return out


def of_score(ctx: ops.Context, row: Score, unit: Unit) -> dict:
    """The provenance of every fact a stored score's clauses read (the caller has checked that the
    score may be read): ``facts`` {fact: provenance}, ``clauses`` {clause: [facts]}."""
    clauses = clause_facts(row.trace)
    wanted = set((row.trace.get("facts") or {}).keys())
    for names in clauses.values():
        wanted.update(names)
    with ctx.db.transaction() as s:
        scored = s.get(Submission, row.submission_id)
        query = select(Submission).where(
            Submission.unit_id == unit.id,
            Submission.scheme_id == row.scheme_id,
            Submission.version <= row.submission_version,
        )
        if scored is not None and scored.round_id is not None:
            # a round's facts are entered in it: an earlier round's versions are another year's
            query = query.where(Submission.round_id == scored.round_id)
        versions = list(s.scalars(query.order_by(Submission.version)))
        users = _names(s, {v.author_id for v in versions})
        appeals = _appeal_versions(s, unit.id, {v.round_id for v in versions if v.round_id})
    facts = walk(versions, sorted(wanted), users, appeals)
    return {
        "score": row.id,
        "unit": unit.code,
        "scheme": row.scheme_id,
        "submission_version": row.submission_version,
        "facts": facts,
        "clauses": clauses,
    }


def score_provenance(ctx: ops.Context, actor: Actor | None, score_id: int) -> dict:
    """A stored score's facts with their provenance (``scores.read``; journaled as a read)."""
    row, unit = ops.get_score(ctx, actor, score_id)
    return of_score(ctx, row, unit)


def fact_history(
    ctx: ops.Context, actor: Actor | None, unit_code: str, scheme_id: str, fact: str
) -> dict:
    """One fact of a unit across every version of its facts for a scheme, oldest first: each
    version's value, whether it changed there, and who, when, as what, why, with what evidence."""
    rows = ops.history(ctx, actor, unit_code, scheme_id)  # submissions.read, journaled
    scheme = ctx.registry.get(scheme_id)
    declared = scheme is not None and fact in scheme.facts
    if not declared and not any(fact in (r.facts or {}) for r in rows):
        raise NotFound(
            "unknown_fact",
            f"细则“{scheme_id}”没有名为“{fact[:100]}”的事实",
            {"fact": ["不是本细则声明的事实，也不在本单位的任何一版提交中"]},
        )
    with ctx.db.transaction() as s:
        users = _names(s, {r.author_id for r in rows})
        unit_id = rows[0].unit_id if rows else None
        appeals = (
            _appeal_versions(s, unit_id, {r.round_id for r in rows if r.round_id})
            if unit_id is not None
            else {}
        )
    versions, before, before_round = [], _ABSENT, _ABSENT
    for row in rows:
        value = (row.facts or {}).get(fact, _ABSENT)
        entry = _source(row, fact, users, appeals)
        entry.update(
            value=None if value is _ABSENT else value,
            present=value is not _ABSENT,
            # a new round starts the unit's facts afresh: its first version enters them again
            changed=value != before or row.round_id != before_round,
        )
        versions.append(entry)
        before, before_round = value, row.round_id
    return {
        "unit": unit_code,
        "scheme": scheme_id,
        "fact": fact,
        "label": scheme.facts[fact].label if declared else fact,
        "versions": versions,
    }
