"""The impact preview of a rule draft (issue 10): /admin/rules/drafts/<id>/impact.

The page lists the facts the draft reads that the old facts lack (the version in force for the
draft's scheme id, or the one it was copied from), with a form to map each (an old fact it comes
from, or a fixed value with its reason) that is saved with the draft (``mapping.set_mapping``),
the old facts the draft no longer reads, and 开始影响预览: the draft's current files archived as a
version and the impact job started (``impact.draft_params``), whose result page shows its progress
and, when done, each unit before → after.  Plain forms: everything works without script.  A wrong
mapping comes back as this page with what was typed and each error beside its fact.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from service import impact, jobs, mapping, releases
from service.exceptions import Conflict, Invalid

from .auth import ctx, current_actor
from .views import bp

NO_MAP, FROM, VALUE = "", "from", "value"


def _render(draft_id: int, typed: dict | None = None, errors: dict | None = None, status=200):
    """The page: the mapping step (as saved, or as typed with its errors), or why it cannot be
    shown (a draft that does not load, no old version to compare with)."""
    actor = current_actor()
    try:
        draft, old, new = mapping.schemes_of(ctx(), actor, draft_id)
    except Conflict as err:
        draft = releases.read_draft(ctx(), actor, draft_id)
        return render_template(
            "admin/impact_draft.html", draft=draft, view=None, problem=err.message
        ), 409
    view = mapping.view_of(draft, old, new)
    rows = []
    for fact in view["facts"]:
        entry = fact["entry"] or {}
        shown = (typed or {}).get(fact["fact"]) or {
            "how": {"renamed": FROM, "set": VALUE}.get(entry.get("how"), NO_MAP),
            "from": entry.get("from") or "",
            "value": entry.get("value") or "",
            "reason": entry.get("reason") or "",
        }
        problems = (errors or {}).get(f"mapping.{fact['fact']}", [])
        rows.append({**fact, "shown": shown, "errors": problems})
    return render_template(
        "admin/impact_draft.html",
        draft=draft,
        view=view,
        rows=rows,
        problem=None,
        errors=errors or {},
    ), status


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>/impact")
def draft_impact(draft_id):
    return _render(draft_id)


def _typed(new) -> tuple[dict, dict, dict]:
    """The form as typed ({fact: {how, from, value, reason}}), the mapping it says, and the
    errors found before the service checks it (a value that is not of the fact's type)."""
    typed, wanted, errors = {}, {}, {}
    for name, spec in new.facts.items():
        how = request.form.get(f"how.{name}")
        if how is None:
            continue  # not a fact of the form
        shown = {
            "how": how,
            "from": request.form.get(f"from.{name}", ""),
            "value": request.form.get(f"value.{name}", ""),
            "reason": request.form.get(f"reason.{name}", ""),
        }
        typed[name] = shown
        if how == FROM:
            wanted[name] = {"from": shown["from"]}
        elif how == VALUE:
            try:
                value = (
                    mapping.parse_value(spec, shown["value"]) if shown["value"].strip() else None
                )
            except ValueError as err:
                errors[f"mapping.{name}"] = [f"固定值{err}"]
                continue
            wanted[name] = {"value": value, "reason": shown["reason"]}
    return typed, wanted, errors


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/mapping")
def draft_mapping_save(draft_id):
    actor = current_actor()
    _draft, _old, new = mapping.schemes_of(ctx(), actor, draft_id)
    typed, wanted, errors = _typed(new)
    lock = request.form.get("lock", "")
    if not errors:
        try:
            mapping.set_mapping(ctx(), actor, draft_id, int(lock) if lock.isdigit() else -1, wanted)
        except Invalid as err:
            errors = err.fields
        except Conflict as err:  # someone changed the draft meanwhile: read it again
            flash(err.message, "bad")
            return redirect(url_for("admin_web.draft_impact", draft_id=draft_id))
        else:
            flash(f"已保存事实对应：{len(wanted)} 个事实。", "ok")
            return redirect(url_for("admin_web.draft_impact", draft_id=draft_id))
    return _render(draft_id, typed, errors, 422)


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/impact")
def draft_impact_start(draft_id):
    """开始影响预览: the draft's files archived as a version, the job started over the reviewed
    units; its result page shows the progress (refreshing by itself, no script)."""
    year = request.form.get("year", "").strip()
    if year and not year.isdigit():
        flash("年度应为整数，如 2022", "bad")
        return redirect(url_for("admin_web.draft_impact", draft_id=draft_id) + "#start")
    try:
        params = impact.draft_params(ctx(), current_actor(), draft_id, int(year) if year else None)
        job = jobs.start_job(ctx(), current_actor(), impact.KIND, params)
    except (Invalid, Conflict) as err:  # said on the page the form is on
        details = "；".join(m for ms in err.fields.values() for m in ms if m not in err.message)
        flash(err.message + (f"（{details}）" if details else ""), "bad")
        return redirect(url_for("admin_web.draft_impact", draft_id=draft_id) + "#start")
    flash(f"已开始影响预览：共 {job['total']} 个单位。", "ok")
    return redirect(url_for("admin_web.rules_impact", job_id=job["id"]))
