"""A kromad client in Python's standard library only: one JSON-RPC 2.0 message per line.

Usage: python3 client.py SOCKET
"""

import json
import socket
import sys


def main(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    lines = sock.makefile("r", encoding="utf-8")

    def send(message):
        sock.sendall((json.dumps(message) + "\n").encode("utf-8"))

    def call(method, params=None, id=1):
        request = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            request["params"] = params
        send(request)
        return json.loads(lines.readline())

    version = call("daemon.version")
    assert version["result"]["protocol_version"] == 1, version

    created = call("project.create", {"name": "From Python"}, id="py-1")
    assert created["id"] == "py-1", created
    assert created["result"]["slug"] == "from-python", created

    missing = call("project.get", {"slug": "no-such-project"})
    assert missing["error"]["data"]["kind"] == "not_found", missing
    assert missing["error"]["data"]["hint"], missing

    send([
        {"jsonrpc": "2.0", "id": 10, "method": "daemon.version"},
        {"jsonrpc": "2.0", "id": 11, "method": "project.list"},
    ])
    batch = json.loads(lines.readline())
    assert sorted(answer["id"] for answer in batch) == [10, 11], batch

    subscribed = call("events.subscribe", {"since": 0}, id=20)
    subscription = subscribed["result"]
    kinds = []
    while len(kinds) < 2:
        note = json.loads(lines.readline())
        assert note["method"] == "events.event", note
        assert note["params"]["subscription"] == subscription, note
        kinds.append(note["params"]["result"]["kind"])
    assert kinds == ["daemon.started", "project.created"], kinds

    print("python client ok")


if __name__ == "__main__":
    main(sys.argv[1])
