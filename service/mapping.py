"""The fact mapping of an impact preview: how last year's reviewed facts feed a new version.

A new version may read facts the old one never asked for (a clause added, a fact renamed).  Scored
as they are, such facts are missing — never zero — and the clauses reading them stay incomplete.
The mapping says, for each fact the new version reads and the old lacks, either which old fact it
comes from (a rename: old name -> new name, types checked compatible) or a fixed value for every
unit with the reason for it (checked against the new fact's type and range; the reason is
required, kept and shown in the result and the workbook).

``check_mapping`` validates and normalizes one; ``apply_mapping`` applies it to one unit's facts;
``set_mapping`` stores it with a draft (``rule_drafts.mapping``).  A mapping is plain JSON values:
{new fact: {"from": old fact}} or {new fact: {"value": value, "reason": text}}.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from . import operations as ops
from . import releases
from .access import Actor, check, journal
from .db import now
from .domain.facts import allowed, check_value
from .domain.model import FactSpec, Scheme
from .domain.numbers import plain
from .domain.text import unstorable
from .exceptions import Conflict, Invalid, NotFound
from .rulefiles import RuleSetError, contained
from .rulefiles.loader import version_of_files

FROM, VALUE, REASON = "from", "value", "reason"
REASON_MAX = 500

#: a fact's type in words, for the messages
TYPE_WORDS = {
    "boolean": "是/否",
    "integer": "整数",
    "number": "数值",
    "percent": "百分数",
    "text": "文字",
    "choice": "选项",
}

#: which old types a new fact's type accepts as they are: the same type, or one whose every
#: value the new type holds (a whole number is a number; a choice is a text)
COMPATIBLE = {
    "boolean": {"boolean"},
    "integer": {"integer"},
    "number": {"number", "integer", "percent"},
    "percent": {"percent", "integer", "number"},
    "text": {"text", "choice"},
    "choice": {"choice"},
}

SHAPE = '应为 {"from": 原事实名}（改名而来）或 {"value": 值, "reason": 理由}（固定值）'


def lacking(old: Scheme, new: Scheme) -> list[FactSpec]:
    """The facts ``new`` reads that ``old`` does not declare, in the new version's order."""
    return [spec for name, spec in new.facts.items() if name not in old.facts]


def dropped(old: Scheme, new: Scheme, mapping: Mapping | None = None) -> list[FactSpec]:
    """The facts ``old`` declares that ``new`` does not read and no mapping takes a value from."""
    sources = {e[FROM] for e in (mapping or {}).values() if FROM in e}
    return [
        spec for name, spec in old.facts.items() if name not in new.facts and name not in sources
    ]


def _fact(spec: FactSpec) -> str:
    """A fact as the messages name it: its label, and its name that the rule files use."""
    if spec.label and spec.label != spec.name:
        return f"“{spec.label}”（{spec.name}）"
    return f"“{spec.name}”"


def _rename(old: Scheme, spec: FactSpec, source) -> tuple[dict | None, str | None]:
    if not isinstance(source, str) or not source.strip():
        return None, "请选择它来自原版本的哪一个事实"
    was = old.facts.get(source.strip())
    if was is None:
        return None, f"原版本没有事实“{source.strip()}”"
    if was.type not in COMPATIBLE.get(spec.type, {spec.type}):
        return None, (
            f"类型不相容：原事实{_fact(was)}是{TYPE_WORDS.get(was.type, was.type)}，"
            f"新事实{_fact(spec)}是{TYPE_WORDS.get(spec.type, spec.type)}"
        )
    return {FROM: was.name}, None


def _fixed(spec: FactSpec, entry: Mapping) -> tuple[dict | None, str | None]:
    raw, reason = entry.get(VALUE), entry.get(REASON)
    if raw is None:
        return None, "请填写固定值（不知道的值不要对应：按缺失处理）"
    value, problem = check_value(spec, raw)
    if problem:
        return None, f"固定值{problem}"
    if not isinstance(reason, str) or not reason.strip():
        return None, "请写明理由：固定值用于每一个单位，理由写进结果和工作簿"
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        return None, f"理由不能超过{REASON_MAX}字"
    bad = unstorable(reason)
    if bad:
        return None, f"理由{bad}"
    return {VALUE: value, REASON: reason}, None


def _entry(old: Scheme, new: Scheme, name, entry) -> tuple[dict | None, str | None]:
    spec = new.facts.get(name) if isinstance(name, str) else None
    if spec is None:
        return None, f"新版本没有事实“{name}”"
    if name in old.facts:
        return None, f"原版本也有事实{_fact(spec)}，不需要对应"
    if not isinstance(entry, Mapping):
        return None, SHAPE
    keys = set(entry)
    if FROM in keys and keys & {VALUE, REASON}:
        return None, "只能二选一：来自原事实（from），或固定值（value）和理由（reason）"
    unknown = sorted(str(k) for k in keys - {FROM, VALUE, REASON})
    if unknown:
        return None, f"不认识的键“{unknown[0]}”：{SHAPE}"
    if FROM in keys:
        return _rename(old, spec, entry[FROM])
    if not keys:
        return None, SHAPE
    return _fixed(spec, entry)


