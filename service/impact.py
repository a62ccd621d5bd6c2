"""The impact of a rule change: every unit's facts scored under version A and version B, side by
side — total, grade and rank before → after, and each clause whose points change, with both
explanations.

Two halves.  ``compare_units`` and ``rank_both`` work on schemes and facts alone (the command line
``scoring impact`` and the benchmark use them without a database).  The rest is the background job
``rules.impact`` (registered in ``service/jobs.py``): one item per unit reviewed in the round, each
item's result the unit's row (plain JSON values, so any host can rank the rows later), and
``impact_result`` ranking the stored rows under both versions when the result is read.

A fact that version B reads and the unit's facts lack is listed as missing, never taken as zero:
the scoring core already leaves such a clause incomplete, and the row names the facts.  A fact
mapping (``service/mapping.py``: an old fact renamed, or a fixed value with its reason) is applied
to each unit's old facts before they are scored under B; the job keeps the mapping in its
parameters, so a result always says which mapping it used, and each row says how each mapped fact
got its value.  Facts the old facts have and B does not read are listed as dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from . import operations as ops
from . import releases
from .access import Actor, check
from .db import Job, JobItem, Round, RoundUnit, Submission, Unit, marks_of
from .domain.facts import InvalidFacts, check_value
from .domain.grading import rank_units
from .domain.scoring import GradePending, GradeVetoResult, score_units

# the lines a clause's trace prints (rules fired, facts missing, the explanation): both versions'
# lines of a changed clause go with its row, one click away on the result page
from .domain.trace import clause_text, to_data
from .exceptions import Conflict, Invalid, NotFound
from .jobs import Kind, register
from .mapping import FROM, apply_mapping, check_mapping, describe, lacking, schemes_of, words
from .roundstate import REVIEWED, latest_round_of

KIND = "rules.impact"
PERMISSION = "rules.impact"


# --- the scoring half: schemes and facts only ---------------------------------------------------


def _known(scheme, facts: dict) -> dict:
    """The facts ``scheme`` declares: a fact the other version dropped is not an error here."""
    return {k: v for k, v in facts.items() if k in scheme.facts}


def _trace(result) -> str:
    return clause_text(result) if result is not None else ""


def _clause_row(cid: str, a, b, ca, cb) -> dict:
    title = (cb or ca).title
    return {
        "clause": cid,
        "title": title,
        "before": str(ca.points) if ca is not None else None,
        "after": str(cb.points) if cb is not None else None,
        "change": str((cb.points if cb else Decimal(0)) - (ca.points if ca else Decimal(0))),
        "why_before": ca.explanation if ca is not None else f"版本 {a.version[:8]} 没有这一条款",
        "why_after": cb.explanation if cb is not None else f"版本 {b.version[:8]} 没有这一条款",
        "trace_before": _trace(ca),
        "trace_after": _trace(cb),
    }


def _label(scheme, name: str) -> str:
    spec = scheme.facts.get(name)
    return spec.label if spec is not None and spec.label else name


def facts_under(a, b, facts: dict, mapping: dict | None) -> tuple[dict, list[dict]]:
    """A unit's old facts as version ``b`` reads them: the mapping applied, then only the facts
    ``b`` declares; and a note per mapped fact.  A renamed value that ``b``'s fact does not accept
    (out of its new range, a choice it no longer has) is left missing, and its note says why."""
    mapped, notes = apply_mapping(facts, mapping or {})
    shown = []
    for note in notes:
        name, value = note["fact"], note["value"]
        row = {"fact": name, "label": _label(b, name), "how": note["how"], "value": None}
        if note["how"] == "set":
            row.update(value=words(value), reason=note["reason"])
            row["text"] = f"固定值 {words(value)}（理由：{note['reason']}）"
        else:
            row.update({"from": note[FROM], "from_label": _label(a, note[FROM])})
            source = f"原事实“{row['from_label']}”"
            problem = None
            if value is not None and name in b.facts:
                value, problem = check_value(b.facts[name], value)
            if note["value"] is None:
                row["text"] = f"由{source}而来：该单位没有这一事实，按缺失处理"
            elif problem:
                mapped.pop(name, None)
                row["text"] = f"由{source}而来：新事实不接受其值（{problem}），按缺失处理"
            else:
                row["value"] = words(value)
                row["text"] = f"取自{source}：{words(value)}"
        shown.append(row)
    return _known(b, mapped), shown


def _dropped(a, b, facts: dict, notes: list[dict]) -> list[dict]:
    """The facts this unit has under ``a`` that ``b`` does not read and no mapping takes."""
    taken = {n["from"] for n in notes if "from" in n}
    return [
        {"fact": n, "label": _label(a, n)}
        for n, v in facts.items()
        if v is not None and n in a.facts and n not in b.facts and n not in taken
    ]


def unit_row(a, b, ra, rb, mapped: list | None = None, dropped: list | None = None) -> dict:
    """One unit's row: totals under A and B, the clauses whose points differ, the facts B lacks,
    the facts mapped (and how) and those B no longer reads.  Plain JSON values (decimals as exact
    strings), kept with the job's item."""
    by_a = {c.id: c for c in ra.clauses}
    by_b = {c.id: c for c in rb.clauses}
    changed = []
    for cid in list(by_a) + [c for c in by_b if c not in by_a]:
        ca, cb = by_a.get(cid), by_b.get(cid)
        if ca is None or cb is None or ca.points != cb.points:
            changed.append(_clause_row(cid, a, b, ca, cb))
    missing = sorted(set(rb.missing) | {n for p in rb.grade_pending_vetoes for n in p.missing})
    return {
        "unit": ra.unit,
        "before": _standing(ra),
        "after": _standing(rb),
        "clauses": changed,
        "missing": [{"fact": n, "label": b.facts[n].label if n in b.facts else n} for n in missing],
        "mapped": mapped or [],
        "dropped": dropped or [],
    }


