"""Schemes, their facts as JSON Schema, and what-if evaluation."""

from __future__ import annotations

from schemas import (
    EvaluateRequest,
    RankingArgs,
    RankingOut,
    SchemeDetail,
    SchemeSummary,
    ScoreTrace,
)
from service import operations as ops
from service.access import check
from service.domain.panel import panel_words
from service.domain.trace import render, to_data

from .common import TEXT_DOC, Blueprint, actor, ctx, text_response, wants_text

blp = Blueprint(
    "schemes", __name__, url_prefix="/api/schemes", description="考核细则：条款、事实与试算"
)


def _summary(s) -> dict:
    return {
        "id": s.id,
        "title": s.title,
        "year": s.year,
        "issuer": s.issuer,
        "total": s.total,
        "unit": s.unit,
        "version": s.version,
        "clauses": len(s.clauses),
        "grading": s.grading.method,
    }


def _category(c) -> dict:
    return {
        "id": c.id,
        "title": c.title,
        "kind": c.kind,
        "points": c.points,
        "cap": c.cap,
        "clauses": list(c.clauses),
        "categories": [_category(x) for x in c.children],
    }


def _rule(r) -> dict:
    data = {"id": r.id, "kind": r.kind, "title": r.title, "note": r.note}
    if r.when_text:
        data["when"] = r.when_text
    if r.measure_text:
        data["measure"] = r.measure_text
    if r.bands:
        data["bands"] = [
            {"range": b.range.text, "points": str(b.points), "label": b.label} for b in r.bands
        ]
    if r.levels:
        data["levels"] = [
            {"range": lv.range.text, "label": lv.label, "text": lv.text} for lv in r.levels
        ]
    for key in ("points", "each", "step", "cap", "scale_from", "scale_to"):
        if getattr(r, key) is not None:
            data[key] = str(getattr(r, key))
    if r.panel is not None:  # scored by several reviewers: their marks, not a fact entered
        data["panel"] = {
            "reviewers": r.panel.reviewers,
            "drop": {"highest": r.panel.drop_highest, "lowest": r.panel.drop_lowest},
            "words": panel_words(r.panel),
        }
    return data


def detail(s) -> dict:
    return dict(
        _summary(s),
        source=s.source.text,
        note=s.notes,
        categories=[_category(c) for c in s.categories],
        clause_list=[
            {
                "id": c.id,
                "title": c.title,
                "category": c.category,
                "kind": c.kind,
                "points": c.points,
                "start": c.start,
                "source": c.source.text,
                "source_ref": c.source.ref,
                "offices": list(c.offices),
                "deadline": c.deadline,
                "evidence": list(c.evidence),
                "note": c.note,
                "facts": list(c.reads),
                "rules": [_rule(r) for r in c.rules],
            }
            for c in s.clauses.values()
        ],
        facts=[
            {
                "name": f.name,
                "type": f.type,
                "label": f.label,
                "unit": f.unit,
                "help": f.help,
                "min": f.minimum,
                "max": f.maximum,
                "choices": list(f.choices),
                "required": f.required,
                # asked for only when this holds; null: always
                "applies_when": f.applies_when_text or None,
            }
            for f in s.facts.values()
        ],
        grading_detail=to_data(s.grading)
        | {
            "vetoes": [
                {
                    "id": v.id,
                    "when": v.when_text,
                    "effect": v.effect,
                    "grade": v.grade,
                    "reason": v.reason,
                }
                for v in s.grading.vetoes
            ]
        },
    )


@blp.route("")
@blp.response(200, SchemeSummary(many=True))
@blp.errors(401)
def list_schemes():
    """所有正在使用的细则。"""
    check(ctx().db, actor(), "schemes.read", "schemes")
    return [_summary(s) for s in ctx().registry.schemes().values()]


@blp.route("/<scheme_id>")
@blp.response(200, SchemeDetail)
@blp.errors(401, 404)
def get_scheme(scheme_id):
    """一套细则：类别树、条款（原文、分值、责任部门、佐证材料）、每个事实的类型、单位、范围与说明、版本。"""
    check(ctx().db, actor(), "schemes.read", f"scheme:{scheme_id}")
    return detail(ops.current_scheme(ctx(), scheme_id))


@blp.route("/<scheme_id>/facts-schema")
@blp.response(200)
@blp.errors(401, 404)
def facts_schema(scheme_id):
    """细则全部事实的 JSON Schema，供表单和其他系统使用。"""
    check(ctx().db, actor(), "schemes.read", f"scheme:{scheme_id}")
    s = ops.current_scheme(ctx(), scheme_id)
    props = {}
    for f in s.facts.values():
        p = {"title": f.label}
        if f.help:
            p["description"] = f.help
        if f.type in ("number", "percent"):
            p["type"] = "number"
        elif f.type == "integer":
            p["type"] = "integer"
        elif f.type == "boolean":
            p["type"] = "boolean"
        else:
            p["type"] = "string"
            p["maxLength"] = 2000
        if f.choices:
            p["enum"] = list(f.choices)
        if f.minimum is not None:
            p["minimum"] = float(f.minimum) if f.minimum != int(f.minimum) else int(f.minimum)
        if f.maximum is not None:
            p["maximum"] = float(f.maximum) if f.maximum != int(f.maximum) else int(f.maximum)
        if f.unit:
            p["x-unit"] = f.unit
        p["x-needed-for-complete-score"] = f.required
        if f.applies_when_text:
            p["x-applies-when"] = f.applies_when_text
        props[f.name] = p
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{s.title}：事实",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "x-scheme-version": s.version,
    }


@blp.route("/<scheme_id>/evaluate", methods=["POST"])
@blp.arguments(EvaluateRequest)
@blp.errors(400, 401, 404, 413, 503)
@blp.response(200, ScoreTrace)
@blp.alt_response(200, **TEXT_DOC)
def evaluate(body, scheme_id):
    """试算：按细则对提交的事实评分并说明每一分；不保存任何内容。

    JSON 为结构化的计分轨迹；请求头 `Accept: text/plain` 则得到同一轨迹的可读中文文字。"""
    result = ops.evaluate(ctx(), actor(), scheme_id, body["facts"])
    return text_response(render(result)) if wants_text() else {"result": to_data(result)}


@blp.route("/<scheme_id>/ranking")
@blp.arguments(RankingArgs, location="query")
@blp.response(200, RankingOut)
@blp.errors(401, 403, 404)
def ranking(args, scheme_id):
    """一个考核轮次（默认最新的）中各单位按正式得分排名，并按本轮规则版本的评级办法评级（并列同名次、
    等级否决）；没有正式得分的单位列在 unranked 中，注明未填报或待评审，不会被漏掉。"""
    return ops.ranking(ctx(), actor(), scheme_id, round_id=args.get("round"))
