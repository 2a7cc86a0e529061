"""Background jobs through the pages: a university's CSV import (report first, then a job with progress), staff
re-matching, and job visibility."""
from __future__ import annotations

import time

from tests.web.helpers import csrf_of, write_csv


def wait_for(client, job_url: str, timeout: float = 60) -> dict:
    status_url = job_url + "/status"
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(status_url).json()
        if job["finished"]:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_url} did not finish: {job}")




def test_university_uploads_sees_the_report_then_imports_in_the_background(as_uni, web_app, tmp_path):
    store = web_app.state.engine.store
    org = web_app.state.web.user_by_name("uni1")[0].org
    path = write_csv(tmp_path / "清单.csv", org)
    page = as_uni.get("/import")
    with open(path, "rb") as fh:
        r = as_uni.post("/import", data={"csrf": csrf_of(page.text), "kind": "patents"}, files={"file": ("清单.csv", fh, "text/csv")})
    assert r.status_code == 200, r.text[:300]
    assert "校验报告" in r.text and "别的大学" not in r.text and "CN990000003A" in r.text and "确认导入 2 条" in r.text
    assert store.get("patents", "CN990000001A") is None  # the report wrote nothing
    upload = r.text.split('name="upload" value="')[1].split('"')[0]
    r = as_uni.post("/import/confirm", data={"csrf": csrf_of(r.text), "kind": "patents", "upload": upload}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    job = wait_for(as_uni, r.headers["location"])
    assert job["status"] == "done", job
    assert store.get("patents", "CN990000001A") and store.get("patents", "CN990000003A") is None
    assert "CN990000001A" in [m.id for m in web_app.state.engine.match_text("锂电池包防爆阀泄压膜", 5)]
    assert "进度" in as_uni.get(r.headers["location"]).text  # the page a reload shows
    # The upload is consumed: confirming again is refused.
    r2 = as_uni.post("/import/confirm", data={"csrf": csrf_of(page.text), "kind": "patents", "upload": upload})
    assert r2.status_code == 422 and "已失效" in r2.text


def test_universities_cannot_import_demands_or_confirm_anothers_upload(as_uni, as_staff, web_app, tmp_path):
    page = as_uni.get("/import")
    assert "企业需求" not in page.text
    path = write_csv(tmp_path / "x.csv", "某大学")
    with open(path, "rb") as fh:
        r = as_uni.post("/import", data={"csrf": csrf_of(page.text), "kind": "demands"}, files={"file": ("x.csv", fh, "text/csv")})
    assert r.status_code == 422
    with open(path, "rb") as fh:
        r = as_staff.post("/import", data={"csrf": csrf_of(as_staff.get("/import").text), "kind": "patents"},
                          files={"file": ("x.csv", fh, "text/csv")})
    upload = r.text.split('name="upload" value="')[1].split('"')[0]
    r = as_uni.post("/import/confirm", data={"csrf": csrf_of(page.text), "kind": "patents", "upload": upload})
    assert r.status_code == 422 and "已失效" in r.text


def test_a_bad_file_is_refused_with_a_message(as_uni):
    page = as_uni.get("/import")
    r = as_uni.post("/import", data={"csrf": csrf_of(page.text), "kind": "patents"},
                    files={"file": ("a.png", b"\x89PNG\r\n\x1a\n....", "image/png")})
    assert r.status_code == 422 and "CSV、XLSX" in r.text
    r = as_uni.post("/import", data={"csrf": csrf_of(page.text), "kind": "patents"}, files={"file": ("a.csv", b"", "text/csv")})
    assert r.status_code == 422 and "文件无法导入" in r.text


def test_staff_reruns_matching_and_jobs_are_private(as_staff, as_ent, web_app):
    r = as_staff.post("/staff/reindex", data={"csrf": csrf_of(as_staff.get("/staff").text)}, follow_redirects=False)
    assert r.status_code == 303
    job = wait_for(as_staff, r.headers["location"])
    assert job["status"] == "done" and "索引已同步" in job["message"]
    assert as_ent.get(r.headers["location"] + "/status").status_code == 404
    assert f'href="{r.headers["location"]}"' in as_staff.get("/staff").text


def test_jobs_left_running_by_a_dead_server_are_marked_failed(tmp_path):
    from api.webstore import WebStore

    web = WebStore(tmp_path / "db.sqlite")
    job_id = web.add_job("import", None)
    web.update_job(job_id, status="running", done=10, total=100)
    WebStore(tmp_path / "db.sqlite").fail_interrupted_jobs()  # what create_app does at start
    job = web.job(job_id).to_dict()
    assert job["status"] == "failed" and job["finished"] and "重新提交" in job["message"] and job["percent"] == 10


def test_stale_uploads_are_pruned_at_start_up_and_on_each_upload(tmp_path, writable_indexed_settings):
    """A killed import or an unconfirmed preview leaves a file in <home>/uploads; it goes after UPLOAD_TTL_S."""
    import os

    from api.app import create_app
    from api.routes.common import UPLOAD_TTL_S, prune_uploads

    folder = writable_indexed_settings.home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    old, young, foreign = folder / "u3-0123456789abcdef.csv", folder / "u3-fedcba9876543210.xlsx", folder / "u3-notes.csv"
    for path in (old, young, foreign):
        path.write_text("x")
    stale = time.time() - UPLOAD_TTL_S - 60
    for path in (old, foreign):
        os.utime(path, (stale, stale))
    create_app(writable_indexed_settings)
    assert not old.exists() and young.exists() and foreign.exists()  # only names save_upload makes are touched
    os.utime(young, (stale, stale))
    assert prune_uploads(folder) == 1 and not young.exists()
    assert prune_uploads(tmp_path / "no-such-folder") == 0
