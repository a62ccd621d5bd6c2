"""Structured edits of a scheme's rule files that leave everything else byte-identical.

The editor's forms call these operations instead of asking a policy officer to write YAML. Each
takes a scheme's files ({path inside the scheme folder: text}) and returns new files; only the
edited file changes, and in it only what the edit touches: comments, key order, quoting, flow
style and every other line stay exactly as they were. That holds because the file is read and
written with ruamel.yaml's round trip, and a file the round trip would not reproduce byte for
byte is refused (with a message pointing to the text view) rather than silently reformatted.

A value set to what it already is leaves its file untouched. Unknown clauses, rules, categories,
bands, facts or keys are an ``EditError`` in Chinese naming what was not found. Whether the
edited scheme still *loads* is the strict loader's word: ``check`` returns its error as is.
"""

from __future__ import annotations

import copy
import difflib
import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString, ScalarString

from .errors import RuleSetError
from .loader import CLAUSE_DIR, SCHEME_FILE, load_files

Files = dict[str, str]

#: The scheme header fields a form edits (the rest of the header is edited in the text view).
SCHEME_FIELDS = ("id", "title", "year", "issuer", "total", "note")
#: A category's fields a form edits.
CATEGORY_FIELDS = ("title", "points", "cap", "note")
#: A clause's scalar fields a form edits; ``source`` is the verbatim source text (source.text).
CLAUSE_FIELDS = ("title", "points", "category", "source", "deadline", "note")
#: A rule's keys that are never edited in place: they name the rule and say what it is.
FIXED_RULE_KEYS = ("id", "kind")
#: A clause file's name: an order prefix (``07-``, ``02-1-``), then a name.
_PREFIX = re.compile(r"^\d+(?:-\d+)*-")
_NUMBER_KEYS = {"points", "cap", "total", "each", "step", "scale_from", "scale_to", "min", "max"}


