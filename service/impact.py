"""The impact of a rule change: every unit's facts scored under version A and version B, side by
side — total, grade and rank before → after, and each clause whose points change, with both
explanations.

Two halves.  ``compare_units`` and ``rank_both`` work on schemes and facts alone (the command line
``scoring impact`` and the benchmark use them without a database).  The rest is the background job
``rules.impact`` (registered in ``service/jobs.py``): one item per unit reviewed in the round, each
item's result the unit's row (plain JSON values, so any host can rank the rows later), and
``impact_result`` ranking the stored rows under both versions when the result is read.

A fact that version B reads and the unit's facts lack is listed as missing, never taken as zero:
the scoring core already leaves such a clause incomplete, and the row names the facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from . import operations as ops
from .access import Actor, check
from .db import Job, JobItem, Round, RoundUnit, Submission, Unit, marks_of
from .domain.facts import InvalidFacts
from .domain.grading import rank_units
from .domain.scoring import GradePending, GradeVetoResult, score_units
from .domain.trace import to_data
from .exceptions import Conflict, Invalid, NotFound
from .jobs import Kind, register
from .roundstate import REVIEWED, latest_round_of

KIND = "rules.impact"
PERMISSION = "rules.impact"


# --- the scoring half: schemes and facts only ---------------------------------------------------


def _known(scheme, facts: dict) -> dict:
    """The facts ``scheme`` declares: a fact the other version dropped is not an error here."""
    return {k: v for k, v in facts.items() if k in scheme.facts}


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
    }


def unit_row(a, b, ra, rb) -> dict:
    """One unit's row: totals under A and B, the clauses whose points differ, the facts B lacks.
    Plain JSON values (decimals as exact strings), kept with the job's item."""
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


def compare_units(a, b, units: dict, matcher, matcher_name: str = "engine") -> list[dict]:
    """Every unit ({name: facts}) scored under ``a`` and ``b`` in one matcher call each."""
    ra = score_units(a, {u: _known(a, f) for u, f in units.items()}, matcher, matcher_name, True)
    rb = score_units(b, {u: _known(b, f) for u, f in units.items()}, matcher, matcher_name, True)
    return [unit_row(a, b, x, y) for x, y in zip(ra, rb)]


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


def rank_both(a, b, rows: list[dict]) -> dict:
    """The rows ranked and graded under each version: the impact as the API and workbook show it.
    The rank is among the rows given (the units compared), as the ranking page ranks a round."""
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
    }


def render_text(impact: dict) -> str:
    """The impact as the command line prints it: per unit before → after, then its clauses."""
    a, b = impact["from"], impact["to"]
    lines = [
        f"{a['scheme']}（{a['year']}，版本 {a['version'][:16]}）→ "
        f"{b['scheme']}（{b['year']}，版本 {b['version'][:16]}）"
    ]
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
        if u["missing"]:
            names = "、".join(f"{m['label']}（{m['fact']}）" for m in u["missing"])
            lines.append(f"  缺少新版本读取的事实（按缺失处理，不按0计）：{names}")
    lines.append(f"\n共 {len(impact['units'])} 个单位，{impact['changed']} 个有变化。")
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
    """{from, to, year?} -> the parameters as kept, with the round whose facts are compared."""
    a = _version_param(ctx, params, "from")
    b = _version_param(ctx, params, "to")
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
    return {"from": a.version, "to": b.version, "year": year, "round": round_id}


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
    results = []
    for scheme in (a, b):
        try:
            results.append(
                score_units(
                    scheme,
                    {unit.name: _known(scheme, facts)},
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
    row = unit_row(a, b, *results)
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
    result = rank_both(a, b, rows)
    result.update(
        job=job_id,
        state=state,
        finished=state in ("done", "failed", "cancelled"),
        total=total,
        done=len(rows),
        round=params.get("round"),
        year=params.get("year"),
        failures=failures,
    )
    return result


# --- the workbook -------------------------------------------------------------------------------


def workbook(impact: dict) -> bytes:
    """The impact as an .xlsx: 单位 (before/after, rank and grade changes) and 条款变化."""
    from io import BytesIO

    from openpyxl import Workbook

    wb = Workbook()
    units = wb.active
    units.title = "单位"
    units.append(
        ["单位编号", "单位", "原总分", "新总分", "变化", "原名次", "新名次", "原等级", "新等级",
         "缺少的事实"]
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
             "、".join(m["label"] for m in u["missing"])]
        )  # fmt: skip
        for c in u["clauses"]:
            clauses.append(
                [u.get("unit_code") or "", u["unit"], c["clause"], c["title"],
                 Decimal(c["before"]) if c["before"] is not None else None,
                 Decimal(c["after"]) if c["after"] is not None else None,
                 Decimal(c["change"]), c["why_before"], c["why_after"]]
            )  # fmt: skip
    for sheet in (units, clauses):
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
