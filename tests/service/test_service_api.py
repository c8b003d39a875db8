"""The API's contract without waiting for a run: recipe versions and validation, the token, path escapes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from servicekit import AUTH, TOKEN, FinishedRun, ServiceHandle, finished

pytestmark = pytest.mark.ray

MUTATING = [
    ("POST", "/api/recipes"),
    ("DELETE", "/api/recipes/demo"),
    ("POST", "/api/recipes/demo/runs"),
    ("POST", "/api/runs/1/cancel"),
    ("POST", "/api/schedules"),
    ("PATCH", "/api/schedules/1"),
    ("DELETE", "/api/schedules/1"),
]


def _recipe(name: str, **changes: object) -> dict:
    recipe = {
        "name": name,
        "input": {"paths": ["/data/never-read/*.jsonl"], "format": "jsonl"},
        "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}],
    }
    recipe.update(changes)
    return recipe


def test_a_changed_recipe_is_a_new_version_and_an_unchanged_one_is_not(service: ServiceHandle) -> None:
    body = yaml.safe_dump(_recipe("versions"))
    first = service.post("/api/recipes", json={"yaml": body})
    assert first.status_code == 201 and first.json()["version"] == 1 and first.json()["created"] is True
    # Comments and layout are not a change; the same recipe again is the same version.
    same = service.post("/api/recipes", json={"yaml": "# nightly\n" + body.replace(": ", ":   ")})
    assert same.status_code == 200 and same.json()["version"] == 1 and same.json()["created"] is False
    changed = service.post("/api/recipes", json={"yaml": yaml.safe_dump(_recipe("versions", seed=7))})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    assert changed.json()["fingerprint"] != first.json()["fingerprint"]
    described = service.post(
        "/api/recipes", json={"yaml": yaml.safe_dump(_recipe("versions", description="x"))}
    )
    # The description is part of the version, though not of the output's fingerprint.
    assert described.json()["version"] == 3 and described.json()["fingerprint"] == first.json()["fingerprint"]
    versions = service.get("/api/recipes/versions/versions").json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    one = service.get("/api/recipes/versions/versions/2").json()
    assert yaml.safe_load(one["yaml"])["seed"] == 7
    assert yaml.safe_load(one["normalized"])["stages"][0]["stage"] == "dedup_exact_v1"  # resolved versions
    names = {r["name"]: r["latest_version"] for r in service.get("/api/recipes").json()}
    assert names["versions"] == 3
    assert service.get("/api/recipes/versions/versions/9").status_code == 404
    assert service.get("/api/recipes/nothing/versions").status_code == 404


def test_invalid_recipes_are_422_with_the_clis_problems(service: ServiceHandle) -> None:
    bad = _recipe("bad", stages=[{"stage": "tokenize", "max_tokens": 5}], outputs={})
    response = service.post("/api/recipes", json={"yaml": yaml.safe_dump(bad)})
    assert response.status_code == 422
    problems = response.json()["error"]["detail"]["problems"]
    assert any(p.startswith("outputs: unknown field") for p in problems), problems
    assert any("stages[0]" in p and "max_tokens" in p for p in problems), problems
    relative = service.post(
        "/api/recipes", json={"yaml": yaml.safe_dump(_recipe("rel", input={"paths": ["x.jsonl"]}))}
    )
    assert relative.status_code == 422
    assert "input.paths[0]: 'x.jsonl' is a relative path" in relative.json()["error"]["detail"]["problems"][0]
    not_yaml = service.post(
        "/api/recipes", content="name: [", headers={**AUTH, "content-type": "application/yaml"}
    )
    assert not_yaml.status_code == 422
    assert "not valid YAML" in not_yaml.json()["error"]["detail"]["problems"][0]
    assert service.post("/api/recipes", json={"yml": "x"}).status_code == 422
    assert service.post("/api/recipes/unknown/runs").status_code == 404


@pytest.mark.parametrize(("method", "path"), MUTATING)
def test_mutating_calls_need_the_token(
    service: ServiceHandle, method: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with service.client() as client:
        missing = client.request(method, path, json={})
        basic = client.request(method, path, json={}, headers={"Authorization": "Basic dXNlcjpwdw=="})
        wrong = client.request(method, path, json={}, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert basic.status_code == 401
    assert wrong.status_code == 403
    assert TOKEN not in wrong.text and TOKEN not in caplog.text


def test_reads_are_open_and_the_token_is_never_logged(
    service: ServiceHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in (
        "/api/runs",
        "/api/recipes",
        "/api/schedules",
        "/runs",
        "/schedules",
        "/recipes",
        "/openapi.json",
    ):
        assert service.get(path).status_code == 200, path
    accepted = service.post("/api/recipes", json={"yaml": yaml.safe_dump(_recipe("logged"))})
    assert accepted.status_code == 201
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(service.settings) and TOKEN not in str(service.settings.model_dump())


def test_the_openapi_schema_documents_the_api(service: ServiceHandle) -> None:
    schema = service.get("/openapi.json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/recipes", "post"),
        ("/api/recipes/{name}/versions", "get"),
        ("/api/recipes/{name}/runs", "post"),
        ("/api/runs", "get"),
        ("/api/runs/{run_id}/cancel", "post"),
        ("/api/runs/{run_id}/logs", "get"),
        ("/api/runs/{run_id}/artifacts", "get"),
        ("/api/runs/{run_id}/artifacts/{path}", "get"),
        ("/api/runs/{run_id}/report", "get"),
        ("/api/mixture-diff", "get"),
        ("/api/schedules", "post"),
        ("/api/schedules/{schedule_id}", "patch"),
    ]:
        assert method in paths[path], (path, method)
    assert set(paths["/api/recipes"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "application/yaml",
    }


def test_only_files_inside_the_run_directory_are_served(
    service: ServiceHandle, finished_run: FinishedRun, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the run directory")
    run_dir, run_id = finished_run.run_dir, finished_run.id
    links = [run_dir / "link-out", run_dir / "report" / "link-out", run_dir / "link-in"]
    links[0].symlink_to(secret)
    links[1].symlink_to(secret)
    links[2].symlink_to(run_dir / "stats.json")
    try:
        escapes = [
            f"/api/runs/{run_id}/artifacts/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            f"/api/runs/{run_id}/artifacts/%2Fetc%2Fpasswd",
            f"/api/runs/{run_id}/artifacts/{secret}",
            f"/api/runs/{run_id}/artifacts/documents%2F..%2F..%2F..%2F{run_dir.parent.name}",
            f"/api/runs/{run_id}/artifacts/link-out",
            f"/api/runs/{run_id}/artifacts/stages",  # a directory, not a file
            f"/runs/{run_id}/report/link-out",
            f"/runs/{run_id}/report/..%2Fmanifest.json",  # inside the run, but outside its report folder
            f"/runs/{run_id}/report/%2Fetc%2Fpasswd",
        ]
        for path in escapes:
            response = service.get(path)
            assert response.status_code == 404, path
            assert "outside the run directory" not in response.text and "root:" not in response.text
        # A link that stays inside the run directory is an ordinary file of the run.
        inside = service.get(f"/api/runs/{run_id}/artifacts/link-in")
        assert inside.status_code == 200 and inside.content == (run_dir / "stats.json").read_bytes()
    finally:
        for link in links:
            link.unlink()


def test_a_schedule_is_incremental_only_when_asked(service: ServiceHandle) -> None:
    service.post("/api/recipes", json={"yaml": yaml.safe_dump(_recipe("nightly-inc"))})
    plain = service.post(
        "/api/schedules", json={"recipe": "nightly-inc", "cron": "0 3 * * *", "paused": True}
    )
    assert plain.status_code == 201 and plain.json()["incremental"] is False
    created = service.post(
        "/api/schedules",
        json={"recipe": "nightly-inc", "cron": "0 3 * * *", "paused": True, "incremental": True},
    )
    assert created.status_code == 201 and created.json()["incremental"] is True
    schedule_id = created.json()["id"]
    assert service.get(f"/api/schedules/{schedule_id}").json()["incremental"] is True
    page = service.get("/schedules").text
    assert f'<tr data-schedule-id="{schedule_id}">' in page and 'data-incremental="true"' in page
    # Patching one field leaves the others; the switch goes off and on again.
    renamed = service.request("PATCH", f"/api/schedules/{schedule_id}", json={"cron": "0 4 * * *"}).json()
    assert renamed["incremental"] is True and renamed["cron"] == "0 4 * * *"
    off = service.request("PATCH", f"/api/schedules/{schedule_id}", json={"incremental": False}).json()
    assert off["incremental"] is False and off["paused"] is True
    bad = service.request("PATCH", f"/api/schedules/{schedule_id}", json={"incremental": "sometimes"})
    assert bad.status_code == 422
    for schedule in (plain.json()["id"], schedule_id):
        assert service.request("DELETE", f"/api/schedules/{schedule}").status_code == 204
    # Runs say what they were built on (nothing, for a manual run) in the API and its schema.
    schema = service.get("/openapi.json").json()["components"]["schemas"]
    assert {"base_run_id", "base_note", "incremental"} <= set(schema["RunOut"]["properties"])
    assert "incremental" in schema["ScheduleIn"]["properties"]
    assert {"added_count", "added_files", "reused_parts", "parts"} <= set(
        schema["IncrementalOut"]["properties"]
    )
    triggered = service.post("/api/recipes/nightly-inc/runs").json()
    assert (triggered["base_run_id"], triggered["base_note"], triggered["incremental"]) == (None, None, None)
    service.wait_for_run(triggered["id"], finished)
