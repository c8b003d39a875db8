"""The API's contract, on a real app over HTTP without Ray: one error shape, documented responses, the body
size limit, cursor paging, reading and deleting recipes, paths checked as the cluster resolves them, run
errors shown as their cause, and Swagger UI served from the installed package."""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient
from servicekit import AUTH, REPO, TOKEN, FakeClock, ServiceHandle

from corpusmill.core.recipe import RecipeError
from corpusmill.core.stage import path_params, resolve_stage
from corpusmill.service.app import create_app
from corpusmill.service.db import make_engine
from corpusmill.service.jobs import JobState
from corpusmill.service.paging import encode_cursor
from corpusmill.service.recipes import validate_recipe
from corpusmill.service.run_errors import error_cause, strip_ansi, traceback_text
from corpusmill.service.runs import failure_summary
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import FAILED, Store

LIMIT = 64 * 1024  # the body limit of the service under test: small, so tests send little
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
NOW = dt.datetime(2031, 5, 4, 10, 0, tzinfo=dt.UTC)


def _settings(data_dir: Path) -> ServiceSettings:
    return ServiceSettings(
        data_dir=data_dir,
        api_token=TOKEN,
        ray_address="http://127.0.0.1:9",  # never reached: these tests start no job
        max_request_bytes=LIMIT,
        poll_interval_s=0.5,
        schedule_interval_s=0.2,
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHandle]:
    handle = ServiceHandle(_settings(tmp_path_factory.mktemp("contract")), FakeClock()).start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def store(api: ServiceHandle) -> Store:
    """The service's database, opened beside it (as a second service process would)."""
    return Store(make_engine(api.settings.database_url()))


def _recipe(name: str, **changes: object) -> str:
    recipe = {
        "name": name,
        "input": {"paths": ["/data/never-read/*.jsonl"], "format": "jsonl"},
        "stages": [{"stage": "tokenize"}],
    }
    recipe.update(changes)
    return yaml.safe_dump(recipe)


def _add_runs(store: Store, recipe: str, count: int) -> list[int]:
    """Ended runs of a registered recipe, written straight into the database (no Ray needed)."""
    version = store.recipe(recipe)
    assert version is not None
    ids = []
    for _ in range(count):
        run = store.add_run(version, NOW, lambda i: (f"/nonexistent/{recipe}/run-{i}", f"job-{recipe}-{i}"))
        store.update_run(run.id, status=FAILED, finished_at=NOW, error="made up")
        ids.append(run.id)
    return ids


