"""Helpers the web tests share: the test password, CSRF scraping, signing in, a small patent CSV."""
from __future__ import annotations

import csv
import re

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
ENTERPRISE = "星火电池有限公司"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)


def login(app, username: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client

def write_csv(path, org: str):
    rows = [
        {"公开(公告)号": "CN990000001A", "名称": "一种锂电池防爆阀", "摘要": "一种用于锂电池包的防爆阀，包括阀体、泄压膜和防水透气膜。", "申请人": org},
        {"公开(公告)号": "CN990000002A", "名称": "一种茶叶烘干机", "摘要": "一种茶叶烘干机，包括热风炉和多层烘盘。", "申请人": org},
        {"公开(公告)号": "CN990000003A", "名称": "一种外校专利", "摘要": "一种用于钢材表面处理的耐磨涂层。", "申请人": "别的大学"},
        {"公开(公告)号": "CN990000004A", "名称": "无摘要", "摘要": "", "申请人": org},
    ]
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path
