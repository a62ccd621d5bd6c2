"""The appeal page (申诉): a unit's appeals in a round, the unit's form to file one while the
cycle allows it, and a reviewer's form to answer each clause (维持 or 更正).

Everything goes through ``service.appeals`` (access, the cycle, validation, the journal are the
API's own).  A refused form is shown again with what was typed and the service's message, never
lost.  Registered on the admin blueprint (``admin.views.bp``) by ``admin.init_app``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import flash, redirect, render_template, request, url_for

from service import appeals, rounds
from service import operations as ops
from service.domain.cycle import ACTIONS, shown
from service.errors import status_of
from service.exceptions import Closed, Conflict, Invalid, NotFound

from . import forms
from .auth import ctx, current_person
from .views import bp

#: refusals shown on the page itself, with what was typed
SHOWN_AGAIN = (Invalid, Conflict, Closed, NotFound)


def _may(person, action: str, state: str) -> bool:
    """Whether to offer the cycle's ``action`` to this user now (the service decides again)."""
    step = ACTIONS[action]
    return person.actor.role in step.roles and state in step.starts


def _page(round_id: int, code: str, typed=None, error=None, status: int = 200):
    me = current_person()
    rnd = rounds.get_round(ctx(), me.actor, round_id)
    unit = ops.read_unit(ctx(), me.actor, code)
    shown_appeals = appeals.list_appeals(ctx(), me.actor, round_id, code)
    place = rounds.unit_place(ctx(), me.actor, round_id, code)
    scheme = rounds.round_scheme(ctx(), rnd)
    state = place["state"]
    window_open = datetime.now(UTC) <= rnd.appeal_deadline and rnd.stage != "final"
    can_file = me.can("appeals.file") and _may(me, "appeal", state) and window_open
    can_answer = me.can("appeals.answer") and _may(me, "answer_appeal", state)
    reviewed = {}
    if can_answer and place["reviewed_version"]:
        row = ops.get_submission(ctx(), me.actor, code, rnd.scheme_id, place["reviewed_version"])
        reviewed = {name: forms.to_text(value) for name, value in row.facts.items()}
    layout = forms.layout(scheme)
    return render_template(
        "admin/appeals.html",
        rnd=rnd,
        unit=unit,
        place=place,
        scheme=scheme,
        fields=layout.fields,
        appeals=shown_appeals,
        can_file=can_file,
        can_answer=can_answer,
        appeal_deadline=shown(rnd.appeal_deadline),
        window_open=window_open,
        reviewed=reviewed,
        typed=typed or {},
        error=error,
    ), status


#: what separates evidence references typed in one box: lines or semicolons (as on the fact form)
_SPLIT = re.compile(r"[\n\r；;]+")


def _refs(text: str) -> list[str]:
    return [x.strip() for x in _SPLIT.split(text or "") if x.strip()]


def _filed_items(scheme, form) -> list[dict]:
    """The clauses the form appeals: those with a reason or evidence typed."""
    items = []
    for clause in scheme.clauses.values():
        reason = form.get(f"reason.{clause.id}", "")
        evidence = {}
        for name in clause.reads:
            refs = _refs(form.get(f"ev.{clause.id}.{name}", ""))
            if refs:
                evidence[name] = refs
        if reason.strip() or evidence:
            items.append({"clause": clause.id, "reason": reason, "evidence": evidence})
    return items


def _by_clause(err, items: list) -> dict:
    """A refusal's fields as the filing form shows them: {clause id or "_": [message]}."""
    out: dict = {}
    for key, messages in (err.fields or {}).items():
        parts = key.split(".")
        where = "_"
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            index = int(parts[1])
            where = items[index]["clause"] if index < len(items) else "_"
        out.setdefault(where, []).extend(messages)
    return out


@bp.route("/rounds/<int(max=2147483647):round_id>/units/<code>/appeals", methods=["GET", "POST"])
def appeals_page(round_id: int, code: str):
    if request.method == "GET":
        return _page(round_id, code)
    me = current_person()
    rnd = rounds.get_round(ctx(), me.actor, round_id)
    items = _filed_items(rounds.round_scheme(ctx(), rnd), request.form)
    try:
        filed = appeals.file_appeal(ctx(), me.actor, round_id, code, items)
    except SHOWN_AGAIN as err:
        error = {"message": err.message, "fields": _by_clause(err, items), "form": "file"}
        return _page(round_id, code, dict(request.form), error, status_of(err))
    flash(f"已提交第{filed['id']}号申诉（{len(items)}个条款），单位状态：申诉中。", "ok")
    return redirect(url_for("admin_web.appeals_page", round_id=round_id, code=code))


@bp.route("/appeals/<int(max=2147483647):appeal_id>/items/<clause>/answer", methods=["POST"])
def answer_page(appeal_id: int, clause: str):
    me = current_person()
    form = request.form
    round_id, code = form.get("round_id", type=int), form.get("code", "")
    answer, facts, reasons = form.get("answer", ""), {}, {}
    if answer == "correct":
        rnd = rounds.get_round(ctx(), me.actor, round_id or 0)
        scheme = rounds.round_scheme(ctx(), rnd)
        fields = forms.layout(scheme).fields
        for name in scheme.clauses[clause].reads if clause in scheme.clauses else ():
            typed = form.get(f"f.{name}")
            if typed is None or typed.strip() == form.get(f"was.{name}", "").strip():
                continue  # unchanged: the reviewed value stays
            facts[name] = forms.value_of(fields[name], typed)
            if form.get(f"r.{name}", "").strip():
                reasons[name] = form.get(f"r.{name}")
    try:
        done = appeals.answer_item(
            ctx(), me.actor, appeal_id, clause, answer, form.get("reason", ""), facts, reasons
        )
    except SHOWN_AGAIN as err:
        if round_id is None or not code:
            raise
        error = {"message": err.message, "fields": err.fields, "form": clause}
        return _page(round_id, code, dict(form), error, status_of(err))
    flash(
        f"已答复条款“{clause}”：{appeals.ANSWERS[answer]}；申诉{done['state_words']}，"
        f"单位状态：{done['unit_state_words']}。",
        "ok",
    )
    return redirect(url_for("admin_web.appeals_page", round_id=done["round"], code=done["unit"]))
