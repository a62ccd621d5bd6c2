"""Structured edits of scheme.yaml that ``edit.py`` does not make: the grading (method, tiers,
distinctions, grade vetoes) and the header's source (document, ref, text).

The editor's draft page needs them (issue 10: "the grading (tiers, distinctions, grade vetoes)",
"the scheme header (title, year, issuer, source, total)"). They go through the same round trip
as ``edit.py`` (its ``_edited``/``_set``), so the same promise holds: only what is edited
changes, comments, key order and every other byte of the file stay as they were, and a value
set to what it already is leaves the file untouched. A key given as None (or "") is taken out,
for the optional keys of a tier or distinction (``min`` vs ``top`` is what a form switches).
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .edit import EditError, Files, _check_field, _edited, _plain, _set
from .loader import SCHEME_FILE

METHODS = ("none", "thresholds", "rank")
TIER_FIELDS = ("grade", "min", "top", "title")
DISTINCTION_FIELDS = ("name", "grade", "top", "min")
VETO_FIELDS = ("when", "effect", "grade", "reason", "note")
VETO_EFFECTS = ("force", "bar", "lower")
SOURCE_FIELDS = ("document", "ref", "text")
#: keys a tier, distinction or veto may go without: set to None they are taken out
_OPTIONAL = {"min", "top", "title", "note"}
#: a veto of effect ``lower`` has no grade (the loader refuses one written)
_VETO_OPTIONAL = _OPTIONAL | {"grade"}


def _grading(doc: Any) -> Any:
    grading = doc.get("grading")
    if not isinstance(grading, CommentedMap):
        raise EditError(f"{SCHEME_FILE} 没有评级办法（grading），请先在文本视图中补上")
    return grading


def _items(grading: Any, key: str, words: str, create: bool = False) -> Any:
    items = grading.get(key)
    if items is None and create:
        grading[key] = items = CommentedSeq()
    if not isinstance(items, CommentedSeq):
        raise EditError(f"评级办法没有{words}（{key}）")
    return items


def _nth(items: Any, number: int, words: str) -> Any:
    if not 1 <= number <= len(items):
        raise EditError(f"评级办法只有{len(items)}个{words}，没有第{number}个")
    return items[number - 1]


def _put(owner: Any, key: str, value: Any, where: str, optional: set = _OPTIONAL) -> None:
    """Set ``key`` (added if absent); None or "" takes an optional key out."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if key not in optional:
            raise EditError(f"{where}的 {key} 不能为空")
        if key in owner:
            del owner[key]
        return
    _set(owner, key, value, where, add=True)


def _new_item(items: Any, values: dict) -> CommentedMap:
    """A new list item written as its siblings are (``- {grade: A, top: 6}`` stays flow style)."""
    item = CommentedMap()
    for key, value in values.items():
        if value is not None and not (isinstance(value, str) and not value.strip()):
            item[key] = _plain(value)
    if items and all(isinstance(i, CommentedMap) and i.fa.flow_style() for i in items):
        item.fa.set_flow_style()
    return item


# --- the header's source --------------------------------------------------------------------


def set_scheme_source(files: Files, name: str, value: Any) -> Files:
    """Set the header's source document, ref or text (the document's own words)."""
    _check_field(name, SOURCE_FIELDS, "细则出处")

    def change(d: Any) -> None:
        source = d.get("source")
        if not isinstance(source, CommentedMap):
            raise EditError(f"{SCHEME_FILE} 没有出处（source）")
        _set(source, name, value, f"{SCHEME_FILE} 的 source", add=name == "ref")

    return _edited(files, SCHEME_FILE, change)


# --- method, tiers, distinctions --------------------------------------------------------------


def set_grading_method(files: Files, method: str) -> Files:
    """none 不评级 / thresholds 按分数线 / rank 按名次 (tiers the loader then asks for)."""
    if method not in METHODS:
        raise EditError(f"评级办法应为 {'、'.join(METHODS)} 之一，收到“{method}”")
    return _edited(files, SCHEME_FILE, lambda d: _set(_grading(d), "method", method, "评级办法"))


def set_tier_field(files: Files, number: int, name: str, value: Any) -> Files:
    """Set a tier's grade, min (by score), top (by rank) or title; ``number`` counts from 1."""
    return _set_nth_field(files, "tiers", "等级", TIER_FIELDS, number, name, value)


def add_tier(files: Files, tier: dict) -> Files:
    """A tier added after the others (the lowest so far): {grade, min | top, title}."""
    if not str(tier.get("grade") or "").strip():
        raise EditError("新等级缺少等级名称 grade")
    return _append(files, "tiers", "等级", tier, TIER_FIELDS)


