"""Security fixtures: an app over a private indexed workspace, one account and one API token per role, a seeded
enterprise demand carrying a recognisable contact, and callers that hold a role's session cookie and token."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from api.auth import ROLE_SCOPES, create_token, create_user, hash_secret, start_session
from indexer.records import Demand, Patent
from tests.web.helpers import ENTERPRISE, PASSWORD

#: Appears only in the seeded demand's contact field: any response containing it shows that contact.
CONTACT = "联系人陈秘书 13911112222 secret-contact@example.com"
#: The walk's callers: the four roles, plus a second enterprise that owns nothing the requests name.
CALLERS = ("anonymous", "enterprise", "other_enterprise", "university", "staff")
USERNAMES = {"enterprise": "ent1", "other_enterprise": "ent2", "university": "uni1", "staff": "staff1"}


@dataclass
class World:
    """The app plus the records the requests name: each owned by the 'enterprise' or 'university' caller."""

    app: object
    demand_id: str
    patent_id: str
    job_id: int
    university_org: str
    tokens: dict[str, str] = field(default_factory=dict)
    _serial: int = 0

    @property
    def store(self):
        return self.app.state.engine.store

    def caller(self, who: str) -> tuple[TestClient, str]:
        """A client signed in as `who` (session cookie and Bearer token; none for anonymous) and its CSRF token."""
        if who == "anonymous":
            return TestClient(self.app, follow_redirects=False), ""
        web = self.app.state.web
        user = web.user_by_name(USERNAMES[who])[0]
        cookie = start_session(web, user)  # skips argon2: the walk makes hundreds of requests
        client = TestClient(self.app, follow_redirects=False, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        client.cookies.set("ptm_session", cookie)
        return client, web.session(hash_secret(cookie))[1]

    def fresh_demand(self) -> str:
        """A new demand of the 'enterprise' caller (stored, not indexed), for requests that change or delete one."""
        self._serial += 1
        demand = Demand(id=f"D-walk-{self._serial}", title="走查需求", enterprise=ENTERPRISE, contact=CONTACT,
                        text=f"我们需要一种锂电池防爆技术，用于储能电站的电池包安全防护，编号{self._serial}。")
        self.store.upsert("demands", [demand])
        return demand.id

    def fresh_patent(self) -> str:
        """A new patent of the 'university' caller (stored, not indexed)."""
        self._serial += 1
        patent = Patent(id=f"CN9{self._serial:08d}A", title="一种走查用电池防爆阀", applicants=[self.university_org],
                        abstract=f"一种用于锂电池包的防爆阀，包括阀体和泄压膜，编号{self._serial}。")
        self.store.upsert("patents", [patent])
        return patent.id


def make_world(settings) -> World:
    """Accounts of each role, their tokens, and the seeded records (indexed, so match lists answer)."""
    from api.app import create_app
    from indexer.pipeline import sync_index

    app = create_app(settings)
    web, store = app.state.web, app.state.engine.store
    first = next(p for p in store.list("patents", limit=100) if p.applicants)
    orgs = {"staff": "", "enterprise": ENTERPRISE, "other_enterprise": "另一家企业", "university": first.applicants[0]}
    world = World(app, demand_id="D-seeded-contact", patent_id=first.id, job_id=0, university_org=first.applicants[0])
    for who, org in orgs.items():
        role = "enterprise" if who == "other_enterprise" else who
        create_user(web, USERNAMES[who], role, org, PASSWORD)
        world.tokens[who] = create_token(web, USERNAMES[who], sorted(ROLE_SCOPES[role]), label="walk")
    store.upsert("demands", [Demand(id=world.demand_id, title="储能电池热失控防护", enterprise=ENTERPRISE, contact=CONTACT,
                                    text="我们生产储能电池，想找防止电池热失控和起火爆炸的安全技术，要求针刺不起火。")])
    sync_index(settings, kinds=("demands",))
    web.add_interest(world.demand_id, world.patent_id, ENTERPRISE)
    world.job_id = web.add_job("import", web.user_by_name(USERNAMES["university"])[0].id)
    web.update_job(world.job_id, status="done", message="完成")
    return world


@pytest.fixture(scope="module")
def world(writable_indexed_settings) -> World:
    return make_world(writable_indexed_settings)
