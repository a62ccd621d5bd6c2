"""Every rule version can be read (issue 11): any version, served or archived, opens read-only at
``/admin/rules/versions/<version>`` with its publication record (``releases.publication_record``:
a release's proposer, note, approver, dates and effective year or round; a directory import's start
or reload, by whom, when; the rule sets that served it; the rounds pinned to it, and those an
approval moved to or from it, from its journal entry), its clauses as the
served scheme's page shows them (source text, rules in words, test cases), a download of its files
and a comparison with any other version (the rules page's comparison).

Reading a version needs ``rules.read`` (admins, editors, auditors); nothing here writes.
"""

from __future__ import annotations

from flask import Response, render_template

from service import operations as ops
from service import releases

from . import export, forms, present
from .auth import ctx, current_actor
from .views import bp


@bp.get("/rules/versions/<version>")
def rule_version(version):
    actor = current_actor()
    record = releases.publication_record(ctx(), actor, version)  # 404 page for an unknown one
    scheme = ops.scheme_by_version(ctx(), version, record["folder"])
    # to compare with, the comparison one most often wants first: the version a release was
    # compared with at approval or based on (last year's, for a copy), then the same scheme's
    # other versions, then the rest, each newest first (rule_versions lists them oldest first)
    related = [
        v
        for p in record["releases"]
        for v in (p["against"], p["base_version"])
        if v is not None and v != version
    ]
    others = [v for v in ops.rule_versions(ctx(), actor) if v["version"] != version][::-1]

    def rank(v):
        if v["version"] in related:
            return related.index(v["version"])
        return len(related) + (v["scheme"] != record["scheme"])

    others.sort(key=rank)  # stable: newest first within each group
    return render_template(
        "admin/version_page.html",
        r=record,
        scheme=scheme,
        words=present,
        layout=forms.layout(scheme),
        others=others,
        draft_words=releases.STATE_WORDS,
    )


@bp.get("/rules/versions/<version>/zip")
def rule_version_zip(version):
    """The version's files as ``releases.version_zip`` gives them (``scoring check`` reads it)."""
    name, data = releases.version_zip(ctx(), current_actor(), version)
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = export.attachment(name)
    return response