def remove_tier(files: Files, number: int) -> Files:
    return _remove_nth(files, "tiers", "等级", number)


def set_distinction_field(files: Files, number: int, name: str, value: Any) -> Files:
    """Set a distinction's name, grade (the tier it needs), top or min."""
    return _set_nth_field(files, "distinctions", "称号", DISTINCTION_FIELDS, number, name, value)


def add_distinction(files: Files, distinction: dict) -> Files:
    if not all(str(distinction.get(k) or "").strip() for k in ("name", "grade")):
        raise EditError("新称号须写明称号名称 name 和须先获得的等级 grade")
    return _append(files, "distinctions", "称号", distinction, DISTINCTION_FIELDS)


def remove_distinction(files: Files, number: int) -> Files:
    return _remove_nth(files, "distinctions", "称号", number)


def _set_nth_field(
    files: Files, key: str, words: str, fields, number: int, name: str, value: Any
) -> Files:
    """Set field ``name`` of item ``number`` (from 1) of the grading's list ``key``."""
    _check_field(name, fields, words)

    def change(d: Any) -> None:
        item = _nth(_items(_grading(d), key, words), number, words)
        _put(item, name, value, f"第{number}个{words}")

    return _edited(files, SCHEME_FILE, change)


def _append(files: Files, key: str, words: str, item: dict, fields, unique=None) -> Files:
    """``item`` added after the others of grading's ``key`` list (made if absent); its keys must
    be among ``fields``; ``unique``: a check of the grading before it is added."""
    unknown = set(item) - set(fields)
    if unknown:
        raise EditError(f"{words}没有字段 {'、'.join(sorted(unknown))}")

    def change(d: Any) -> None:
        grading = _grading(d)
        if unique is not None:
            unique(grading)
        items = _items(grading, key, words, create=True)
        items.append(_new_item(items, item))

    return _edited(files, SCHEME_FILE, change)


def _remove_nth(files: Files, key: str, words: str, number: int) -> Files:
    def change(d: Any) -> None:
        grading = _grading(d)
        items = _items(grading, key, words)
        _nth(items, number, words)
        del items[number - 1]
        if not items:
            del grading[key]  # an empty list is refused by the loader: no such list at all

    return _edited(files, SCHEME_FILE, change)


# --- grade vetoes ---------------------------------------------------------------------------


def _veto(grading: Any, veto_id: str) -> Any:
    for veto in grading.get("vetoes") or []:
        if str(veto.get("id")) == str(veto_id):
            return veto
    raise EditError(f"评级办法没有编号为 {veto_id} 的等级否决")


def set_grade_veto_field(files: Files, veto_id: str, name: str, value: Any) -> Files:
    """Set a grade veto's condition (when), effect, grade, reason or note."""
    _check_field(name, VETO_FIELDS, "等级否决")
    if name == "effect" and value not in VETO_EFFECTS:
        raise EditError(f"等级否决的效果应为 {'、'.join(VETO_EFFECTS)} 之一，收到“{value}”")

    def change(d: Any) -> None:
        _put(_veto(_grading(d), veto_id), name, value, f"等级否决 {veto_id} ", _VETO_OPTIONAL)

    return _edited(files, SCHEME_FILE, change)


def add_grade_veto(files: Files, veto: dict) -> Files:
    """A grade veto added after the others: {id, when, effect, grade?, reason, note?}."""
    missing = [k for k in ("id", "when", "effect", "reason") if not str(veto.get(k) or "").strip()]
    if missing:
        raise EditError(f"新的等级否决缺少 {'、'.join(missing)}")
    if veto["effect"] not in VETO_EFFECTS:
        raise EditError(f"等级否决的效果应为 {'、'.join(VETO_EFFECTS)} 之一")

    def unique(grading: Any) -> None:
        if any(str(v.get("id")) == str(veto["id"]) for v in grading.get("vetoes") or []):
            raise EditError(f"已有编号为 {veto['id']} 的等级否决")

    return _append(files, "vetoes", "等级否决", veto, {"id", *VETO_FIELDS}, unique)


def remove_grade_veto(files: Files, veto_id: str) -> Files:
    def change(d: Any) -> None:
        grading = _grading(d)
        items = grading.get("vetoes")
        veto = _veto(grading, veto_id)
        items.remove(veto)
        if not items:
            del grading["vetoes"]

    return _edited(files, SCHEME_FILE, change)


__all__ = [
    "add_distinction",
    "add_grade_veto",
    "add_tier",
    "remove_distinction",
    "remove_grade_veto",
    "remove_tier",
    "set_distinction_field",
    "set_grade_veto_field",
    "set_grading_method",
    "set_scheme_source",
    "set_tier_field",
]
