"""Concurrent read-modify-write through the API never loses an update: each writer sends the
version it read, a stale write gets 409, the writer re-reads and retries."""
from __future__ import annotations

import threading

THREADS = 4
INCREMENTS = 8


def test_concurrent_increments_lose_nothing(loom, bundle_copy, token_for):
    from engine.runtime.app import create_app
    bundle = bundle_copy("mini")
    with open(bundle / "entities" / "customer.yaml", "a", encoding="utf-8") as f:
        f.write("  - {key: visits, type: integer, label: {zh-CN: 来访次数, en: Visits}, default: 0}\n")
    loom.install(bundle)
    app = create_app(loom, {"TESTING": True})
    h = {"Authorization": f"Bearer {token_for(loom)}"}
    rid = app.test_client().post("/api/v1/mini/customer", json={"name": "并发", "risk_level": "C1"},
                                 headers=h).get_json()["id"]
    url = f"/api/v1/mini/customer/{rid}"
    conflicts, errors = [], []

    def worker():
        client = app.test_client()
        for _ in range(INCREMENTS):
            for _attempt in range(200):
                cur = client.get(url, headers=h)
                body = cur.get_json()
                r = client.patch(url, json={"visits": body["visits"] + 1},
                                 headers={**h, "If-Match": cur.headers["ETag"]})
                if r.status_code == 200:
                    break
                if r.status_code == 409:
                    conflicts.append(1)
                    continue
                errors.append((r.status_code, r.get_json()))
                return
            else:
                errors.append("gave up")

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = app.test_client().get(url, headers=h).get_json()
    assert final["visits"] == THREADS * INCREMENTS
    assert final["version"] == THREADS * INCREMENTS + 1