def check_mapping(old: Scheme, new: Scheme, mapping) -> dict:
    """The mapping normalized (in the new version's order of facts), or ``Invalid`` naming each
    wrong entry as ``mapping.<fact>``.  None or {} is no mapping."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise Invalid(
            "invalid_mapping",
            "事实对应应为“新事实名: 对应方式”的映射",
            {"mapping": ["应为“新事实名: 对应方式”的映射"]},
        )
    errors: dict[str, list[str]] = {}
    good: dict = {}
    for name, entry in mapping.items():
        normal, problem = _entry(old, new, name, entry)
        if problem:
            errors[f"mapping.{name}"] = [problem]
        else:
            good[name] = normal
    if errors:
        first = next(iter(errors))
        raise Invalid("invalid_mapping", f"事实对应有误（{first[8:]}）：{errors[first][0]}", errors)
    return {name: good[name] for name in new.facts if name in good}


def apply_mapping(facts: Mapping, mapping: Mapping) -> tuple[dict, list[dict]]:
    """One unit's old facts with the mapped facts added, and a note per mapped fact saying how
    (a rename whose old fact this unit lacks leaves the new fact missing, and says so)."""
    out = dict(facts)
    notes = []
    for name, entry in mapping.items():
        if FROM in entry:
            value = facts.get(entry[FROM])
            if value is not None:
                out[name] = value
            notes.append({"fact": name, "how": "renamed", "from": entry[FROM], "value": value})
        else:
            out[name] = entry[VALUE]
            notes.append(
                {"fact": name, "how": "set", "value": entry[VALUE], "reason": entry[REASON]}
            )
    return out, notes


def words(value) -> str:
    """A fact's value as the pages write it."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def describe(entry: Mapping, old: Scheme, new: Scheme, name: str) -> str:
    """One mapping entry in a sentence: 由原事实“…”改名而来 / 固定值 3（理由：…）."""
    spec = new.facts.get(name)
    target = _fact(spec) if spec is not None else f"“{name}”"
    if FROM in entry:
        was = old.facts.get(entry[FROM])
        source = _fact(was) if was is not None else f"“{entry[FROM]}”"
        return f"新事实{target}取原事实{source}的值"
    return f"新事实{target}每个单位都按固定值 {words(entry[VALUE])}（理由：{entry[REASON]}）"


def parse_value(spec: FactSpec, text: str):
    """A value typed in a form or on the command line, as the fact's type reads it; ValueError
    with the words of what is allowed otherwise (the range is checked by ``check_mapping``)."""
    text = text.strip()
    if spec.type == "boolean":
        if text.lower() in ("是", "true", "yes", "1"):
            return True
        if text.lower() in ("否", "false", "no", "0"):
            return False
        raise ValueError(f"应为{allowed(spec)}")
    if spec.type in ("text", "choice"):
        return text
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"应为{allowed(spec)}") from None
    if not value.is_finite():
        raise ValueError(f"应为{allowed(spec)}")
    return value


# --- the mapping kept with a draft (rule_drafts.mapping) ---------------------------------------


def old_version(ctx: ops.Context, draft) -> str:
    """The version a draft is compared with: the one in force for its scheme id, else the version
    it was copied from; ``Conflict`` if it has neither (an upload of a new scheme)."""
    served = ctx.registry.get(draft.scheme_id)
    if served is not None:
        return served.version
    if draft.base_version:
        return draft.base_version
    raise Conflict(
        "no_old_version",
        f"草案 {draft.id} 没有可比较的原版本：细则“{draft.scheme_id}”没有在用的版本，草案也不是复制而来",
    )


#: the drafts' schemes loaded lately, by version: the mapping step reads a draft, checks a mapping
#: against it and shows it again, each a load in a child process otherwise (a few, not every
#: version a draft ever had: they are not kept as served or archived versions are)
_LOADED: OrderedDict = OrderedDict()
_LOADED_MAX = 8
_loaded_lock = threading.Lock()


