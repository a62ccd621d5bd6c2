"""The drafts API (/api/rules/drafts…): the yearly cycle of a scheme version over HTTP."""

from __future__ import annotations

import io
import zipfile

from service.rulefiles.loader import version_of

from ..conftest import RULES

GUMEILU = RULES / "minhang-gumeilu" / "2022"
V2022 = version_of(GUMEILU)


def _copy(api, who="editor"):
    made = api.post("/api/rules/drafts", who, json={"copy": {"version": V2022, "year": "2023"}})
    assert made.status_code == 201, made.json
    return made.json


def test_a_draft_goes_from_copy_to_publication_over_http(api):
    draft = _copy(api)
    assert draft["scheme_id"] == "gumeilu-2023" and draft["checked"]["ok"] is True
    listed = api.get("/api/rules/drafts", "auditor")
    assert listed.status_code == 200
    assert [d["id"] for d in listed.json] == [draft["id"]] and "files" not in listed.json[0]
    assert api.get("/api/rules/drafts?state=published", "auditor").json == []
    path = f"/api/rules/drafts/{draft['id']}"
    read = api.get(path, "auditor")
    assert read.status_code == 200 and read.json["files"] == draft["files"]

    # a save with a failing case is stored, and says which case at which line
    files = dict(draft["files"])
    rel = "clauses/01-leading-group.yaml"
    files[rel] = files[rel].replace("    points: 2\n", "    points: 1\n", 1)
    saved = api.call(
        "PUT", f"{path}/files", "editor", json={"lock": draft["lock"], "files": files, "what": "改"}
    )
    assert saved.status_code == 200, saved.json
    [case] = saved.json["checked"]["failing"]
    assert case["file"] == rel and case["case"] == "1 四件都做到"
    stale = api.call("PUT", f"{path}/files", "editor", json={"lock": draft["lock"], "files": files})
    assert stale.status_code == 409 and stale.json["error"]["code"] == "stale_draft"
    refused = api.post(f"{path}/propose", "editor", json={"lock": saved.json["lock"], "note": "x"})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "failing_tests"
    assert list(refused.json["error"]["fields"]) == [f"{rel}:{case['line']}"]

    # fixed, checked, proposed, approved by an admin
    fixed = api.call(
        "PUT", f"{path}/files", "editor", json={"lock": saved.json["lock"], "files": draft["files"]}
    )
    assert fixed.json["checked"]["ok"] is True
    checked = api.post(f"{path}/check", "editor")
    assert checked.status_code == 200 and checked.json["checked"]["ok"] is True
    offered = api.post(
        f"{path}/propose", "editor", json={"lock": checked.json["lock"], "note": "请批准"}
    )
    assert offered.status_code == 200 and offered.json["state"] == "proposed"
    no_year = api.post(f"{path}/approve", "admin", json={"lock": offered.json["lock"]})
    assert no_year.status_code == 422 and "effective_year" in no_year.json["error"]["fields"]
    by_editor = api.post(
        f"{path}/approve", "editor", json={"lock": offered.json["lock"], "effective_year": 2023}
    )
    assert by_editor.status_code == 403
    done = api.post(
        f"{path}/approve", "admin", json={"lock": offered.json["lock"], "effective_year": 2023}
    )
    assert done.status_code == 200, done.json
    assert (done.json["state"], done.json["decided_by"]) == ("published", "admin")
    served = api.get("/api/schemes/gumeilu-2023", "auditor")
    assert served.status_code == 200 and served.json["version"] == done.json["version"]
    actions = [e["action"] for e in api.get("/api/journal", "admin").json]
    for action in ("rules.draft.create", "rules.draft.save", "rules.propose", "rules.approve"):
        assert action in actions

    # both downloads are zips of the exact files
    got = api.get(f"{path}/zip", "auditor")
    assert got.status_code == 200 and got.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.data)) as z:
        assert z.read("2023/scheme.yaml").decode("utf-8") == draft["files"]["scheme.yaml"]
    version = api.get(f"/api/rules/versions/{done.json['version']}/zip", "auditor")
    assert version.status_code == 200 and version.data == got.data
    assert "attachment" in version.headers["Content-Disposition"]
    assert api.get(f"/api/rules/versions/{'0' * 64}/zip", "auditor").status_code == 404


def test_return_and_withdraw_over_http(api):
    draft = _copy(api)
    path = f"/api/rules/drafts/{draft['id']}"
    offered = api.post(f"{path}/propose", "editor", json={"lock": draft["lock"]}).json
    no_reason = api.post(f"{path}/return", "admin", json={"lock": offered["lock"], "reason": ""})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["error"]["fields"]
    back = api.post(
        f"{path}/return", "admin", json={"lock": offered["lock"], "reason": "请补充说明"}
    )
    assert back.status_code == 200 and back.json["reason"] == "请补充说明"
    gone = api.post(
        f"{path}/withdraw", "editor", json={"lock": back.json["lock"], "reason": "不改了"}
    )
    assert gone.status_code == 200 and gone.json["state"] == "withdrawn"


def test_create_from_disk_upload_and_the_disk_status(api):
    disk = api.get("/api/rules/disk", "auditor")
    assert disk.status_code == 200
    gumeilu = next(d for d in disk.json if d["scheme"] == "gumeilu-2022")
    assert gumeilu["served_version"] == gumeilu["disk_version"] == V2022
    assert (gumeilu["differs"], gumeilu["imported"]) == (False, True)
    made = api.post("/api/rules/drafts", "editor", json={"disk": "gumeilu-2022"})
    assert made.status_code == 201 and made.json["origin"] == "disk"
    assert api.post("/api/rules/drafts", "editor", json={"disk": "nope"}).status_code == 404
    both = api.post(
        "/api/rules/drafts",
        "editor",
        json={"disk": "x", "copy": {"version": V2022, "year": "2023"}},
    )
    assert both.status_code == 422
    zipped = api.get(f"/api/rules/versions/{V2022}/zip", "editor").data
    api.post(f"/api/rules/drafts/{made.json['id']}/withdraw", "editor",
             json={"lock": made.json["lock"], "reason": "改用上传"})  # fmt: skip
    sent = api.post(
        "/api/rules/drafts/upload",
        "editor",
        data={"file": (io.BytesIO(zipped), "gumeilu.zip")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 201, sent.json
    assert sent.json["origin"] == "upload" and sent.json["version"] == V2022
    assert sent.json["folder"] == "minhang-gumeilu/2022"
    bad = api.post(
        "/api/rules/drafts/upload",
        "editor",
        data={"file": (io.BytesIO(b"not a zip"), "x.zip")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "file" in bad.json["error"]["fields"]


def test_ids_beyond_the_database_are_404_not_405(api):
    assert api.get("/api/rules/drafts/99999999999", "auditor").status_code == 404
    assert api.get("/api/rules/drafts/2147483647", "auditor").status_code == 404
    assert api.post("/api/rules/drafts/99999999999/check", "editor").status_code == 404