class EditError(ValueError):
    """An edit that names something the files do not have, or a file that cannot be kept as is.

    ``field``: the name of the form field the error concerns, when a form made the edit (the
    editor shows the message beside it); None otherwise."""

    def __init__(self, message: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Checked:
    """What the strict loader made of edited files: the scheme, or its error as it reports it."""

    scheme: Any = None
    error: RuleSetError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Removal:
    """The files after a removal and the test cases it changed (``file：用例名称``), so that the
    editor can say which tests it took the clause or fact out of."""

    files: Files
    touched: list[str] = field(default_factory=list)


class _Verbatim(str):
    """A number written as its exact decimal text (never via a binary float)."""


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 1 << 20  # never wrap: a line the edit did not touch must not move
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(
        _Verbatim,
        lambda r, d: r.represent_scalar(
            "tag:yaml.org,2002:" + ("int" if re.fullmatch(r"-?\d+", d) else "float"), str(d)
        ),
    )
    return y


class _PerThread(threading.local):
    # a YAML instance keeps state while it reads or writes: one per thread (the service's
    # request threads and job workers may save at once)
    def __init__(self) -> None:
        self.yaml = _yaml()


_THREAD = _PerThread()


def _load(files: Files, rel: str) -> Any:
    if rel not in files:
        raise EditError(f"没有文件 {rel}")
    text = files[rel]
    try:
        doc = _THREAD.yaml.load(text)
    except Exception as e:  # a file broken in the text view: the forms cannot edit it
        raise EditError(f"{rel} 不是有效的YAML，请先在文本视图中修改：{e}") from e
    if not _round_trips(text, doc):
        raise EditError(f"{rel} 的写法无法在表单中原样保留，请在文本视图中修改")
    return doc


_KEPT: dict[str, bool] = {}  # texts already found to round-trip (a form saves the same file often)


def _round_trips(text: str, doc: Any) -> bool:
    if text not in _KEPT:
        if len(_KEPT) > 256:
            _KEPT.clear()
        _KEPT[text] = _dump(doc) == text
    return _KEPT[text]


def _dump(doc: Any) -> str:
    out = io.StringIO()
    _THREAD.yaml.dump(doc, out)
    return out.getvalue()


def _edited(files: Files, rel: str, change: Callable[[Any], None]) -> Files:
    doc = _load(files, rel)
    if not isinstance(doc, CommentedMap):
        raise EditError(f"{rel} 不是细则文件的格式（应为键值映射），请先在文本视图中修改")
    try:
        change(doc)
    except (AttributeError, TypeError, KeyError) as e:
        # a draft broken in the text view (a list where a mapping belongs): the loader names it
        raise EditError(f"{rel} 的结构不符合细则文件的格式，请先在文本视图中修改（{e}）") from e
    new = dict(files)
    new[rel] = _dump(doc)
    return new


def _number(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise EditError(f"{what}应为数字，收到 {value}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise EditError(f"{what}应为数字，收到“{value}”") from None


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, (int, float)) and isinstance(new, (int, Decimal)):
        return Decimal(str(old)) == Decimal(new)
    return isinstance(old, str) and isinstance(new, str) and str(old) == new


def _scalar(old: Any, new: Any, key: str | None) -> Any:
    """The new value written the way the old one was (quoted stays quoted, ``|-`` stays ``|-``)."""
    if isinstance(new, float):  # points are exact decimals: a float's digits are not the officer's
        raise EditError(f"{key or '事实'}的值请用精确小数（Decimal），不要用浮点数 {new!r}")
    if key in _NUMBER_KEYS and not isinstance(new, Decimal):
        new = _number(new, key)
    if isinstance(new, Decimal) and not new.is_finite():
        raise EditError(f"{key or '事实'}应为有限的数字，收到 {new}")
    if isinstance(new, Decimal | int) and not isinstance(new, bool):
        return _Verbatim(
            format(Decimal(new), "f")
        )  # plain notation: 1E+1 is written 10 (an int too)
    if isinstance(new, str) and isinstance(old, ScalarString):
        return type(old)(new)
    if isinstance(new, str) and "\n" in new:
        return LiteralScalarString(new)  # several lines read as written, not as escapes
    return new


def _set(
    owner: Any, key: str, value: Any, where: str, add: bool = False, facts: bool = False
) -> None:
    # ``facts``: owner maps fact names to values, so a fact named like a number key is not coerced
    if not isinstance(owner, CommentedMap):
        raise EditError(f"{where} 不是一个映射，无法设置 {key}")
    if key not in owner and not add:
        raise EditError(f"{where} 没有 {key}")
    old = owner.get(key)
    if key in owner and _same(old, value):
        return
    owner[key] = _scalar(old, value, None if facts else key)


def _check_field(name: str, allowed: Iterable[str], what: str) -> None:
    allowed = tuple(allowed)
    if name not in allowed:
        raise EditError(f"{what}没有可在表单中修改的字段 {name}（可改：{'、'.join(allowed)}）")


def document(files: Files, rel: str) -> Any:
    """A file as the edits read it (ruamel's round-trip nodes, with their line numbers), for a
    form to show; refused as the edits refuse it. Read it, do not change it: it is shared by
    every reader of the same text (a form is built again on every post, and parsing a clause
    file the round-trip way takes tens of milliseconds)."""
    if rel not in files:
        raise EditError(f"没有文件 {rel}")
    text = files[rel]
    doc = _READ.get(text)
    if doc is None:
        doc = _load(files, rel)
        if not isinstance(doc, CommentedMap):
            raise EditError(f"{rel} 不是细则文件的格式（应为键值映射），请先在文本视图中修改")
        with _READ_LOCK:
            if len(_READ) > 64:
                _READ.clear()
            _READ[text] = doc
    return doc


_READ: dict[str, Any] = {}
_READ_LOCK = threading.Lock()


# --- finding things ----------------------------------------------------------------------------


def clause_files(files: Files) -> list[str]:
    """The clause files, in the loader's order."""
    return sorted(
        rel
        for rel in files
        if rel.startswith(CLAUSE_DIR + "/") and rel.count("/") == 1 and rel.endswith(".yaml")
    )


def _id_line(clause_id: str) -> re.Pattern:
    return re.compile(rf"""^id:\s*(["']?){re.escape(clause_id)}\1\s*(#.*)?$""", re.M)


def clause_file(files: Files, clause_id: str) -> str:
    """The file of the clause with this id (its top-level ``id:`` line; one file a clause)."""
    pattern = _id_line(str(clause_id))
    found = [rel for rel in clause_files(files) if pattern.search(files[rel])]
    if not found:
        raise EditError(f"没有编号为 {clause_id} 的条款")
    return found[0]


def _rule(clause: Any, rel: str, rule_id: str) -> Any:
    for rule in clause.get("rules") or []:
        if str(rule.get("id")) == str(rule_id):
            return rule
    raise EditError(f"{rel} 的条款没有编号为 {rule_id} 的规则")


def _category(cats: Any, category_id: str) -> Any:
    for cat in cats or []:
        if str(cat.get("id")) == str(category_id):
            return cat
        inner = _category(cat.get("categories"), category_id)
        if inner is not None:
            return inner
    return None


# --- the scheme header and categories ----------------------------------------------------------


def set_scheme_field(files: Files, name: str, value: Any) -> Files:
    """Set a header field of scheme.yaml (title, year, issuer, total, note)."""
    _check_field(name, SCHEME_FIELDS, "细则")
    return _edited(files, SCHEME_FILE, lambda d: _set(d, name, value, SCHEME_FILE))


#: a category's keys the format lets go (title is required; a standard category's points are its
#: subtotal, and a bonus or deduction category has none to remove)
CATEGORY_OPTIONAL = ("cap", "note")


def set_category_field(files: Files, category_id: str, name: str, value: Any) -> Files:
    """Set a category's title, points (subtotal), cap or note; a cap not yet written is added.
    ``value`` None removes the key (cap or note only): its line goes, the rest stays as written."""
    _check_field(name, CATEGORY_FIELDS, "类别")
    if value is None and name not in CATEGORY_OPTIONAL:
        raise EditError(f"类别 {category_id} 的 {name} 必须填写，不能删除")

    def change(d: Any) -> None:
        cat = _category(d.get("categories"), category_id)
        if cat is None:
            raise EditError(f"{SCHEME_FILE} 没有编号为 {category_id} 的类别")
        if value is None:
            if name not in cat:
                return  # nothing to remove: the files stay as they are
            _drop_key(cat, name)
            return
        _set(cat, name, value, f"类别 {category_id}", add=name in ("cap", "note"))

    return _edited(files, SCHEME_FILE, change)


# --- a clause and its rules --------------------------------------------------------------------


def set_clause_field(files: Files, clause_id: str, name: str, value: Any) -> Files:
    """Set a clause's title, points, category, source (its verbatim text), deadline or note."""
    _check_field(name, CLAUSE_FIELDS, "条款")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        if name == "source":
            source = d.get("source")
            if not isinstance(source, CommentedMap) or "text" not in source:
                raise EditError(f"{rel} 没有 source.text")
            _set(source, "text", value, f"{rel} 的 source")
        else:
            _set(d, name, value, rel, add=name == "note")

    return _edited(files, rel, change)


def set_rule_field(files: Files, clause_id: str, rule_id: str, name: str, value: Any) -> Files:
    """Set a scalar key a rule already has (points, cap, each, step, when, title, …)."""
    if name in FIXED_RULE_KEYS:
        raise EditError(f"规则的 {name} 不能在表单中修改")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        rule = _rule(d, rel, rule_id)
        if isinstance(rule.get(name), CommentedMap | CommentedSeq):
            raise EditError(f"规则 {rule_id} 的 {name} 不是单个值，请用它自己的表格修改")
        _set(rule, name, value, f"{rel} 的规则 {rule_id}")

    return _edited(files, rel, change)


def set_band(
    files: Files,
    clause_id: str,
    rule_id: str,
    number: int,
    range: str | None = None,
    points: Any = None,
) -> Files:
    """Set one band's range (``"[1, 1.2)"``) and/or points; ``number`` counts from 1 (第1档)."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        rule = _rule(d, rel, rule_id)
        bands = rule.get("bands")
        if not isinstance(bands, CommentedSeq):
            raise EditError(f"{rel} 的规则 {rule_id} 没有分档（bands）")
        if not 1 <= number <= len(bands):
            raise EditError(f"{rel} 的规则 {rule_id} 只有{len(bands)}档，没有第{number}档")
        band = bands[number - 1]
        where = f"{rel} 的规则 {rule_id} 第{number}档"
        if range is not None:
            _set(band, "range", range, where)
        if points is not None:
            _set(band, "points", points, where)

    return _edited(files, rel, change)


#: A fact's fields a form edits (a fact's name is what rules and tests read: not renamed here).
FACT_FIELDS = ("label", "unit", "min", "max", "help", "type")


def set_fact_field(files: Files, clause_id: str, fact: str, name: str, value: Any) -> Files:
    """Set a fact's label, unit, range (min, max), help or type; an absent label, unit, min,
    max or help is added."""
    _check_field(name, FACT_FIELDS, "事实")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        for spec in d.get("facts") or []:
            if str(spec.get("name")) == fact:
                _set(spec, name, value, f"{rel} 的事实 {fact}", add=name != "type")
                return
        raise EditError(f"{rel} 的条款没有事实 {fact}")

    return _edited(files, rel, change)


# --- test cases --------------------------------------------------------------------------------


def _scheme_test(doc: Any, name: str) -> Any:
    for case in doc.get("tests") or []:
        if str(case.get("name")) == name:
            return case
    raise EditError(f"{SCHEME_FILE} 没有名为“{name}”的测试用例")


def set_scheme_test_field(files: Files, test: str, name: str, value: Any) -> Files:
    """Set a scheme test case's expected total or grade."""
    _check_field(name, ("total", "grade"), "细则测试用例")
    return _edited(
        files, SCHEME_FILE, lambda d: _set(_scheme_test(d, test), name, value, f"用例“{test}”")
    )


def set_scheme_test_fact(files: Files, test: str, fact: str, value: Any) -> Files:
    """Give (or change) one fact of a scheme test case; a new fact goes after the others."""

    def change(d: Any) -> None:
        facts = _scheme_test(d, test).get("facts")
        if not isinstance(facts, CommentedMap):
            raise EditError(f"用例“{test}”没有 facts")
        _flow_if_empty(facts)
        _set(facts, fact, value, f"用例“{test}”的 facts", add=True, facts=True)

    return _edited(files, SCHEME_FILE, change)


def _flow_if_empty(facts: Any) -> None:
    # ``facts: {}`` is read without a flow style: its first fact would turn it into a block
    # over two lines, where the file wrote it on one
    if not facts and facts.fa.flow_style() is None:
        facts.fa.set_flow_style()


def _clause_test(doc: Any, rel: str, name: str) -> Any:
    for case in doc.get("tests") or []:
        if str(case.get("name")) == name:
            return case
    raise EditError(f"{rel} 的条款没有名为“{name}”的测试用例")


def set_clause_test_field(files: Files, clause_id: str, test: str, name: str, value: Any) -> Files:
    """Set a clause test case's expected points (or its name)."""
    _check_field(name, ("points", "name"), "条款测试用例")
    rel = clause_file(files, clause_id)
    return _edited(
        files, rel, lambda d: _set(_clause_test(d, rel, test), name, value, f"{rel} 的用例“{test}”")
    )


def set_clause_test_fact(files: Files, clause_id: str, test: str, fact: str, value: Any) -> Files:
    """Give (or change) one fact of a clause test case."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        facts = _clause_test(d, rel, test).get("facts")
        if not isinstance(facts, CommentedMap):
            raise EditError(f"{rel} 的用例“{test}”没有 facts")
        _flow_if_empty(facts)
        _set(facts, fact, value, f"{rel} 的用例“{test}”的 facts", add=True, facts=True)

    return _edited(files, rel, change)


def _drop_facts(cases: Any, names: set[str], where: str) -> list[str]:
    touched = []
    for case in cases or []:
        facts = case.get("facts")
        gone = [k for k in list(facts or {}) if str(k) in names]
        for k in gone:
            del facts[k]
        if gone:
            touched.append(f"{where}：{case.get('name')}")
    return touched


# --- adding, removing and ordering clauses and facts -------------------------------------------


def add_clause(files: Files, clause: dict, name: str | None = None) -> Files:
    """Add a clause file written from ``clause`` (a dict as a clause file holds it), numbered
    after the last clause: ``clauses/NN-<name>.yaml`` (name: the clause id if not given)."""
    cid = str(clause.get("id", "")).strip()
    if not cid:
        raise EditError("新条款缺少编号 id")
    try:
        clause_file(files, cid)
    except EditError:
        pass
    else:
        raise EditError(f"已有编号为 {cid} 的条款")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name or cid).strip("-") or "clause"
    # after the highest number in use (a removed clause leaves a gap: no two files share one)
    numbers = [re.match(r"\d+", rel[len(CLAUSE_DIR) + 1 :]) for rel in clause_files(files)]
    last = max((int(m.group()) for m in numbers if m), default=0)
    rel = f"{CLAUSE_DIR}/{last + 1:02d}-{stem}.yaml"
    if rel in files:
        raise EditError(f"已有文件 {rel}")
    new = dict(files)
    new[rel] = _dump(_plain(clause))
    return new


def _plain(value: Any) -> Any:
    # decimals as their exact text; everything else as ruamel writes it
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return _Verbatim(str(value))
    if isinstance(value, float):
        raise EditError("分值请用精确小数（Decimal），不要用浮点数")
    return value


def _clause_facts(files: Files, rel: str) -> list[str]:
    doc = _load(files, rel)
    facts = doc.get("facts") if isinstance(doc, dict) else None
    return [str(f.get("name")) for f in facts or [] if isinstance(f, dict)]


def remove_clause(files: Files, clause_id: str) -> Removal:
    """Remove a clause's file, its facts from every scheme test case and its reviewers' marks
    from them (``marks: - clause: <id>``); returns the test cases touched."""
    rel = clause_file(files, clause_id)
    names = set(_clause_facts(files, rel))
    touched: list[str] = []

    def change(d: Any) -> None:
        touched.extend(_from_scheme_tests(d, names))
        for case in d.get("tests") or []:
            marks = case.get("marks")
            if not isinstance(marks, CommentedSeq):
                continue
            kept = [m for m in marks if str(m.get("clause")) != str(clause_id)]
            if len(kept) == len(marks):
                continue
            if kept:
                marks[:] = kept
            else:
                del case["marks"]
            label = f"{SCHEME_FILE}：{case.get('name')}"
            if label not in touched:
                touched.append(label)

    new = _edited(files, SCHEME_FILE, change) if SCHEME_FILE in files else dict(files)
    del new[rel]
    return Removal(new, touched)


def remove_fact(files: Files, clause_id: str | None, fact: str) -> Removal:
    """Remove a fact from its clause's facts (``clause_id`` None: from scheme.yaml's own facts)
    and from every test case that gives it: the clause's, the scheme's and the ranking tests'
    units; returns the test cases touched. Rules still reading it are the loader's to report."""
    rel = SCHEME_FILE if clause_id is None else clause_file(files, clause_id)
    owner = "细则" if clause_id is None else f"{rel} 的条款"
    touched: list[str] = []

    def declared(d: Any) -> None:
        facts = d.get("facts")
        at = [i for i, f in enumerate(facts or []) if str(f.get("name")) == fact]
        if not at:
            raise EditError(f"{owner}没有事实 {fact}")
        del facts[at[0]]
        if clause_id is None and not facts:
            del d["facts"]  # scheme-level facts are optional, and an empty list is refused
        if clause_id is not None:
            touched.extend(_drop_facts(d.get("tests"), {fact}, rel))

    new = _edited(files, rel, declared)
    if SCHEME_FILE in new:
        new = _edited(new, SCHEME_FILE, lambda d: touched.extend(_from_scheme_tests(d, {fact})))
    return Removal(new, touched)


def _from_scheme_tests(doc: Any, names: set[str]) -> list[str]:
    """Take facts out of scheme.yaml's test cases and its ranking tests' units."""
    touched = _drop_facts(doc.get("tests"), names, SCHEME_FILE)
    for case in doc.get("ranking_tests") or []:
        units = case.get("units")
        gone = _drop_facts(units.values() if isinstance(units, CommentedMap) else [], names, "")
        if gone:
            touched.append(f"{SCHEME_FILE}：{case.get('name')}")
    return touched


def reorder_clauses(files: Files, order: list[str]) -> Files:
    """Renumber the clause files' ``NN-`` prefixes to follow ``order`` (every clause id once);
    the files' text is unchanged."""
    rels = {str(cid): clause_file(files, str(cid)) for cid in order}
    every = clause_files(files)
    missing = sorted(set(every) - set(rels.values()))
    if missing or len(rels) != len(order):
        raise EditError(
            "新的顺序须把每个条款恰好列出一次" + (f"，缺少 {'、'.join(missing)}" if missing else "")
        )
    width = max(2, len(str(len(order))))
    new = {rel: text for rel, text in files.items() if rel not in set(every)}
    for n, cid in enumerate(order, 1):
        rel = rels[str(cid)]
        stem = _PREFIX.sub("", rel[len(CLAUSE_DIR) + 1 :])
        new[f"{CLAUSE_DIR}/{n:0{width}d}-{stem}"] = files[rel]
    return new


# --- keys added and removed, list items, rules, facts, vetoes and test cases (the forms) ------
#
# The operations below add what a file does not have yet and remove what it no longer needs.
# A new key goes where the format lists it (after the last key the file has that the format
# puts before it), a new list item is written in the style of its neighbour (flow or block,
# quoted like it), and a removal takes out only the node removed.

#: The clause keys ``set_clause_key`` sets, adds or (given None) removes.
CLAUSE_KEYS = (
    "title",
    "points",
    "category",
    "start",
    "offices",
    "deadline",
    "tasks",
    "evidence",
    "note",
)
#: The lists of a rule whose items ``add_rule_item``/``set_rule_item``/``remove_rule_item`` edit.
RULE_LISTS = ("bands", "levels", "parts")
#: The keys of a clause test case ``set_clause_test_key`` sets, adds or removes.
CLAUSE_TEST_KEYS = ("name", "points", "fired", "status", "marks", "note")
#: A veto's fields a form edits.
VETO_FIELDS = ("when", "reason", "note")


def _spec_order(obj: Any) -> list[str]:
    return list(obj.fields)


def _drop_key(owner: Any, key: str) -> None:
    """Delete a key with its line (and its end-of-line comment) only: the comment lines and blank
    lines ruamel keeps after its value belong to what follows, so they move to the key before."""
    keys = list(owner)
    slot = owner.ca.items.pop(key, None)
    token = slot[2] if slot and len(slot) > 2 else None
    rest = token.value.partition("\n")[2] if token is not None else ""
    at = keys.index(key)
    del owner[key]
    if token is None or not rest or at == 0:  # (a category's id, never removed, comes first)
        return
    _hand_on(owner.ca.items, keys[at - 1], token, rest, slot=2, width=4)


def _hand_on(items: dict, before: Any, token: Any, rest: str, slot: int, width: int) -> None:
    """Give the comment lines kept after a removed node (``rest``, from its comment ``token``) to
    the node ``before`` it: into ``slot`` of that node's comment list (``width`` long for its
    kind of node in ruamel: 4 for a mapping's key, 2 for a list's item)."""
    mine = items.setdefault(before, [None] * width)
    if mine[slot] is not None:
        mine[slot].value += rest
    else:
        moved = copy.copy(token)
        moved.value = "\n" + rest
        mine[slot] = moved


def _put(owner: Any, key: str, value: Any, order: list[str], where: str) -> None:
    """Set ``key`` (None: remove it), adding it after the last key the format puts before it."""
    if not isinstance(owner, CommentedMap):
        raise EditError(f"{where} 不是一个映射，无法设置 {key}")
    if value is None:
        if key in owner:
            del owner[key]
        return
    if isinstance(value, list | tuple):
        _put_list(owner, key, [str(v) for v in value], order)
        return
    if key in owner:
        _set(owner, key, value, where)
        return
    owner.insert(_position(owner, key, order), key, _scalar(None, value, key))


def _put_list(owner: Any, key: str, values: list[str], order: list[str]) -> None:
    old = owner.get(key)
    if isinstance(old, CommentedSeq):
        if [str(v) for v in old] == values:
            return
        _items_in_place(old, values)
        return
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    owner.insert(_position(owner, key, order), key, seq)


def _items_in_place(seq: Any, values: list) -> None:
    """Make a list hold ``values`` with the fewest item changes: an item kept keeps its line and
    comment, an item removed from the middle takes only its own line, one renamed changes only
    its line, and the list keeps its flow or block style (a slice assignment would drop the
    comments; rewriting position by position would move every later item's line)."""
    old = [str(v) for v in seq]
    new = [str(v) for v in values]
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    # from the end, so that the indexes of what is still to do do not move
    for op, i1, i2, j1, j2 in reversed(ops):
        if op == "equal":
            continue
        common = min(i2 - i1, j2 - j1)
        for k in range(common):  # renamed in place: the item's comment stays with it
            seq[i1 + k] = _scalar(seq[i1 + k], values[j1 + k], None)
        for _ in range(i2 - i1 - common):
            _drop_item(seq, i1 + common)
        for k in range(j2 - j1 - common):
            seq.insert(i1 + common + k, _scalar(None, values[j1 + common + k], None))


def _drop_item(seq: Any, at: int) -> None:
    """Delete a list item with its line and end-of-line comment only (ruamel moves the later
    items' comments up with them): the comment lines ruamel keeps after the last item belong to
    what follows, so they move to the item before, as ``_drop_key`` does for a key."""
    slot = seq.ca.items.get(at)
    token = slot[0] if slot else None
    rest = token.value.partition("\n")[2] if token is not None else ""
    last = at == len(seq) - 1
    del seq[at]
    if token is None or not (last and rest and at > 0):
        return
    _hand_on(seq.ca.items, at - 1, token, rest, slot=0, width=2)


def _mappings_in_place(seq: Any, values: list[dict], order: list[str]) -> None:
    """Make a list of mappings (a clause's tasks, a test case's marks) hold ``values`` with the
    fewest item changes, as ``_items_in_place`` does for texts: an item kept keeps its lines and
    comments, one changed changes only the keys that changed, one added is written in the style
    of its neighbour (flow or block)."""

    def same(item: Any) -> tuple:
        if not isinstance(item, dict):
            return (repr(item),)
        return tuple(
            (k, tuple(map(str, v)) if isinstance(v, list | tuple) else _canon(v))
            for k, v in item.items()
            if v is not None
        )

    old = [same(v) for v in seq]
    new = [same(v) for v in values]
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    for op, i1, i2, j1, j2 in reversed(ops):
        if op == "equal":
            continue
        common = min(i2 - i1, j2 - j1)
        for k in range(common):
            item, value = seq[i1 + k], values[j1 + k]
            if not isinstance(item, CommentedMap):
                seq[i1 + k] = _new(value, seq[0] if i1 + k else None)
                continue
            for key in [k2 for k2 in item if k2 not in value or value[k2] is None]:
                _drop_key(item, key)
            for key, v in value.items():
                if v is not None:
                    _put(item, key, v, order, "列表项")
        for _ in range(i2 - i1 - common):
            _drop_item(seq, i1 + common)
        for k in range(j2 - j1 - common):
            at = i1 + common + k
            like = seq[at - 1] if at else (seq[0] if len(seq) else None)
            value = {key: v for key, v in values[j1 + common + k].items() if v is not None}
            seq.insert(at, _new(value, like))


def _canon(value: Any) -> str:
    """A scalar as the comparison of list items sees it: 9 and 9.0 are the same points."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return format(Decimal(str(value)).normalize(), "f")
    return str(value)


def _put_mappings(owner: Any, key: str, values: list[dict], order: list[str], item: list[str]):
    """Set a list of mappings under ``key`` (added where the format puts it, in block style with
    each item's lists in flow style, as the shipped files write tasks)."""
    old = owner.get(key)
    if isinstance(old, CommentedSeq):
        _mappings_in_place(old, values, item)
        return
    seq = CommentedSeq()
    for value in values:
        m = CommentedMap()
        for k, v in value.items():
            if v is not None:
                m[k] = _new(v) if isinstance(v, list | tuple) else _scalar(None, v, k)
        if key == "marks":  # a mark is short: one line each, as the shipped cases write them
            m.fa.set_flow_style()
        seq.append(m)
    owner.insert(_position(owner, key, order), key, seq)


def _new(value: Any, like: Any = None) -> Any:
    """A value for a new node, written the way ``like`` (its neighbour's) is."""
    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[str(k)] = _new(v, like.get(k) if isinstance(like, CommentedMap) else None)
        if isinstance(like, CommentedMap) and like.fa.flow_style():
            m.fa.set_flow_style()
        return m
    if isinstance(value, list | tuple):
        seq = CommentedSeq([_new(v) for v in value])
        if not isinstance(like, CommentedSeq) or like.fa.flow_style() or not like:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and isinstance(like, ScalarString) and "\n" not in value:
        return type(like)(value)
    return _plain(value)


def set_clause_key(files: Files, clause_id: str, name: str, value: Any) -> Files:
    """Set, add or (``value`` None, or an empty list) remove a clause key: its title, points,
    category, start, offices and evidence (lists of text), deadline, note or tasks (a list of
    ``{task, deadline, offices}``, each task changed, added or removed on its own lines);
    ``bonus`` sets the cap of the clause's bonus rules (None: no bonus cap)."""
    _check_field(name, CLAUSE_KEYS + ("bonus",), "条款")
    from .spec import CLAUSE, TASK  # the spec reads the blocks, which importers need not

    _required(CLAUSE, name, value, "条款")
    rel = clause_file(files, clause_id)
    order = _spec_order(CLAUSE)

    def change(d: Any) -> None:
        if name == "bonus":
            if value is None:
                _put(d, "bonus", None, order, rel)
            elif isinstance(d.get("bonus"), CommentedMap):
                _set(d["bonus"], "cap", value, f"{rel} 的 bonus")
            else:
                _put(d, "bonus", None, order, rel)
                d.insert(_position(d, "bonus", order), "bonus", _new({"cap": value}))
            return
        if isinstance(value, list | tuple) and not value:
            _put(d, name, None, order, rel)  # the format refuses an empty list: none is no key
        elif name == "tasks":
            _put_mappings(d, name, list(value), order, _spec_order(TASK))
        else:
            _put(d, name, value, order, rel)

    return _edited(files, rel, change)


def _required(obj: Any, name: str, value: Any, what: str) -> None:
    """A key the format requires is not removed (None or an empty list)."""
    empty = value is None or (isinstance(value, list | tuple) and not value)
    field_spec = obj.fields.get(name)
    if empty and field_spec is not None and field_spec.required:
        raise EditError(f"{what}的 {name} 必须填写")


def _position(owner: Any, key: str, order: list[str]) -> int:
    rank = order.index(key) if key in order else len(order)
    return max(
        (i + 1 for i, k in enumerate(owner) if k in order and order.index(k) < rank), default=0
    )


def _rule_order(rule: Any) -> list[str]:
    from service.domain.blocks import BLOCKS

    from .spec import COMMON_RULE_FIELDS

    block = BLOCKS.get(str(rule.get("kind")))
    keys = [k.name for k in block.keys] if block else []
    common = list(COMMON_RULE_FIELDS)
    # id, kind, title first; the kind's keys; then note and bonus
    return common[:3] + keys + common[3:]


def set_rule_key(files: Files, clause_id: str, rule_id: str, name: str, value: Any) -> Files:
    """Set, add or (``value`` None) remove a key of a rule: title, note, bonus or a key its kind
    declares (cap, when, measure_label, scale_to, whole_steps, …); a required key is not removed."""
    if name in FIXED_RULE_KEYS:
        raise EditError(f"规则的 {name} 不能在表单中修改")
    from service.domain.blocks import BLOCKS

    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        rule = _rule(d, rel, rule_id)
        order = _rule_order(rule)
        where = f"{rel} 的规则 {rule_id}"
        if name not in order:
            raise EditError(f"{where}（{rule.get('kind')}）没有可写的键 {name}")
        block = BLOCKS.get(str(rule.get("kind")))
        required = {k.name for k in block.keys if k.required} if block else set()
        if value is None and name in required:
            raise EditError(f"{where} 的 {name} 必须填写")
        if isinstance(rule.get(name), CommentedMap | CommentedSeq) and value is not None:
            raise EditError(f"规则 {rule_id} 的 {name} 不是单个值，请用它自己的表格修改")
        _put(rule, name, value, order, where)

    return _edited(files, rel, change)


def set_rule_panel(files: Files, clause_id: str, rule_id: str, panel: dict | None) -> Files:
    """Set a rule's reviewer panel: ``{"reviewers": n, "highest": n, "lowest": n}`` (dropped
    marks 0 are not written), or None to score by one reviewer."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        rule = _rule(d, rel, rule_id)
        order = _rule_order(rule)
        if panel is None:
            _put(rule, "panel", None, order, rel)
            return
        old = rule.get("panel")
        if not isinstance(old, CommentedMap):
            fresh = {"reviewers": panel["reviewers"]}
            drop = {k: panel[k] for k in ("highest", "lowest") if panel.get(k)}
            if drop:
                fresh["drop"] = drop
            written = _new(fresh)
            if "drop" in written:
                written["drop"].fa.set_flow_style()  # as the format's documentation writes it
            rule.insert(_position(rule, "panel", order), "panel", written)
            return
        _set(old, "reviewers", panel["reviewers"], f"{rel} 的规则 {rule_id} 的 panel")
        drop = old.get("drop")
        for k in ("highest", "lowest"):
            n = panel.get(k) or 0
            if isinstance(drop, CommentedMap) and k in drop:
                _set(drop, k, n, f"规则 {rule_id} 的 panel.drop") if n else drop.pop(k)
            elif n:
                if not isinstance(drop, CommentedMap):
                    drop = old["drop"] = _new({}, None)
                    drop.fa.set_flow_style()
                drop[k] = _plain(n)
        if isinstance(drop, CommentedMap) and not drop:
            del old["drop"]

    return _edited(files, rel, change)


def _rule_list(d: Any, rel: str, rule_id: str, key: str) -> Any:
    if key not in RULE_LISTS:
        raise EditError(f"规则没有可逐项修改的列表 {key}（可改：{'、'.join(RULE_LISTS)}）")
    items = _rule(d, rel, rule_id).get(key)
    if not isinstance(items, CommentedSeq):
        raise EditError(f"{rel} 的规则 {rule_id} 没有 {key}")
    return items


def _item_order(key: str) -> list[str]:
    from .spec import BAND, LEVEL, PART

    return _spec_order({"bands": BAND, "levels": LEVEL, "parts": PART}[key])


_ITEM_WORD = {"bands": "档", "levels": "档", "parts": "部分"}


def set_rule_item(
    files: Files, clause_id: str, rule_id: str, key: str, number: int, name: str, value: Any
) -> Files:
    """Set, add or (None) remove a field of the ``number``-th (from 1) band, level or part."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        items = _rule_list(d, rel, rule_id, key)
        if not 1 <= number <= len(items):
            raise EditError(f"{rel} 的规则 {rule_id} 没有第{number}{_ITEM_WORD[key]}")
        order = _item_order(key)
        if name not in order:
            raise EditError(f"{key} 的项没有字段 {name}")
        _put(items[number - 1], name, value, order, f"{rel} 的规则 {rule_id} 第{number}项")

    return _edited(files, rel, change)


def add_rule_item(
    files: Files, clause_id: str, rule_id: str, key: str, item: dict, at: int | None = None
) -> Files:
    """Insert a band, level or part (a dict as the file holds it) so that it becomes the
    ``at``-th (from 1; None: the last), written like its neighbour."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        items = _rule_list(d, rel, rule_id, key)
        n = len(items) + 1 if at is None else at
        if not 1 <= n <= len(items) + 1:
            raise EditError(f"{rel} 的规则 {rule_id} 无法在第{n}{_ITEM_WORD[key]}处插入")
        like = items[min(n - 1, len(items) - 1)] if items else None
        items.insert(n - 1, _new(item, like))

    return _edited(files, rel, change)


def remove_rule_item(files: Files, clause_id: str, rule_id: str, key: str, number: int) -> Files:
    """Remove the ``number``-th (from 1) band, level or part; the last one is kept (the format
    needs at least one)."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        items = _rule_list(d, rel, rule_id, key)
        if not 1 <= number <= len(items):
            raise EditError(f"{rel} 的规则 {rule_id} 没有第{number}{_ITEM_WORD[key]}")
        if len(items) == 1:
            raise EditError(f"规则 {rule_id} 至少要有一{_ITEM_WORD[key]}，不能删去唯一的一项")
        del items[number - 1]

    return _edited(files, rel, change)


def _append(d: Any, key: str, item: dict, order: list[str], at: int | None = None) -> None:
    seq = d.get(key)
    if not isinstance(seq, CommentedSeq):
        if key in d:
            raise EditError(f"{key} 不是列表，请先在文本视图中修改")
        seq = CommentedSeq()
        d.insert(_position(d, key, order), key, seq)
    n = len(seq) if at is None else at
    like = seq[min(n, len(seq) - 1)] if seq else None
    seq.insert(n, _new(item, like))


def add_rule(files: Files, clause_id: str, rule: dict) -> Files:
    """Append a rule (a dict as the clause file holds it: id, kind and its keys)."""
    from .spec import CLAUSE

    rid = str(rule.get("id", "")).strip()
    if not rid:
        raise EditError("新规则缺少编号 id")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        if any(str(r.get("id")) == rid for r in d.get("rules") or []):
            raise EditError(f"{rel} 的条款已有编号为 {rid} 的规则")
        _append(d, "rules", rule, _spec_order(CLAUSE))

    return _edited(files, rel, change)


def _drop_reference(cases: Any, ref: str, rel: str) -> list[str]:
    """Take a rule or veto id out of the test cases' ``fired`` and ``bands`` expectations."""
    touched = []
    for case in cases or []:
        hit = False
        fired = case.get("fired")
        if isinstance(fired, CommentedSeq) and any(str(x) == ref for x in fired):
            fired[:] = [x for x in fired if str(x) != ref]
            hit = True
        bands = case.get("bands")
        if isinstance(bands, CommentedMap) and ref in bands:
            del bands[ref]
            if not bands:
                del case["bands"]
            hit = True
        if hit:
            touched.append(f"{rel}：{case.get('name')}")
    return touched


def remove_rule(files: Files, clause_id: str, rule_id: str) -> Removal:
    """Remove a rule and its id from the clause's test cases (expected ``fired`` and ``bands``);
    returns the test cases touched. The last rule is kept (a clause needs one)."""
    rel = clause_file(files, clause_id)
    touched: list[str] = []

    def change(d: Any) -> None:
        rules = d.get("rules")
        _rule(d, rel, rule_id)
        if len(rules) == 1:
            raise EditError("条款至少要有一条规则，不能删去唯一的一条")
        del rules[[str(r.get("id")) for r in rules].index(str(rule_id))]
        touched.extend(_drop_reference(d.get("tests"), str(rule_id), rel))

    return Removal(_edited(files, rel, change), touched)


def add_fact(files: Files, clause_id: str, fact: dict) -> Files:
    """Append a fact to a clause's facts (a dict: name, type, label and the optional keys)."""
    from .spec import CLAUSE

    name = str(fact.get("name", "")).strip()
    if not name:
        raise EditError("新事实缺少事实名 name")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        if any(str(f.get("name")) == name for f in d.get("facts") or []):
            raise EditError(f"{rel} 的条款已有事实 {name}")
        _append(d, "facts", fact, _spec_order(CLAUSE))

    return _edited(files, rel, change)


def set_fact_key(files: Files, clause_id: str, fact: str, name: str, value: Any) -> Files:
    """Set, add or (None) remove a fact's label, unit, help, min, max, type, required,
    applies_when or choices (a list of texts; an empty list removes the key, as the format
    refuses an empty list; items are added, removed and renamed each on its own line)."""
    from .spec import FACT

    _check_field(name, FACT_FIELDS + ("required", "applies_when", "choices"), "事实")
    if isinstance(value, list | tuple) and not value:
        value = None
    _required(FACT, name, value, "事实")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        for spec in d.get("facts") or []:
            if str(spec.get("name")) == fact:
                _put(spec, name, value, _spec_order(FACT), f"{rel} 的事实 {fact}")
                return
        raise EditError(f"{rel} 的条款没有事实 {fact}")

    return _edited(files, rel, change)


def _veto(d: Any, rel: str, veto_id: str) -> Any:
    for veto in d.get("vetoes") or []:
        if str(veto.get("id")) == str(veto_id):
            return veto
    raise EditError(f"{rel} 的条款没有编号为 {veto_id} 的否决")


def set_veto_field(files: Files, clause_id: str, veto_id: str, name: str, value: Any) -> Files:
    """Set a clause veto's condition (when), reason or note (None: no note)."""
    from .spec import VETO

    _check_field(name, VETO_FIELDS, "否决")
    if value is None and name != "note":
        raise EditError(f"否决的 {name} 必须填写")
    rel = clause_file(files, clause_id)
    return _edited(
        files,
        rel,
        lambda d: _put(_veto(d, rel, veto_id), name, value, _spec_order(VETO), f"否决 {veto_id}"),
    )


def add_veto(files: Files, clause_id: str, veto: dict) -> Files:
    """Append a veto (id, when, reason) to a clause's vetoes."""
    from .spec import CLAUSE

    vid = str(veto.get("id", "")).strip()
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        if not vid or any(str(v.get("id")) == vid for v in d.get("vetoes") or []):
            raise EditError(f"{rel} 的条款已有编号为 {vid} 的否决")
        _append(d, "vetoes", veto, _spec_order(CLAUSE))

    return _edited(files, rel, change)


def remove_veto(files: Files, clause_id: str, veto_id: str) -> Removal:
    """Remove a clause veto (no vetoes left: no ``vetoes`` key) and ``!id`` from the tests."""
    rel = clause_file(files, clause_id)
    touched: list[str] = []

    def change(d: Any) -> None:
        _veto(d, rel, veto_id)
        vetoes = d["vetoes"]
        del vetoes[[str(v.get("id")) for v in vetoes].index(str(veto_id))]
        if not vetoes:
            del d["vetoes"]
        touched.extend(_drop_reference(d.get("tests"), f"!{veto_id}", rel))

    return Removal(_edited(files, rel, change), touched)


def add_clause_test(files: Files, clause_id: str, case: dict) -> Files:
    """Append a test case (name, facts, points, …) to a clause, written like the one before."""
    from .spec import CLAUSE

    name = str(case.get("name", "")).strip()
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        if not name or any(str(c.get("name")) == name for c in d.get("tests") or []):
            raise EditError(f"{rel} 的条款已有名为“{name}”的测试用例")
        _append(d, "tests", case, _spec_order(CLAUSE))

    return _edited(files, rel, change)


def remove_clause_test(files: Files, clause_id: str, test: str) -> Files:
    """Remove a clause test case (the last one is kept: a clause needs one)."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        _clause_test(d, rel, test)
        cases = d["tests"]
        if len(cases) == 1:
            raise EditError("条款至少要有一个测试用例，不能删去唯一的一个")
        del cases[[str(c.get("name")) for c in cases].index(test)]

    return _edited(files, rel, change)


def set_clause_test_key(files: Files, clause_id: str, test: str, name: str, value: Any) -> Files:
    """Set, add or (None) remove a clause test case's name, expected points, expected rules
    (``fired``: a list of rule ids, ``!id`` for a veto; [] expects none), status, note or marks
    (a list of ``{reviewer, points, reason}``; none or [] removes the key)."""
    from .spec import CLAUSE_TEST, MARK

    _check_field(name, CLAUSE_TEST_KEYS, "条款测试用例")
    if value is None and name in ("name", "points"):
        raise EditError(f"测试用例的 {name} 必须填写")
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        case = _clause_test(d, rel, test)
        where = f"{rel} 的用例“{test}”"
        if name == "marks":
            if not value:  # none given: no one has marked yet (the key goes)
                _put(case, name, None, _spec_order(CLAUSE_TEST), where)
            else:
                _put_mappings(case, name, list(value), _spec_order(CLAUSE_TEST), list(MARK.fields))
            return
        if isinstance(value, list | tuple):
            old = case.get(name)
            if isinstance(old, CommentedSeq):
                _items_in_place(old, [str(x) for x in value])
                return
            case.insert(_position(case, name, _spec_order(CLAUSE_TEST)), name, _new(list(value)))
            return
        _put(case, name, value, _spec_order(CLAUSE_TEST), where)

    return _edited(files, rel, change)


def remove_clause_test_fact(files: Files, clause_id: str, test: str, fact: str) -> Files:
    """Take one fact out of a clause test case (the case then runs without it)."""
    rel = clause_file(files, clause_id)

    def change(d: Any) -> None:
        facts = _clause_test(d, rel, test).get("facts")
        if isinstance(facts, CommentedMap) and fact in facts:
            del facts[fact]

    return _edited(files, rel, change)


def check(files: Files, prefix: str = "") -> Checked:
    """The strict loader's word on edited files: the scheme, or its error as it is."""
    try:
        return Checked(scheme=load_files(files, prefix))
    except RuleSetError as e:
        return Checked(error=e)


__all__ = [
    "Checked",
    "add_clause_test",
    "document",
    "add_fact",
    "add_rule",
    "add_rule_item",
    "add_veto",
    "remove_clause_test",
    "remove_clause_test_fact",
    "remove_rule",
    "remove_rule_item",
    "remove_veto",
    "set_clause_key",
    "set_clause_test_key",
    "set_fact_key",
    "set_rule_item",
    "set_rule_key",
    "set_rule_panel",
    "set_veto_field",
    "EditError",
    "Removal",
    "add_clause",
    "check",
    "clause_file",
    "clause_files",
    "remove_clause",
    "remove_fact",
    "reorder_clauses",
    "set_band",
    "set_category_field",
    "set_clause_field",
    "set_fact_field",
    "set_rule_field",
    "set_scheme_field",
    "set_clause_test_fact",
    "set_clause_test_field",
    "set_scheme_test_fact",
    "set_scheme_test_field",
]
