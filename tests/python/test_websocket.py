"""Zaqar's persistent transport from Python: the `websockets` client with
JSON text frames and `msgpack` binary frames, as a browser or service would
use it. The server's address comes from ZAQAR_WS_URL (ws://host:port)."""

import asyncio
import json
import os
import uuid

import msgpack
import pytest
import websockets

WS_URL = os.environ.get("ZAQAR_WS_URL")
HTTP_URL = os.environ.get("ZAQAR_URL")

pytestmark = pytest.mark.skipif(not WS_URL, reason="ZAQAR_WS_URL is not set")

HEADERS = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": "python-ws"}


def frame(action, **body):
    return {"action": action, "headers": HEADERS, "body": body}


async def reply(ws):
    """The next reply envelope, skipping pushed notifications."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout=10)
        data = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
        if "request" in data:
            return data


def test_json_and_msgpack_frames_round_trip():
    async def scenario():
        async with websockets.connect(WS_URL) as ws:
            await ws.send(json.dumps(frame("queue_create", queue_name="py-ws")))
            created = await reply(ws)
            assert created["headers"]["status"] in (201, 204)

            await ws.send(msgpack.packb(frame(
                "message_post", queue_name="py-ws",
                messages=[{"body": {"from": "python"}, "ttl": 120}])))
            raw = await asyncio.wait_for(ws.recv(), timeout=10)
            assert isinstance(raw, bytes), "a binary request gets a binary reply"
            posted = msgpack.unpackb(raw)
            assert posted["headers"]["status"] == 201
            assert len(posted["body"]["message_ids"]) == 1

            await ws.send(json.dumps(frame("message_list", queue_name="py-ws", echo=True)))
            listed = await reply(ws)
            assert listed["headers"]["status"] == 200
            assert listed["body"]["messages"][0]["body"] == {"from": "python"}

    asyncio.run(scenario())


def test_subscribed_socket_receives_msgpack_pushes():
    async def scenario():
        async with websockets.connect(WS_URL) as subscriber, websockets.connect(WS_URL) as publisher:
            await subscriber.send(msgpack.packb(frame("subscription_create", queue_name="py-push", ttl=600)))
            subscribed = msgpack.unpackb(await asyncio.wait_for(subscriber.recv(), timeout=10))
            assert subscribed["headers"]["status"] == 201

            await publisher.send(json.dumps(frame(
                "message_post", queue_name="py-push", messages=[{"body": "ping", "ttl": 300}])))
            assert (await reply(publisher))["headers"]["status"] == 201

            pushed = msgpack.unpackb(await asyncio.wait_for(subscriber.recv(), timeout=10))
            assert pushed["body"] == "ping"
            assert pushed["queue_name"] == "py-push"
            assert pushed["Message_Type"] == "Notification"
            assert isinstance(pushed["sequence"], int)

    asyncio.run(scenario())