def _standing(result) -> dict:
    """What ranking needs of a unit's score, as JSON values."""
    return {
        "total": str(result.total),
        "complete": result.complete,
        "grade_vetoes": to_data(result.grade_vetoes),
        "pending_vetoes": to_data(result.grade_pending_vetoes),
        "facts": to_data(result.facts),
    }


def compare_units(
    a, b, units: dict, matcher, matcher_name: str = "engine", mapping: dict | None = None
) -> list[dict]:
    """Every unit ({name: facts}) scored under ``a`` and ``b`` in one matcher call each, the
    (checked, ``mapping.check_mapping``) mapping applied to the facts scored under ``b``."""
    under_b = {u: facts_under(a, b, f, mapping) for u, f in units.items()}
    ra = score_units(a, {u: _known(a, f) for u, f in units.items()}, matcher, matcher_name, True)
    rb = score_units(b, {u: fb for u, (fb, _n) in under_b.items()}, matcher, matcher_name, True)
    return [
        unit_row(a, b, x, y, under_b[u][1], _dropped(a, b, units[u], under_b[u][1]))
        for u, x, y in zip(units, ra, rb)
    ]


@dataclass
class _Ranked:
    unit: str
    total: Decimal
    grade_vetoes: list
    grade_pending_vetoes: list
    facts: dict
    grade: str | None = None
    distinctions: list = field(default_factory=list)
    grade_explanation: str = ""
    grade_pending: bool = False
    pending_distinctions: list = field(default_factory=list)


def _ranked(row: dict, side: str) -> _Ranked:
    st = row[side]
    vetoes = [GradeVetoResult(**v) for v in st["grade_vetoes"]]
    pending = [GradePending(**p) for p in st["pending_vetoes"]]
    return _Ranked(row["unit"], Decimal(st["total"]), vetoes, pending, st["facts"])


