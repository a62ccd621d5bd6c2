"""The first walk through the API: submit, score, rank, replay."""


def test_submit_score_and_read_back(api):
    facts = {"review_points": 2}  # not a fact of this scheme
    bad = api.post(
        "/api/units/gucun/schemes/gumeilu-2022/submissions",
        "submitter",
        json={"role": "self", "facts": facts},
    )
    assert bad.status_code == 422
    assert bad.json["error"]["fields"] == {"facts.review_points": ["不是本细则声明的事实"]}

    first = api.post(
        "/api/units/gucun/schemes/gumeilu-2022/submissions",
        "submitter",
        json={
            "role": "self",
            "facts": {"leader_evaluation_score": 4.5, "leader_evaluation_reason": "工作扎实"},
        },
    )
    assert first.status_code == 201, first.json
    assert first.headers["ETag"] == '"1"' and first.json["version"] == 1
    score = api.post("/api/units/gucun/schemes/gumeilu-2022/scores", "submitter", json={})
    assert score.status_code == 201, score.json
    assert score.json["submission_version"] == 1 and len(score.json["rules_version"]) == 64
    assert score.json["complete"] is False  # most facts are missing, and missing is not zero
    again = api.get(f"/api/scores/{score.json['id']}", "auditor")
    assert again.json["trace"] == score.json["trace"]
    assert (
        "总分"
        in api.get(
            f"/api/scores/{score.json['id']}", "auditor", headers={"Accept": "text/plain"}
        ).text
    )
    replay = api.post(f"/api/scores/{score.json['id']}/replay", "auditor")
    assert replay.json["reproduced"] is True, replay.json
