"""Response headers of the API as served (`anpr-stream api`): no-store and the browser hardening headers on every
answer, errors and the live stream included; the console keeps its Content-Security-Policy; the interactive docs
(which load a CDN) only with ANPR_API_DOCS=1, /openapi.json always."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

HARDENING = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
JUSTIFICATION = {"X-Purpose": "dispatch", "X-Case-Reference": "SHIFT 9"}


def assert_hardened(response: httpx.Response, cache: str = "no-store") -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    for name, value in HARDENING.items():
        assert response.headers.get(name) == value, (where, name, response.headers.get(name))
    assert response.headers.get("cache-control") == cache, (where, response.headers.get("cache-control"))


async def test_every_response_is_hardened_and_docs_are_off(namespace: Namespace) -> None:
    token = namespace.add_user("disp", "dispatcher")
    base = namespace.start_api()
    auth = {"Authorization": f"Bearer {token}", **JUSTIFICATION}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        answers = [
            await client.get("/v1/me", headers=auth),
            await client.get("/v1/hits", headers=auth),
            await client.get("/v1/hits", headers={"Authorization": "Bearer anpr_unknown"}),  # 401
            await client.get("/v1/hits", headers={**auth, "X-Purpose": ""}),  # 403
            await client.get("/v1/hits", headers=auth, params={"limit": "0"}),  # 422
            await client.get("/v1/hits/00000000-0000-0000-0000-000000000000", headers=auth),  # 404
            await client.get("/v1/live/map.svg", headers=auth),  # the route says no-cache: an API answer is no-store
            await client.get("/openapi.json"),
            await client.get("/no/such/path"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 401, 403, 422, 404, 200, 200, 404]
        for answer in answers:
            assert_hardened(answer)
        async with client.stream("GET", "/v1/live/hits", headers=auth) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            assert_hardened(stream)
        for path in ("/console", "/workspace", "/console/static/workspace.js", "/console/static/dpo.js"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert_hardened(page, cache="no-cache")  # a static page, no data: its own caching is kept
            assert page.headers["content-security-policy"].startswith("default-src 'self'"), path
        assert (await client.get("/console/static/..%2Fstatic%2Fworkspace.html")).status_code == 404
        for docs in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(docs)).status_code == 404, docs
        assert "paths" in answers[7].json()


async def test_interactive_docs_with_the_development_setting(namespace: Namespace) -> None:
    base = namespace.start_api(extra_env={"ANPR_API_DOCS": "1"})
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for docs in ("/docs", "/redoc"):
            page = await client.get(docs)
            assert page.status_code == 200 and "openapi.json" in page.text, docs
            assert_hardened(page)