def rank_both(
    a, b, rows: list[dict], mapping: dict | None = None, facts_year: str | int | None = None
) -> dict:
    """The rows ranked and graded under each version: the impact as the API and workbook show it.
    The rank is among the rows given (the units compared), as the ranking page ranks a round.
    ``mapping``: the one the rows were made with; ``facts_year``: whose reviewed facts they are
    (the summary's words; the old version's year if not given)."""
    entries = {}
    for side, scheme in (("before", a), ("after", b)):
        entries[side] = {e.unit: e for e in rank_units(scheme, [_ranked(r, side) for r in rows])}
    units = []
    for row in rows:
        ea, eb = entries["before"][row["unit"]], entries["after"][row["unit"]]
        units.append(
            {
                "unit": row["unit"],
                "unit_code": row.get("unit_code"),
                "total_before": str(ea.total),
                "total_after": str(eb.total),
                "change": str(eb.total - ea.total),
                "rank_before": ea.rank,
                "rank_after": eb.rank,
                "grade_before": ea.grade,
                "grade_after": eb.grade,
                # the grade waits on a missing fact a grade veto reads (待定, not awarded)
                "grade_pending_before": ea.grade_pending,
                "grade_pending_after": eb.grade_pending,
                "clauses": row["clauses"],
                "missing": row["missing"],
                "mapped": row.get("mapped", []),
                "dropped": row.get("dropped", []),
            }
        )
    units.sort(key=lambda u: (u["rank_after"], u["unit"]))
    return {
        "from": {"scheme": a.id, "year": a.year, "version": a.version, "title": a.title},
        "to": {"scheme": b.id, "year": b.year, "version": b.version, "title": b.title},
        "units": units,
        "changed": sum(
            1
            for u in units
            if u["change"] != "0"
            and Decimal(u["change"]) != 0
            or u["rank_before"] != u["rank_after"]
            or u["grade_before"] != u["grade_after"]
        ),
        "mapping": [
            {"fact": name, "label": _label(b, name), **_entry_out(entry)}
            | {"text": describe(entry, a, b, name)}
            for name, entry in (mapping or {}).items()
        ],
        "facts": _facts_summary(a, b, units, facts_year or a.year),
    }


def _entry_out(entry: dict) -> dict:
    if FROM in entry:
        return {"how": "renamed", "from": entry[FROM], "value": None, "reason": None}
    return {"how": "set", "from": None, "value": words(entry["value"]), "reason": entry["reason"]}


