"""python-zaqarclient 4.7.0, unchanged, against zaqar-server.

The server's URL comes from the environment variable ZAQAR_URL
(for example http://127.0.0.1:8888). Each test works in its own project so
tests never see each other's queues.
"""

import os
import uuid

import pytest
from zaqarclient.queues import client as zaqar_client
from zaqarclient.queues.v2 import core
from zaqarclient.transport import errors

URL = os.environ.get("ZAQAR_URL", "http://127.0.0.1:8888")


def make_client(project):
    conf = {
        "auth_opts": {"backend": "noauth", "options": {"os_project_id": project}},
    }
    return zaqar_client.Client(URL, version=2, conf=conf)


@pytest.fixture
def project():
    return "py-" + uuid.uuid4().hex[:12]


@pytest.fixture
def client(project):
    return make_client(project)


def test_ping_and_home_document(client):
    assert client.ping() is True
    home = client.homedoc()
    assert "rel/queues" in home["resources"]


def test_health_is_forbidden_without_the_admin_role(client):
    with pytest.raises(errors.ForbiddenError):
        client.health()


def test_health_reports_every_operation_for_admins(client):
    request, transport = client._request_and_transport()
    request.headers["X-Roles"] = "admin"
    report = core.health(transport, request)
    assert report["storage_reachable"] is True
    assert all(op["succeeded"] for op in report["operation_status"].values())


def test_queue_lifecycle(client):
    queue = client.queue("lifecycle", force_create=True)
    queues, count = client.queues(with_count=True)
    assert [q.name for q in queues] == ["lifecycle"]
    assert count == 1
    queue.delete()
    assert [q.name for q in client.queues()[0]] == []


def test_queue_listing_follows_pages(client):
    for n in range(5):
        client.queue("page-%d" % n, force_create=True)
    queues, _ = client.queues(limit=2)
    names = [q.name for q in queues.stream()]
    assert names == ["page-%d" % n for n in range(5)]


def test_detailed_listing_shows_metadata(client):
    client.queue("detailed", force_create=True).metadata(new_meta={"color": "red"})
    queues = list(client.queues(detailed=True)[0])
    assert queues[0].metadata()["color"] == "red"


def test_metadata_update_replaces_adds_and_removes(client):
    queue = client.queue("meta", force_create=True)
    queue.metadata(new_meta={"a": 1, "b": 2})
    assert queue.metadata(force_reload=True)["a"] == 1
    updated = queue.metadata(new_meta={"a": 10, "c": 3})
    assert updated["a"] == 10
    assert updated["c"] == 3
    assert "b" not in updated
    # reserved keys come back with their defaults
    assert updated["_default_message_ttl"] == 3600


def test_stats(client):
    queue = client.queue("stats", force_create=True)
    assert queue.stats["messages"] == {"claimed": 0, "free": 0, "total": 0}
    queue.post([{"body": 1, "ttl": 300}, {"body": 2, "ttl": 300}])
    stats = queue.stats["messages"]
    assert stats["total"] == 2
    assert stats["free"] == 2
    assert stats["oldest"]["href"].startswith("/v2/queues/stats/messages/")


def test_post_and_list_messages(client):
    queue = client.queue("messages", force_create=True)
    result = queue.post([{"body": {"event": "BackupStarted"}, "ttl": 300}, {"body": "plain"}])
    assert len(result["resources"]) == 2
    messages = list(queue.messages(echo=True))
    assert [m.body for m in messages] == [{"event": "BackupStarted"}, "plain"]
    assert messages[0].ttl == 300
    assert messages[1].ttl == 3600


def test_listing_follows_next_links_across_pages(client):
    queue = client.queue("paged", force_create=True)
    queue.post([{"body": n} for n in range(7)])
    bodies = [m.body for m in queue.messages(echo=True, limit=3).stream()]
    assert bodies == list(range(7))


