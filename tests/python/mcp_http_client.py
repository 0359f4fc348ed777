"""Drives `kroma-mcp --http` with the independent Python MCP SDK and raw HTTP requests, and prints
what it saw as one JSON document on stdout, for tests/e2e/mcp/http.rs to check.

    python mcp_http_client.py --url http://127.0.0.1:PORT/mcp --token-file PATH --scenario eras|refusals

`eras` connects with the bearer token in each MCP era (legacy `initialize`, 2026-07-28, auto) and
lists tools and projects; `refusals` sends raw requests that must be refused: no token, a wrong
token, a browser `Origin`, a foreign `Host`, an oversized body (and one good request as control).
The token is read from its file, so it never appears on a command line.
"""

import argparse
import asyncio
import http.client
import json
import sys
import urllib.parse

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "kroma-refusal-test", "version": "1"},
    },
}


async def eras(url, token):
    seen = {}
    for mode in ["legacy", "2026-07-28", "auto"]:
        http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http_client:
            async with Client(streamable_http_client(url, http_client=http_client), mode=mode) as client:
                tools = await client.list_tools()
                projects = await client.call_tool("list_projects", {})
                seen[mode] = {
                    "protocol_version": client.protocol_version,
                    "tools": [tool.name for tool in tools.tools],
                    "list_projects": {"is_error": bool(projects.is_error), "structured": projects.structured_content},
                }
    return seen


def post(url, headers, body):
    """One POST with exactly these headers (Host included when given); the status and body."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    has_host = any(name.lower() == "host" for name in headers)
    connection.putrequest("POST", parts.path, skip_host=has_host, skip_accept_encoding=True)
    all_headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Content-Length": str(len(body)),
        **headers,
    }
    for name, value in all_headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        connection.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = connection.getresponse()
    text = response.read(2000).decode("utf-8", "replace")
    connection.close()
    return {"status": response.status, "body": text}


def refusals(url, token):
    good = json.dumps(INITIALIZE).encode()
    bearer = {"Authorization": f"Bearer {token}"}
    oversized = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping", "pad": "x" * (2 * 1024 * 1024)}).encode()
    return {
        "no_token": post(url, {}, good),
        "wrong_token": post(url, {"Authorization": "Bearer " + "0" * len(token)}, good),
        "not_bearer": post(url, {"Authorization": f"Basic {token}"}, good),
        "browser_origin": post(url, {**bearer, "Origin": "http://evil.example"}, good),
        "foreign_host": post(url, {**bearer, "Host": "evil.example"}, good),
        "oversized": post(url, bearer, oversized),
        "good": post(url, bearer, good),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--scenario", required=True, choices=["eras", "refusals"])
    args = parser.parse_args()
    with open(args.token_file, encoding="utf-8") as file:
        token = file.read().strip()
    if args.scenario == "eras":
        seen = asyncio.run(eras(args.url, token))
    else:
        seen = refusals(args.url, token)
    json.dump(seen, sys.stdout, indent=1, sort_keys=True)


main()