def _facts_summary(a, b, units: list[dict], year) -> dict:
    """How many units lack each fact ``b`` reads, and have each fact ``b`` no longer reads, with
    the sentence the pages print: 2023版读取的事实“…”在2022年的已评审事实中没有：N个单位."""
    missing: dict[str, int] = {}
    gone: dict[str, int] = {}
    for u in units:
        for m in u["missing"]:
            missing[m["fact"]] = missing.get(m["fact"], 0) + 1
        for d in u["dropped"]:
            gone[d["fact"]] = gone.get(d["fact"], 0) + 1
    return {
        "missing": [
            {
                "fact": n,
                "label": _label(b, n),
                "units": count,
                "sentence": f"{b.year}版读取的事实“{_label(b, n)}”在{year}年的已评审事实中没有："
                f"{count}个单位",
            }
            for n, count in sorted(missing.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "dropped": [
            {
                "fact": n,
                "label": _label(a, n),
                "units": count,
                "sentence": f"{year}年的已评审事实中的“{_label(a, n)}”{b.year}版不再读取："
                f"{count}个单位有这一事实",
            }
            for n, count in sorted(gone.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def render_text(impact: dict) -> str:
    """The impact as the command line prints it: per unit before → after, then its clauses."""
    a, b = impact["from"], impact["to"]
    lines = [
        f"{a['scheme']}（{a['year']}，版本 {a['version'][:16]}）→ "
        f"{b['scheme']}（{b['year']}，版本 {b['version'][:16]}）"
    ]
    for m in impact.get("mapping", []):
        lines.append(f"事实对应：{m['text']}")
    for u in impact["units"]:
        lines.append(
            f"\n{u['unit']}：总分 {u['total_before']} → {u['total_after']}（{_signed(u['change'])}），"
            f"名次 {u['rank_before']} → {u['rank_after']}，"
            f"等级 {_grade(u, 'before')} → {_grade(u, 'after')}"
        )
        for c in u["clauses"]:
            lines.append(
                f"  · {_clause_name(c)}：{c['before'] or '无此条'} → {c['after'] or '无此条'}"
            )
            lines.append(f"      原：{c['why_before']}")
            lines.append(f"      新：{c['why_after']}")
        for m in u.get("mapped", []):
            if m["how"] != "set":  # a fixed value is the same for every unit: said once, above
                lines.append(f"  对应：{m['label']}（{m['fact']}）{m['text']}")
        if u["missing"]:
            names = "、".join(f"{m['label']}（{m['fact']}）" for m in u["missing"])
            lines.append(f"  缺少新版本读取的事实（按缺失处理，不按0计）：{names}")
        if u.get("dropped"):
            names = "、".join(f"{d['label']}（{d['fact']}）" for d in u["dropped"])
            lines.append(f"  新版本不再读取的事实：{names}")
    lines.append(f"\n共 {len(impact['units'])} 个单位，{impact['changed']} 个有变化。")
    summary = impact.get("facts", {})
    lines.extend(m["sentence"] + "（按缺失处理，不按0计）。" for m in summary.get("missing", []))
    lines.extend(d["sentence"] + "。" for d in summary.get("dropped", []))
    return "\n".join(lines)


def _grade(u: dict, side: str) -> str:
    if u[f"grade_pending_{side}"]:
        return f"{u[f'grade_{side}'] or ''}待定"
    return u[f"grade_{side}"] or "—"


def _clause_name(c: dict) -> str:
    number = f"第{c['clause']}条" if c["clause"].isdigit() else c["clause"]
    return f"{number} {c['title']}"


def _signed(value: str) -> str:
    return value if value.startswith("-") else f"+{value}"


# --- the job: the units reviewed in a round, one item each -------------------------------------


def _version_param(ctx: ops.Context, params: dict, name: str):
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(
            "invalid_params", f"请指定规则版本（{name}）", {f"params.{name}": ["必填：规则版本号"]}
        )
    try:
        return ops.scheme_by_version(ctx, value.strip())
    except NotFound as err:
        raise Invalid(
            "unknown_rules_version", err.message, {f"params.{name}": [err.message]}
        ) from None


def _round(s, scheme_id: str, year: int | None) -> Round | None:
    if year is None:
        return latest_round_of(s, scheme_id)
    return s.scalar(
        select(Round)
        .where(Round.scheme_id == scheme_id, Round.year == year)
        .order_by(Round.id.desc())
        .limit(1)
    )


def check_params(ctx: ops.Context, params: dict) -> dict:
    """{from, to, year?, mapping?, draft?} -> the parameters as kept, with the round whose facts
    are compared and the mapping checked (``mapping.check_mapping``: errors name
    ``params.mapping.<fact>``)."""
    a = _version_param(ctx, params, "from")
    b = _version_param(ctx, params, "to")
    try:
        mapping = check_mapping(a, b, params.get("mapping"))
    except Invalid as err:
        raise Invalid(
            err.code, err.message, {f"params.{k}": v for k, v in err.fields.items()}
        ) from None
    draft = params.get("draft")
    if draft is not None and (isinstance(draft, bool) or not isinstance(draft, int)):
        raise Invalid("invalid_params", "草稿编号应为整数", {"params.draft": ["应为整数"]})
    year = params.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise Invalid("invalid_params", "年度应为整数", {"params.year": ["应为整数，如 2023"]})
    with ctx.db.transaction() as s:
        rnd = _round(s, a.id, year)
        round_id = rnd.id if rnd is not None else None
    if round_id is None:
        where = f"{year}年度" if year is not None else ""
        raise Conflict(
            "no_round",
            f"细则“{a.id}”没有{where}考核轮次，没有可以比较的已评审事实",
            {"year": [where]},
        )
    kept = {"from": a.version, "to": b.version, "year": year, "round": round_id}
    kept["mapping"] = mapping
    if draft is not None:
        kept["draft"] = draft
    return kept


def draft_params(ctx: ops.Context, actor: Actor | None, draft_id: int, year=None) -> dict:
    """The parameters of a draft's impact preview: the version in force for its scheme id (or the
    one it was copied from) against its current files, archived as a version now
    (``releases.draft_version``), with the mapping saved with it (entries for facts the draft no
    longer lacks left out: they are the mapping step's "no longer used")."""
    check(ctx.db, actor, PERMISSION, f"rule_draft:{draft_id}")
    draft, old, new = schemes_of(ctx, actor, draft_id)
    needed = {f.name for f in lacking(old, new)}
    mapping = {k: v for k, v in (draft.mapping or {}).items() if k in needed}
    ctx.registry.remember(new)  # loaded just now (in a child process): archived without again
    to = releases.draft_version(ctx, actor, draft_id)
    params: dict = {"from": old.version, "to": to, "mapping": mapping, "draft": draft_id}
    if year is not None:
        params["year"] = year
    return params


def items(ctx: ops.Context, params: dict) -> list[tuple[str, str]]:
    """The units with reviewed facts in the round, by code."""
    with ctx.db.transaction() as s:
        rows = s.execute(
            select(Unit.code, Unit.name)
            .join(RoundUnit, RoundUnit.unit_id == Unit.id)
            .where(
                RoundUnit.round_id == params["round"],
                RoundUnit.state.in_(REVIEWED),
                RoundUnit.reviewed_version.is_not(None),
            )
            .order_by(Unit.code)
        ).all()
    if not rows:
        raise Conflict("nothing_to_compare", "这一考核轮次还没有已评审的单位，没有可以比较的事实")
    return [(code, name) for code, name in rows]


def run_item(run, params: dict, key: str) -> dict:
    """One unit: its reviewed facts (and panel marks) scored under both versions."""
    ctx = run.ctx
    a = ops.scheme_by_version(ctx, params["from"])
    b = ops.scheme_by_version(ctx, params["to"])
    with ctx.db.transaction() as s:
        rnd = s.get(Round, params["round"])
        unit = s.scalar(select(Unit).where(Unit.code == key))
        if unit is None or rnd is None:
            raise NotFound("unknown_unit", f"没有编号为“{key}”的单位")
        place = s.scalar(
            select(RoundUnit).where(RoundUnit.round_id == rnd.id, RoundUnit.unit_id == unit.id)
        )
        facts = s.scalar(
            select(Submission.facts).where(
                Submission.unit_id == unit.id,
                Submission.scheme_id == rnd.scheme_id,
                Submission.version == place.reviewed_version,
            )
        )
        marks = marks_of(s, rnd.id, unit.id)
    if facts is None:
        raise NotFound("no_submission", f"单位“{unit.name}”没有已评审的事实")
    under_b, mapped = facts_under(a, b, facts, params.get("mapping"))
    results = []
    for scheme, given in ((a, _known(a, facts)), (b, under_b)):
        try:
            results.append(
                score_units(
                    scheme,
                    {unit.name: given},
                    ctx.engine,
                    ctx.engine.name,
                    explain=True,
                    marks={unit.name: marks or {}},
                )[0]
            )
        except InvalidFacts as err:
            words = "；".join(str(e) for e in err.errors)
            raise Invalid(
                "invalid_facts", f"已评审的事实不符合版本 {scheme.version[:8]} 的规定：{words}"
            ) from None
    row = unit_row(a, b, *results, mapped, _dropped(a, b, facts, mapped))
    row["unit_code"] = key
    return row


def impact_result(ctx: ops.Context, actor: Actor | None, job_id: int) -> dict:
    """An impact job's progress and, from its stored rows, the units ranked under both versions
    (the rows done so far while it runs)."""
    check(ctx.db, actor, PERMISSION, f"job:{job_id}")
    with ctx.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None or job.kind != KIND:
            raise NotFound("unknown_job", f"没有编号为 {job_id} 的影响预览任务")
        params, state, total = dict(job.params), job.state, job.total
        rnd = s.get(Round, params["round"]) if params.get("round") else None
        facts_year = rnd.year if rnd is not None else None
        rows = list(
            s.scalars(
                select(JobItem.result)
                .where(JobItem.job_id == job_id, JobItem.state == "done")
                .order_by(JobItem.seq)
            )
        )
        failures = [
            {"unit_code": k, "unit": label, "message": m}
            for k, label, m in s.execute(
                select(JobItem.key, JobItem.label, JobItem.message)
                .where(JobItem.job_id == job_id, JobItem.state == "failed")
                .order_by(JobItem.seq)
            )
        ]
    a = ops.scheme_by_version(ctx, params["from"])
    b = ops.scheme_by_version(ctx, params["to"])
    result = rank_both(a, b, rows, params.get("mapping"), facts_year)
    result.update(
        job=job_id,
        state=state,
        finished=state in ("done", "failed", "cancelled"),
        total=total,
        done=len(rows),
        round=params.get("round"),
        year=params.get("year"),
        failures=failures,
        draft=params.get("draft"),
    )
    return result


# --- the workbook -------------------------------------------------------------------------------


def workbook(impact: dict) -> bytes:
    """The impact as an .xlsx: 单位 (before/after, rank and grade changes, the facts missing,
    mapped and dropped), 条款变化, and 事实对应 (the mapping used, each fixed value's reason, and
    how many units lack or no longer use each fact)."""
    from io import BytesIO

    from openpyxl import Workbook

    wb = Workbook()
    units = wb.active
    units.title = "单位"
    units.append(
        ["单位编号", "单位", "原总分", "新总分", "变化", "原名次", "新名次", "原等级", "新等级",
         "缺少的事实", "对应的事实", "不再读取的事实"]
    )  # fmt: skip
    clauses = wb.create_sheet("条款变化")
    clauses.append(
        ["单位编号", "单位", "条款", "标题", "原得分", "新得分", "变化", "原说明", "新说明"]
    )
    for u in impact["units"]:
        units.append(
            [u.get("unit_code") or "", u["unit"], Decimal(u["total_before"]),
             Decimal(u["total_after"]), Decimal(u["change"]), u["rank_before"], u["rank_after"],
             _grade(u, "before"), _grade(u, "after"),
             "、".join(m["label"] for m in u["missing"]),
             "；".join(f"{m['label']}：{m['text']}" for m in u.get("mapped", [])),
             "、".join(d["label"] for d in u.get("dropped", []))]
        )  # fmt: skip
        for c in u["clauses"]:
            clauses.append(
                [u.get("unit_code") or "", u["unit"], c["clause"], c["title"],
                 Decimal(c["before"]) if c["before"] is not None else None,
                 Decimal(c["after"]) if c["after"] is not None else None,
                 Decimal(c["change"]), c["why_before"], c["why_after"]]
            )  # fmt: skip
    facts = wb.create_sheet("事实对应")
    facts.append(["事实", "说明", "对应方式", "原事实", "固定值", "理由"])
    for m in impact.get("mapping", []):
        how = "改名而来" if m["how"] == "renamed" else "固定值"
        facts.append([m["fact"], m["label"], how, m["from"], m["value"], m["reason"]])
    summary = impact.get("facts", {})
    if summary.get("missing") or summary.get("dropped"):
        facts.append([])
        facts.append(["事实", "说明", "情况", "单位数"])
        for m in summary.get("missing", []):
            facts.append([m["fact"], m["label"], "新版本读取而已评审事实中没有", m["units"]])
        for d in summary.get("dropped", []):
            facts.append([d["fact"], d["label"], "已评审事实中有而新版本不再读取", d["units"]])
    for sheet in (units, clauses, facts):
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # text, never a formula
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def summarize(rows: list) -> dict:
    """What the job's record says at its end (the ranks need both schemes: ``impact_result``)."""
    moved = [r for r in rows if Decimal(r["after"]["total"]) != Decimal(r["before"]["total"])]
    return {"units": len(rows), "totals_changed": len(moved)}


IMPACT = register(
    Kind(
        name=KIND,
        title="规则改动的影响预览：按两个版本为已评审单位评分并比较",
        permission=PERMISSION,
        check=check_params,
        items=items,
        run_item=run_item,
        target=lambda params: f"rules:{params['from'][:16]}->{params['to'][:16]}",
        summarize=summarize,
    )
)