def test_echo_false_hides_own_messages(client, project):
    queue = client.queue("echo", force_create=True)
    queue.post({"body": "mine"})
    assert list(queue.messages()) == []
    other = make_client(project).queue("echo", auto_create=False)
    assert [m.body for m in other.messages()] == ["mine"]


def test_get_message_by_id_and_many(client):
    queue = client.queue("byid", force_create=True)
    hrefs = queue.post([{"body": "a"}, {"body": "b"}])["resources"]
    ids = [href.rsplit("/", 1)[1] for href in hrefs]
    assert queue.message(ids[0]).body == "a"
    assert sorted(m.body for m in queue.messages(*ids)) == ["a", "b"]
    with pytest.raises(errors.ResourceNotFound):
        queue.message("does-not-exist")


def test_delete_messages(client):
    queue = client.queue("delete", force_create=True)
    hrefs = queue.post([{"body": n} for n in range(3)])["resources"]
    ids = [href.rsplit("/", 1)[1] for href in hrefs]
    queue.message(ids[0]).delete()
    queue.delete_messages(ids[1])
    assert [m.body for m in queue.messages(echo=True)] == [2]


def test_bulk_post(client):
    queue = client.queue("bulk", force_create=True)
    result = queue.post([{"body": {"n": n}, "ttl": 120} for n in range(20)])
    assert len(result["resources"]) == 20
    assert queue.stats["messages"]["total"] == 20


def test_pop(client):
    queue = client.queue("pop", force_create=True)
    queue.post([{"body": n} for n in range(3)])
    popped = list(queue.pop(count=2))
    assert [m.body for m in popped] == [0, 1]
    assert queue.stats["messages"]["total"] == 1


def test_claims(client):
    queue = client.queue("claims", force_create=True)
    queue.post([{"body": n, "ttl": 600} for n in range(3)])
    claim = queue.claim(ttl=60, grace=60, limit=2)
    claimed = list(claim)
    assert [m.body for m in claimed] == [0, 1]
    assert all(m.claim_id == claim.id for m in claimed)
    assert claim.ttl == 60
    assert claim.age == 0
    claim.update(ttl=120)
    assert queue.claim(id=claim.id).ttl == 120
    for message in claimed:
        message.delete()
    claim.delete()
    stats = queue.stats["messages"]
    assert stats["total"] == 1
    assert stats["claimed"] == 0


def test_claim_on_an_empty_queue_holds_nothing(client):
    queue = client.queue("empty-claim", force_create=True)
    claim = queue.claim(ttl=60, grace=60)
    assert claim.id is None
    assert list(claim) == []


def test_claimed_message_is_deleted_with_the_claim_its_href_names(client):
    queue = client.queue("claimed", force_create=True)
    hrefs = queue.post({"body": "held"})["resources"]
    claim = queue.claim(ttl=60, grace=60)
    message_id = hrefs[0].rsplit("/", 1)[1]
    request, transport = client._request_and_transport()
    with pytest.raises(errors.ForbiddenError):
        core.message_delete(transport, request, "claimed", message_id)
    message = queue.message(message_id)
    assert message.claim_id == claim.id
    message.delete()
    with pytest.raises(errors.ResourceNotFound):
        queue.message(message_id)


def test_subscriptions(client):
    queue = client.queue("subs", force_create=True)
    subscription = client.subscription("subs", subscriber="http://127.0.0.1:9/hook", ttl=3600, options={"a": 1})
    assert subscription.id
    listed = list(queue.subscriptions())
    assert [s.subscriber for s in listed] == ["http://127.0.0.1:9/hook"]
    subscription.update({"ttl": 7200})
    subscription.delete()
    assert list(queue.subscriptions()) == []


def test_purge(client):
    queue = client.queue("purge", force_create=True)
    queue.post([{"body": 1}, {"body": 2}])
    queue.purge(resource_types=["messages"])
    assert queue.stats["messages"]["total"] == 0


def test_errors_are_raised_as_client_exceptions(client):
    queue = client.queue("bad", force_create=True)
    with pytest.raises(errors.MalformedRequest):
        queue.post({"body": 1, "ttl": 5})
