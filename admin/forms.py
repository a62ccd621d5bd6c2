"""The fact-entry form, generated from what a scheme declares, and its parsing.

``layout(scheme)`` lays the scheme's facts out by category and clause: each
field with its Chinese label, unit, allowed range (the domain's own words,
``service.domain.facts.allowed``), help, and beside each clause its source text
and the evidence it expects.  No scheme has a hand-written form.

``parse(layout, form)`` turns the posted strings into the values the service
checks (``validate_facts``): numbers as exact decimals (full-width digits, a
trailing unit and thousands separators are accepted), yes/no as booleans, an
empty field as a missing fact.  Text that is not a number is passed on as text,
so the error beside the field is the domain's own message.  The posted strings
are kept as they were typed, so nothing is lost when the form comes back with
errors.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from service.domain import expressions as ex
from service.domain import text as limits
from service.domain.facts import allowed, check_value, not_applicable
from service.domain.model import FactSpec, Scheme
from service.domain.numbers import plain

from .present import outline

NUMBER_TYPES = ("number", "integer", "percent")
# the API's limits, from the one place both read them
MAX_EVIDENCE = limits.EVIDENCE_CHARS_MAX  # characters per reference
MAX_EVIDENCE_ITEMS = limits.EVIDENCE_ITEMS_MAX
MAX_REASON = limits.REASON_CHARS_MAX
MAX_FACT_REASON = limits.FACT_REASON_CHARS_MAX  # characters of the reason for one corrected fact


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str
    input: str  # number | boolean | choice | text
    unit: str
    help: str
    allowed: str  # what it accepts, in the domain's words
    required: bool
    choices: tuple = ()
    #: when the fact applies (applies_when), in words with the facts' labels; "" if always
    applies_words: str = ""

    @property
    def key(self) -> str:
        return f"f.{self.name}"

    @property
    def evidence_key(self) -> str:
        return f"e.{self.name}"

    @property
    def reason_key(self) -> str:
        return f"r.{self.name}"

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.name)


@dataclass
class ClauseBlock:
    id: str
    title: str
    kind: str
    points: Decimal
    source: str
    source_ref: str
    evidence: tuple
    offices: tuple
    deadline: str
    note: str
    fields: list = field(default_factory=list)
    also_reads: list = field(default_factory=list)  # facts entered elsewhere on the form


@dataclass
class Section:
    id: str
    title: str
    kind: str
    points: Decimal | None
    cap: Decimal | None
    depth: int
    clauses: list = field(default_factory=list)
    continued: bool = False  # the parent's clauses after a sub-category


@dataclass
class FormLayout:
    scheme_id: str
    version: str
    title: str
    point_unit: str
    shared: list  # scheme-level facts (read by several clauses or by grading)
    sections: list
    fields: dict  # name -> Field, in form order


def _field(spec: FactSpec, facts: Mapping) -> Field:
    kind = "number" if spec.type in NUMBER_TYPES else spec.type
    return Field(
        spec.name,
        spec.label,
        spec.type,
        kind,
        spec.unit,
        spec.help,
        allowed(spec),
        spec.required,
        tuple(spec.choices),
        _applies_words(spec, facts) if spec.applies_when is not None else "",
    )


def _applies_words(spec: FactSpec, facts: Mapping) -> str:
    words = spec.applies_when_text
    for name in sorted(set(ex.names(spec.applies_when)), key=len, reverse=True):
        if name in facts:
            words = re.sub(rf"\b{re.escape(name)}\b", f"“{facts[name].label}”", words)
    return words


def not_applying(scheme: Scheme, values: Mapping) -> set:
    """The facts that do not apply given what the form holds now (strings as typed): the form
    marks them 不适用 and does not ask for them.  A value not yet valid counts as not given."""
    form = layout(scheme)
    typed = {}
    for name, text in values.items():
        f, spec = form.fields.get(name), scheme.facts.get(name)
        if f is None or spec is None:
            continue
        value = value_of(f, text)
        if value is not None and check_value(spec, value)[1] is None:
            typed[name] = check_value(spec, value)[0]
    return not_applicable(scheme, typed)


_LAYOUTS: dict[str, FormLayout] = {}


def layout(scheme: Scheme) -> FormLayout:
    """The form of a scheme version (computed once per version)."""
    cached = _LAYOUTS.get(scheme.version)
    if cached is not None:
        return cached
    fields: dict[str, Field] = {}
    shared = [_field(f, scheme.facts) for f in scheme.facts.values() if not f.owner]
    for f in shared:
        fields[f.name] = f
    sections: list[Section] = []
    position = {cid: i for i, cid in enumerate(scheme.clauses)}
    for cat, depth, ids, continued in outline(
        scheme.categories, lambda c: c.id, lambda c: c.children, lambda c: c.clauses, position
    ):
        section = Section(
            cat.id, cat.title, cat.kind, cat.points, cat.cap, depth, continued=continued
        )
        sections.append(section)
        for cid in ids:
            clause = scheme.clauses[cid]
            block = ClauseBlock(
                clause.id,
                clause.title,
                clause.kind,
                clause.points,
                clause.source.text,
                clause.source.ref,
                tuple(clause.evidence),
                tuple(clause.offices),
                clause.deadline,
                clause.note,
            )
            own = {f.name for f in clause.facts}
            for spec in clause.facts:
                block.fields.append(fields.setdefault(spec.name, _field(spec, scheme.facts)))
            block.also_reads = [scheme.facts[n] for n in clause.reads if n not in own]
            section.clauses.append(block)

    made = FormLayout(
        scheme.id, scheme.version, scheme.title, scheme.unit, shared, sections, fields
    )
    if len(_LAYOUTS) > 64:
        _LAYOUTS.clear()
    _LAYOUTS[scheme.version] = made
    return made


# --- stored values -> form strings --------------------------------------------------------


def to_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def from_submission(facts: Mapping, evidence: Mapping) -> tuple[dict, dict]:
    values = {name: to_text(v) for name, v in (facts or {}).items() if v is not None}
    refs = {
        name: "；".join(str(r) for r in items) for name, items in (evidence or {}).items() if items
    }
    return values, refs


# --- form strings -> values for the service -------------------------------------------------

_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_SPLIT = re.compile(r"[\n\r；;]+")


def _number(text: str, f: Field):
    t = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    for suffix in filter(None, (f.unit, "%" if f.type == "percent" else "")):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[: -len(suffix)]
            break
    if _GROUPED.fullmatch(t):
        t = t.replace(",", "")
    try:
        return Decimal(t)
    except InvalidOperation:
        return text.strip()  # not a number: the domain says so, in its own words


def value_of(f: Field, text: str):
    """The value the service checks, or None for an empty field (a missing fact)."""
    if text is None or not text.strip():
        return None
    if f.input == "number":
        return _number(text, f)
    if f.input == "boolean":
        return {"true": True, "false": False}.get(text.strip(), text.strip())
    return text.strip()


@dataclass
class Posted:
    values: dict  # name -> the string as typed
    evidence: dict  # name -> the string as typed
    reason: str
    reasons: dict  # name -> why this fact was corrected, as typed
    base: int  # the version the form was based on
    facts: dict  # name -> value for the service (missing facts left out)
    refs: dict  # name -> [reference, ...]
    problems: dict  # field key -> [message] (length limits; everything else is the service's)


def parse(form_layout: FormLayout, form: Mapping) -> Posted:
    values, evidence, facts, refs, problems = {}, {}, {}, {}, {}
    for name, f in form_layout.fields.items():
        text = form.get(f.key, "")
        if text:
            values[name] = text
        value = value_of(f, text)
        if value is not None:
            facts[name] = value
        typed = form.get(f.evidence_key, "")
        if typed.strip():
            evidence[name] = typed
            items = [x.strip() for x in _SPLIT.split(typed) if x.strip()]
            if any(len(x) > MAX_EVIDENCE for x in items):
                problems.setdefault(f"evidence.{name}", []).append(
                    f"每条佐证材料不超过{MAX_EVIDENCE}字"
                )
            elif len(items) > MAX_EVIDENCE_ITEMS:
                problems.setdefault(f"evidence.{name}", []).append(
                    f"佐证材料不超过{MAX_EVIDENCE_ITEMS}条"
                )
            refs[name] = items
    reasons = {}
    for name, f in form_layout.fields.items():
        typed = form.get(f.reason_key, "").strip()
        if typed:
            reasons[name] = typed
            if len(typed) > MAX_FACT_REASON:
                problems.setdefault(f"reasons.{name}", []).append(f"理由不超过{MAX_FACT_REASON}字")
    reason = form.get("reason", "")
    if len(reason) > MAX_REASON:
        problems.setdefault("reason", []).append(f"理由不超过{MAX_REASON}字")
    try:
        base = max(0, int(form.get("base_version", "0")))
    except ValueError:
        base = 0
    return Posted(values, evidence, reason, reasons, base, facts, refs, problems)


def field_errors(fields: Mapping) -> dict:
    """A service error's fields as the form shows them: {fact name or "reason"/"version"/"_": [message]}."""
    out: dict = {}
    for key, messages in (fields or {}).items():
        if key.startswith("facts."):
            name = key[len("facts.") :]
        elif key.startswith("evidence."):
            name = "e." + key[len("evidence.") :]
        elif key.startswith("reasons."):
            name = "r." + key[len("reasons.") :]
        elif key == "reason":
            name = "reason"
        elif key == "If-Match":
            name = "version"
        else:
            name = "_"
        out.setdefault(name, []).extend(messages if isinstance(messages, list) else [str(messages)])
    return out