def _error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """The error of a response, checked for the one shape every API error has."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"status", "code", "message", "detail"}, error
    assert error["status"] == status and CODE.match(error["code"]) and error["message"].strip(), error
    return error


def test_every_api_error_has_one_shape(api: ServiceHandle) -> None:
    assert _error(api.get("/api/runs/999999"), 404)["code"] == "not_found"
    with api.client() as client:
        missing = _error(client.post("/api/recipes", json={}), 401)
        wrong = _error(
            client.post("/api/recipes", json={}, headers={"Authorization": f"Bearer {TOKEN}x"}), 403
        )
        assert client.post("/api/recipes", json={}).headers["www-authenticate"] == "Bearer"
        assert _error(client.delete("/api/runs"), 405)["code"] == "method_not_allowed"
    assert (missing["code"], wrong["code"]) == ("unauthorized", "forbidden") and TOKEN not in wrong["message"]
    invalid = _error(api.get("/api/runs?limit=0"), 422)
    assert invalid["code"] == "invalid_request" and invalid["detail"]["problems"][0]["loc"] == [
        "query",
        "limit",
    ]
    assert "limit" in invalid["message"]
    bad_recipe = _error(api.post("/api/recipes", json={"yaml": _recipe("bad", outputs={})}), 422)
    assert bad_recipe["code"] == "invalid_recipe" and "outputs: unknown field" in bad_recipe["message"]
    assert any(p.startswith("outputs: unknown field") for p in bad_recipe["detail"]["problems"])
    assert _error(api.post("/api/recipes", json={"yml": "x"}), 422)["detail"]["problems"]
    # Pages keep FastAPI's own errors.
    page = api.get("/runs/999999")
    assert page.status_code == 404 and "error" not in page.json()


def test_an_unexpected_error_is_a_500_in_the_same_shape(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    client = TestClient(app, raise_server_exceptions=False)
    error = _error(client.get("/api/boom"), 500)
    assert error["code"] == "internal_error" and "internal detail" not in error["message"]


def test_an_unknown_recipe_is_404_everywhere(api: ServiceHandle) -> None:
    for method, path, body in [
        ("GET", "/api/recipes/unknown", None),
        ("GET", "/api/recipes/unknown/versions", None),
        ("GET", "/api/recipes/unknown/versions/1", None),
        ("POST", "/api/recipes/unknown/runs", {}),
        ("DELETE", "/api/recipes/unknown", None),
        ("POST", "/api/schedules", {"recipe": "unknown", "cron": "0 3 * * *"}),
    ]:
        error = _error(api.request(method, path, json=body), 404)
        assert "unknown" in error["message"], (method, path)


def test_a_status_filter_names_the_allowed_statuses(api: ServiceHandle) -> None:
    error = _error(api.get("/api/runs?status=BOGUS"), 422)
    assert "BOGUS" in error["message"] and "SUCCEEDED" in error["message"]
    assert set(error["detail"]["allowed"]) == {
        "QUEUED",
        "PENDING",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    }
    assert api.get("/api/runs?status=failed").status_code == 200


def test_the_openapi_document_lists_every_error_with_its_model(api: ServiceHandle) -> None:
    schema = api.get("/openapi.json").json()
    assert {"status", "code", "message", "detail"} <= set(
        schema["components"]["schemas"]["ErrorInfo"]["properties"]
    )
    operations = [
        (path, method, op)
        for path, ops in schema["paths"].items()
        if path.startswith("/api/")
        for method, op in ops.items()
    ]
    assert len(operations) >= 20
    for path, method, op in operations:
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert errors or not (op.get("parameters") or op.get("requestBody")), (path, method)
        for code, response in errors.items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (path, method, code)
        if method != "get":  # every change needs the token
            assert {"401", "403"} <= set(errors), (path, method)
    paths = schema["paths"]
    assert "409" in paths["/api/recipes/{name}"]["delete"]["responses"]
    assert "409" in paths["/api/runs/{run_id}/cancel"]["post"]["responses"]
    assert "413" in paths["/api/recipes"]["post"]["responses"]
    assert "404" in paths["/api/recipes/{name}"]["get"]["responses"]
    assert "404" in paths["/api/schedules"]["post"]["responses"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def _raw_request(url: str, head: bytes, body: bytes = b"", timeout: float = 10) -> tuple[int, bytes, float]:
    """Send bytes over a socket (the body may be cut short on purpose); (status, body, seconds to answer)."""
    parts = urlsplit(url)
    start = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", header).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(header.split()[1]), rest, time.monotonic() - start


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(api: ServiceHandle) -> None:
    token = f"Authorization: Bearer {TOKEN}\r\n".encode()
    # A declared length over the limit: refused at once, though the body never comes.
    head = b"POST /api/recipes HTTP/1.1\r\nHost: x\r\nContent-Type: application/yaml\r\n" + token
    status, body, seconds = _raw_request(api.url, head + b"Content-Length: 50000000\r\n\r\n")
    assert status == 413 and seconds < 5
    assert b'"code":"request_too_large"' in body.replace(b" ", b"")
    # A chunked body is counted as it streams: one byte over the limit is refused without its end.
    chunked = b"POST /api/recipes HTTP/1.1\r\nHost: x\r\nContent-Type: application/yaml\r\n" + token
    chunked += b"Transfer-Encoding: chunked\r\n\r\n"
    payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"#" * (LIMIT // 2), b"#" * (LIMIT // 2 + 1)))
    status, body, seconds = _raw_request(api.url, chunked, payload)  # no terminating 0-chunk
    assert status == 413 and seconds < 5 and b"request_too_large" in body
    # Through an ordinary client, just over and just at the limit.
    over = api.post(
        "/api/recipes", content=b"#" * (LIMIT + 1), headers={**AUTH, "content-type": "application/yaml"}
    )
    error = _error(over, 413)
    assert error["detail"] == {"limit_bytes": LIMIT}
    at = api.post("/api/recipes", content=b"#" * LIMIT, headers={**AUTH, "content-type": "application/yaml"})
    assert at.status_code == 422  # read and parsed: a comment is not a recipe


def test_the_runs_list_pages_with_a_stable_cursor(api: ServiceHandle, store: Store) -> None:
    assert api.post("/api/recipes", json={"yaml": _recipe("paging")}).status_code == 201
    ids = _add_runs(store, "paging", 5)
    first = api.get("/api/runs?recipe=paging&limit=2")
    assert [r["id"] for r in first.json()] == ids[::-1][:2]
    cursor = first.headers["x-next-cursor"]
    assert cursor != str(ids[-2]) and cursor == encode_cursor(ids[-2])  # opaque, not the bare id
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and f"cursor={cursor}" in link and "recipe=paging" in link
    _add_runs(store, "paging", 2)  # new runs do not shift the pages already handed out
    seen = [r["id"] for r in first.json()]
    url = link[1 : link.index(">")]
    while url:
        page = api.get(url[len(api.url) :] if url.startswith(api.url) else url)
        seen += [r["id"] for r in page.json()]
        next_link = page.headers.get("link")
        url = next_link[1 : next_link.index(">")] if next_link else ""
        assert bool(next_link) == ("x-next-cursor" in page.headers)
    assert seen == ids[::-1]
    for bad in ("nope", encode_cursor(1).upper(), "cnVuOi0x"):  # not base64 of ours / "run:-1"
        assert _error(api.get(f"/api/runs?cursor={bad}"), 422)["code"] == "invalid_cursor"
    assert isinstance(api.get("/api/runs").json(), list)


def test_a_recipe_is_read_whole_and_deleted_when_no_schedule_uses_it(
    api: ServiceHandle, store: Store
) -> None:
    api.post("/api/recipes", json={"yaml": _recipe("readable")})
    api.post("/api/recipes", json={"yaml": _recipe("readable", seed=3)})
    recipe = api.get("/api/recipes/readable").json()
    assert recipe["latest"]["version"] == 2 and yaml.safe_load(recipe["latest"]["yaml"])["seed"] == 3
    assert [v["version"] for v in recipe["versions"]] == [1, 2] and all(v["yaml"] for v in recipe["versions"])
    listed = {r["name"]: r for r in api.get("/api/recipes").json()}["readable"]
    assert (
        listed["fingerprint"] == recipe["latest"]["fingerprint"] and listed["url"] == "/api/recipes/readable"
    )
    assert all(v["yaml"] for v in api.get("/api/recipes/readable/versions").json())
    (run_id,) = _add_runs(store, "readable", 1)
    with api.client() as client:
        assert _error(client.delete("/api/recipes/readable"), 401)["code"] == "unauthorized"
    schedule = api.post("/api/schedules", json={"recipe": "readable", "cron": "0 3 * * *", "paused": True})
    assert schedule.status_code == 201, schedule.text
    schedule_id = schedule.json()["id"]
    in_use = _error(api.request("DELETE", "/api/recipes/readable"), 409)
    assert in_use["code"] == "recipe_in_use" and in_use["detail"] == {"schedules": [schedule_id]}
    assert str(schedule_id) in in_use["message"]
    assert api.request("DELETE", f"/api/schedules/{schedule_id}").status_code == 204
    assert api.request("DELETE", "/api/recipes/readable").status_code == 204
    assert _error(api.get("/api/recipes/readable"), 404)
    assert "readable" not in {r["name"] for r in api.get("/api/recipes").json()}
    assert _error(api.post("/api/recipes/readable/runs", json={}), 404)
    # Its runs stay listed, and registering the name again goes on numbering.
    assert [r["id"] for r in api.get("/api/runs?recipe=readable").json()] == [run_id]
    assert api.get(f"/api/runs/{run_id}").json()["version"] == 2
    again = api.post("/api/recipes", json={"yaml": _recipe("readable")}).json()
    assert again["version"] == 3 and again["created"] is True


def test_the_shipped_demo_mix_recipe_is_refused_for_its_relative_model_path(api: ServiceHandle) -> None:
    text = (REPO / "recipes" / "demo-mix.yaml").read_text()
    error = _error(
        api.post("/api/recipes", content=text, headers={**AUTH, "content-type": "application/yaml"}), 422
    )
    assert "stages[0] (quality_v1).model: 'runs/demo/classifiers' is a relative path" in error["message"]
    assert "stages[1] (domain_v1).model" in error["message"] and "object-storage URI" in error["message"]


def test_every_path_a_stage_names_is_checked_as_the_job_resolves_it(tmp_path: Path) -> None:
    assert path_params(resolve_stage("quality").Params) == ["model"]
    assert path_params(resolve_stage("langid").Params) == ["model_path"]
    assert path_params(resolve_stage("tokenize").Params) == []

    def recipe(model: str) -> str:
        return _recipe("paths", stages=[{"stage": "quality", "model": model}, {"stage": "tokenize"}])

    with pytest.raises(
        RecipeError, match=r"stages\[0\] \(langid_v1\)\.model_path: 'lid\.176\.bin' is a relative"
    ):
        validate_recipe(_recipe("paths", stages=[{"stage": "langid", "model_path": "lid.176.bin"}]))
    missing = str(tmp_path / "no-such-models")
    validate_recipe(recipe(missing))  # a cluster may have it
    with pytest.raises(RecipeError, match="does not exist on the service's machine"):
        validate_recipe(recipe(missing), local_disk=True)  # the local head shares this disk: it has not
    validate_recipe(recipe(str(tmp_path)), local_disk=True)
    validate_recipe(recipe("s3://models/classifiers"), local_disk=True)


RAY_FAILURE_LOG = (
    "2031-05-04 10:00:01,123\tINFO job_manager.py:531 -- Runtime env is setting up.\n"
    "Traceback (most recent call last):\n"
    '  File "/opt/corpusmill/src/corpusmill/cli.py", line 241, in run\n'
    "    result = run_recipe(recipe, output, engine=engine)\n"
    '  File "/opt/corpusmill/src/corpusmill/pipelines/runner.py", line 412, in run_step\n'
    "    results = ray.get(refs)\n"
    "ray.exceptions.RayTaskError(FileNotFoundError): \x1b[36mray::_run_part()\x1b[39m (pid=4242, ip=10.0.0.7)\n"
    '  File "/opt/corpusmill/src/corpusmill/classifiers/score_stages.py", line 92, in setup\n'
    "    self._models = DistilledModels.load(self.params.model)\n"
    "FileNotFoundError: [Errno 2] No such file or directory: 'runs/demo/classifiers/card.json'\n"
)
CAUSE = "FileNotFoundError: [Errno 2] No such file or directory: 'runs/demo/classifiers/card.json'"


def test_a_run_error_is_its_cause_in_one_line_with_the_traceback_apart() -> None:
    assert strip_ansi("\x1b[36mray::_run_part()\x1b[39m x\x1b[1;31m!\x1b[0m") == "ray::_run_part() x!"
    assert error_cause(RAY_FAILURE_LOG) == CAUSE
    # The CLI prints a task's error as `error: ray::...`, then the task's traceback, whose last line is why.
    cli = 'error: \x1b[36mray::_run_part()\x1b[39m (pid=1)\n  File "x.py", line 1, in f\n' + CAUSE + "\n"
    assert error_cause(cli) == CAUSE
    assert error_cause("Running\nerror: no input file matches /data/x/*.jsonl\n").startswith(
        "error: no input"
    )
    assert error_cause("all fine\n") is None
    state = JobState(
        "FAILED", "Job entrypoint command failed with exit code 1, last available logs: ...", None, None, 1
    )
    error, detail = failure_summary(state, RAY_FAILURE_LOG)
    assert error.splitlines()[0] == CAUSE and "Ray job FAILED (exit code 1)" in error
    assert "\x1b" not in error and detail is not None and "\x1b" not in detail
    assert detail.startswith("Traceback (most recent call last):") and detail.endswith(CAUSE)
    assert "ray.exceptions.RayTaskError(FileNotFoundError): ray::_run_part() (pid=4242" in detail
    assert traceback_text("a\nb\n", 100, tail_lines=1) == "b" and traceback_text("", 100) is None
    assert len(traceback_text(RAY_FAILURE_LOG, 50) or "") == 50


def test_swagger_ui_is_served_from_the_installed_package(api: ServiceHandle) -> None:
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", page.text)
    urls = [a or b for a, b in urls]
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    for url in urls:
        assert api.get(url).status_code == 200, url
    assert (
        api.get("/docs/assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
    assert api.get("/redoc").status_code == 404
