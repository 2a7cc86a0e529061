"""Web fixtures: an app over a private indexed workspace with one account of each role, and a login helper."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_user
from tests.web.helpers import ENTERPRISE, PASSWORD, login


@pytest.fixture(scope="module")
def web_app(writable_indexed_settings):
    app = create_app(writable_indexed_settings)
    web = app.state.web
    create_user(web, "staff1", "staff", "", PASSWORD)
    create_user(web, "ent1", "enterprise", ENTERPRISE, PASSWORD)
    create_user(web, "ent2", "enterprise", "另一家企业", PASSWORD)
    # The university owns the patents whose applicants contain the name of the first stored patent's applicant.
    first = next(p for p in app.state.engine.store.list("patents", limit=100) if p.applicants)
    create_user(web, "uni1", "university", first.applicants[0], PASSWORD)
    create_user(web, "uni2", "university", "不存在的大学", PASSWORD)
    return app




@pytest.fixture(scope="module")
def as_staff(web_app):
    return login(web_app, "staff1")


@pytest.fixture(scope="module")
def as_ent(web_app):
    return login(web_app, "ent1")


@pytest.fixture(scope="module")
def as_ent2(web_app):
    return login(web_app, "ent2")


@pytest.fixture(scope="module")
def as_uni(web_app):
    return login(web_app, "uni1")


@pytest.fixture(scope="module")
def anon(web_app):
    return TestClient(web_app)
