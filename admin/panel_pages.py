"""The panel's page (评审组打分, several reviewers): a unit's clauses scored by a panel in a round,
how many of how many marks are in, the marks the user may see, and a reviewer's form for their own
points and reason.

Reading is ``service.panel.read_marks``'s, blind as there: a reviewer sees the others' marks only
after entering their own, an admin or an auditor sees all of them with names, the unit's submitter
sees them once the unit's score is published.  Entering is ``service.panel.enter_mark``'s (access,
the cycle's review step and its deadline, the panel's size, the journal).  A refused form (409, 422,
423) is shown again with the service's message and what was typed.  One page per unit lists every
panel clause; each clause also has a page of its own.  Registered on the admin blueprint
(``admin.views.bp``) by ``admin.init_app``.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from service import operations as ops
from service import panel, rounds
from service.access import check
from service.errors import status_of
from service.exceptions import Closed, Conflict, Invalid

from . import forms
from .auth import ctx, current_person
from .standing import open_to
from .views import bp

#: refusals shown on the page itself, with what was typed (403 and 404: the error page)
SHOWN_AGAIN = (Invalid, Conflict, Closed)

_UNIT = "/rounds/<int(max=2147483647):round_id>/units/<code>"


def _page(round_id: int, code: str, only: str | None = None, typed=None, error=None, status=200):
    """The unit's panel clauses in the round (``only``: one of them), each with its marks as this
    user may see them and, for a reviewer while the unit is under review, the form for their own."""
    me = current_person()
    rnd = rounds.get_round(ctx(), me.actor, round_id)
    unit = ops.read_unit(ctx(), me.actor, code)
    place = rounds.unit_place(ctx(), me.actor, round_id, code)
    scheme = rounds.round_scheme(ctx(), rnd)
    wanted = [only] if only is not None else list(scheme.panels)
    # the form only where the cycle takes a mark now (deadlines aside: the service names them)
    may_enter = me.can("rounds.review") and "review" in open_to(me.actor.role, place["state"], rnd)
    fields = forms.layout(scheme).fields
    clauses = []
    for clause_id in wanted:
        view = panel.read_marks(ctx(), me.actor, round_id, code, clause_id)
        mine = next((m for m in view["marks"] if m["own"]), None)
        clauses.append(
            {
                "clause": scheme.clauses[clause_id],
                "view": view,
                "mine": mine,
                "mine_points": forms.to_text(mine["points"]) if mine else "",
                "field": fields.get(scheme.panels[clause_id].value),
            }
        )
    return render_template(
        "admin/panel.html",
        rnd=rnd,
        unit=unit,
        place=place,
        scheme=scheme,
        clauses=clauses,
        only=only,
        may_enter=may_enter,
        typed=typed or {},
        error=error,
    ), status


@bp.get(_UNIT + "/marks")
def panel_page(round_id: int, code: str):
    return _page(round_id, code)


@bp.route(_UNIT + "/clauses/<clause>/marks", methods=["GET", "POST"])
def panel_clause_page(round_id: int, code: str, clause: str):
    """A panel clause's page of its own; its form posts here (the reviewer's own mark)."""
    if request.method == "GET":
        return _page(round_id, code, clause)
    me = current_person()
    rnd = rounds.get_round(ctx(), me.actor, round_id)
    typed = {"points": request.form.get("points", ""), "reason": request.form.get("reason", "")}
    scheme = rounds.round_scheme(ctx(), rnd)
    rule = scheme.panels.get(clause)
    spec = forms.layout(scheme).fields.get(rule.value) if rule is not None else None
    # the typed points as the fact form reads numbers (full-width digits, the unit after them);
    # what is not a number goes on as typed, for the service to refuse in its own words
    points = forms.value_of(spec, typed["points"]) if spec else typed["points"].strip()
    try:
        if points is None:
            # the role before the form's content: a submitter learns nothing more than 403
            check(ctx().db, me.actor, "rounds.review", f"round:{round_id}/unit:{code}")
            missing = {"points": ["必填：请填写您的打分"]}
            if not typed["reason"].strip():
                missing["reason"] = ["必须写明理由"]
            raise Invalid("invalid_mark", "评审打分有误", missing)
        done = panel.enter_mark(ctx(), me.actor, round_id, code, clause, points, typed["reason"])
    except SHOWN_AGAIN as err:
        error = {"clause": clause, "message": err.message, "fields": err.fields or {}}
        back = clause if request.form.get("back") == "clause" else None
        return _page(round_id, code, back, typed, error, status_of(err))
    flash(
        f"已录入您对条款“{clause}”的打分：{forms.to_text(done['points'])}分"
        f"（已收到{done['entered']}份，共需{done['reviewers']}份）。",
        "ok",
    )
    if request.form.get("back") == "clause":
        return redirect(
            url_for("admin_web.panel_clause_page", round_id=round_id, code=code, clause=clause)
        )
    return redirect(
        url_for("admin_web.panel_page", round_id=round_id, code=code) + f"#clause-{clause}"
    )
