"""python-zaqarclient 4.7.0's pool and flavor calls, unchanged, against a
zaqar-server with `pooling = true`.

ZAQAR_URL is the server; ZAQAR_POOL_DIR a directory pools may keep their
embedded stores in. Admin calls carry `X-Roles: admin` (the server runs
without an auth strategy, where Zaqar takes roles from that header).
"""

import os
import uuid

import pytest
from zaqarclient.queues import client as zaqar_client
from zaqarclient.queues.v2 import core
from zaqarclient.transport import errors

URL = os.environ.get("ZAQAR_URL", "http://127.0.0.1:8888")
POOL_DIR = os.environ.get("ZAQAR_POOL_DIR", "/tmp")


def make_client(project, admin=False):
    conf = {
        "auth_opts": {"backend": "noauth", "options": {"os_project_id": project}},
    }
    client = zaqar_client.Client(URL, version=2, conf=conf)
    if admin:
        plain = client._request_and_transport

        def as_admin():
            request, transport = plain()
            request.headers["X-Roles"] = "admin"
            return request, transport

        client._request_and_transport = as_admin
    return client


@pytest.fixture
def project():
    return "py-" + uuid.uuid4().hex[:12]


def pool_uri(name):
    return "embedded://" + os.path.join(POOL_DIR, name)


def test_pool_lifecycle(project):
    client = make_client(project, admin=True)
    name = "pool-" + uuid.uuid4().hex[:8]
    pool = client.pool(name, uri=pool_uri(name), weight=10)
    shown = pool.get()
    assert shown["name"] == name
    assert shown["uri"] == pool_uri(name)
    assert shown["weight"] == 10
    assert name in [p.name for p in client.pools()]
    pool.update({"weight": 20})
    assert pool.get()["weight"] == 20
    pool.delete()
    with pytest.raises(errors.ResourceNotFound):
        pool.get()


def test_pool_calls_need_the_admin_role(project):
    with pytest.raises(errors.ForbiddenError):
        list(make_client(project).pools())


def test_unreachable_pool_is_refused(project):
    client = make_client(project, admin=True)
    with pytest.raises(errors.MalformedRequest):
        client.pool("unreachable", uri="redis://127.0.0.1:1", weight=1)
    with pytest.raises(errors.ResourceNotFound):
        client.pool("unreachable", auto_create=False).get()


def test_flavor_places_queues_and_pools_holding_queues_stay(project):
    client = make_client(project, admin=True)
    name = "fpool-" + uuid.uuid4().hex[:8]
    pool = client.pool(name, uri=pool_uri(name), weight=5)
    flavor = client.flavor("gold", pool_list=[name])
    shown = flavor.get()
    assert shown["pool_list"] == [name]
    assert "FIFO" in shown["capabilities"]
    assert [f.name for f in client.flavors()] == ["gold"]

    # The client's queue() creates without metadata: create it with core.
    queue = client.queue("golden", force_create=False)
    request, transport = client._request_and_transport()
    core.queue_create(transport, request, "golden", metadata={"_flavor": "gold"})
    queue.post([{"body": {"n": 1}, "ttl": 300}])
    assert [m.body for m in queue.messages(echo=True)] == [{"n": 1}]
    assert queue.metadata()["_flavor"] == "gold"

    # The only pool of the flavor, holding the queue: it stays.
    with pytest.raises(errors.ForbiddenError):
        pool.delete()
    flavor.update({"pool_list": [name]})
    flavor.delete()
    with pytest.raises(errors.ResourceNotFound):
        flavor.get()
    with pytest.raises(errors.ForbiddenError):
        pool.delete()
    queue.delete()
    pool.delete()
    with pytest.raises(errors.ResourceNotFound):
        pool.get()