def draft_scheme(draft) -> Scheme:
    """The draft's files as a scheme, loaded in a child process (the text is a user's);
    ``Conflict`` naming the first error when they do not load."""
    version = version_of_files(draft.files)
    key = (version, draft.folder)
    with _loaded_lock:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    rooted = {f"{draft.folder}/{rel}": text for rel, text in draft.files.items()}
    try:
        schemes = contained.load_tree(rooted, draft.folder)
    except RuleSetError as err:
        first = err.errors[0]
        raise Conflict(
            "draft_not_loadable",
            f"草案 {draft.id} 的规则文件有错误，改正后才能对应事实：{first}",
            {"files": [str(e) for e in err.errors[:20]]},
        ) from None
    if len(schemes) != 1:
        raise Conflict("draft_not_loadable", f"草案 {draft.id} 应恰好是一套细则")
    scheme = next(iter(schemes.values()))
    with _loaded_lock:
        _LOADED[key] = scheme
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return scheme


def schemes_of(ctx: ops.Context, actor: Actor | None, draft_id: int):
    """(draft view, old scheme, the draft's scheme): what the mapping of a draft is checked on."""
    draft = releases.read_draft(ctx, actor, draft_id)
    try:
        old = ops.scheme_by_version(ctx, old_version(ctx, draft))
    except NotFound as err:
        raise Conflict("no_old_version", err.message) from None
    return draft, old, draft_scheme(draft)


def set_mapping(
    ctx: ops.Context, actor: Actor, draft_id: int, lock: int, mapping
) -> releases.DraftView:
    """Check ``mapping`` against the draft's version and the one it is compared with, and keep it
    with the draft (a draft or a proposed one: the mapping changes no rule).  A stale ``lock`` is
    a ``Conflict``; journaled "rules.draft.mapping" with each fact and how it is mapped."""
    target = f"rule_draft:{draft_id}"
    check(ctx.db, actor, "rules.draft", target)
    draft, old, new = schemes_of(ctx, actor, draft_id)
    normal = check_mapping(old, new, mapping)
    with ctx.db.transaction() as s:
        with releases.changing(s, draft_id, lock, (releases.DRAFT, releases.PROPOSED)) as row:
            before = dict(row.mapping or {})
            row.mapping = normal
            row.updated_by, row.updated_at = actor.user_id, now()
        journal(
            s,
            actor,
            "rules.draft.mapping",
            f"{target}/scheme:{row.scheme_id}",
            "ok",
            old=old.version,
            facts={name: describe(entry, old, new, name) for name, entry in normal.items()},
            removed=sorted(set(before) - set(normal)),
        )
        return releases.view_of(s, row)


def sources(old: Scheme, spec: FactSpec) -> list[FactSpec]:
    """The old facts whose values ``spec`` accepts as they are (a rename's choices)."""
    return [f for f in old.facts.values() if f.type in COMPATIBLE.get(spec.type, {spec.type})]


def _head(scheme: Scheme) -> dict:
    return {
        "scheme": scheme.id,
        "year": scheme.year,
        "title": scheme.title,
        "version": scheme.version,
    }


def _fact_out(spec: FactSpec) -> dict:
    return {
        "fact": spec.name,
        "label": spec.label or spec.name,
        "type": spec.type,
        "type_words": TYPE_WORDS.get(spec.type, spec.type),
        "allowed": allowed(spec),
        "unit": spec.unit,
        "choices": list(spec.choices),
    }


def mapping_view(ctx: ops.Context, actor: Actor | None, draft_id: int) -> dict:
    """What the mapping step of a draft shows (``view_of``), read now."""
    return view_of(*schemes_of(ctx, actor, draft_id))


def view_of(draft, old: Scheme, new: Scheme) -> dict:
    """What the mapping step of a draft shows: the two versions, each fact the draft reads that
    the old version lacks (with the old facts it may come from and its entry in the saved
    mapping, if any), the old facts the draft no longer reads, and the draft's lock."""
    saved = dict(draft.mapping or {})
    facts = []
    for spec in lacking(old, new):
        entry = saved.get(spec.name)
        row = _fact_out(spec)
        row["sources"] = [_fact_out(f) for f in sources(old, spec)]
        row["entry"] = _entry_shown(entry, old, new, spec.name)
        facts.append(row)
    stale = sorted(name for name in saved if name not in {f["fact"] for f in facts})
    return {
        "draft": draft.id,
        "lock": draft.lock,
        "state": draft.state,
        "old": _head(old),
        "new": _head(new),
        "facts": facts,
        "dropped": [_fact_out(f) for f in dropped(old, new, saved)],
        "stale": stale,
    }


def _entry_shown(entry, old: Scheme, new: Scheme, name: str) -> dict | None:
    if not isinstance(entry, Mapping):
        return None
    if FROM in entry:
        return {"how": "renamed", "from": entry[FROM], "value": None, "reason": None,
                "text": describe(entry, old, new, name)}  # fmt: skip
    if VALUE in entry:
        return {"how": "set", "from": None, "value": words(entry[VALUE]),
                "reason": entry.get(REASON), "text": describe(entry, old, new, name)}  # fmt: skip
    return None
