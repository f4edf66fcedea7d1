"""Schemathesis hooks for docs/openapi.yaml: queue PATCH bodies use Zaqar's
JSON-patch media type, which is JSON under another name."""
import json

import schemathesis


@schemathesis.serializer("application/openstack-messaging-v2.0-json-patch")
def json_patch(ctx, value):
    return json.dumps(value).encode("utf-8")
