"""Drives kroma-mcp with the independent Python MCP SDK (PyPI `mcp`, pinned by install.sh) and
prints what it saw as one JSON document on stdout, for tests/e2e/mcp.rs to check.

    python mcp_client.py --mode legacy|auto|2026-07-28 --scenario tour|tools|thumbnail|assets \
        [--project P] [--scene ASSET] [--run RUN] -- kroma-mcp --socket PATH [...]

`legacy` makes the 2025-11-25 `initialize` handshake, `2026-07-28` adopts that version with no
handshake (per-request metadata), `auto` probes `server/discover` first.
"""

import argparse
import asyncio
import base64
import json
import struct
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError


def dump(model):
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def png_size(data):
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return list(struct.unpack(">II", data[16:24]))


def tool_result(result):
    """A tool result as plain data: the error flag, the content blocks and structured content."""
    blocks = []
    for block in result.content:
        if block.type == "image":
            data = base64.b64decode(block.data)
            blocks.append({"type": "image", "mime_type": block.mime_type, "bytes": len(data), "size": png_size(data)})
        elif block.type == "text":
            blocks.append({"type": "text", "text": block.text})
        else:
            blocks.append({"type": block.type})
    return {"is_error": bool(result.is_error), "content": blocks, "structured": result.structured_content}


def resource_content(content):
    """One resource content as plain data: a blob as its size (and a PNG's pixels), text as JSON."""
    blob = getattr(content, "blob", None)
    if blob is not None:
        data = base64.b64decode(blob)
        size = png_size(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else None
        return {"mime_type": content.mime_type, "blob_bytes": len(data), "size": size}
    return {"mime_type": content.mime_type, "json": json.loads(content.text)}


async def protocol_error(call):
    try:
        await call
    except MCPError as err:
        return {"code": err.code, "message": err.message}
    return None


async def tools(client):
    listed = await client.list_tools()
    return [dump(tool) for tool in listed.tools]


async def tour(client, args):
    seen = {"tools": await tools(client)}
    seen["list_projects"] = tool_result(await client.call_tool("list_projects", {}))
    seen["read_project_knowledge"] = tool_result(
        await client.call_tool("read_project_knowledge", {"project": args.project})
    )
    plan = {
        "project": args.project,
        "scenes": [args.scene],
        "candidates": 2,
        "provider": "fake",
        "size": "64x96",
        "quality": "low",
    }
    seen["plan_run"] = tool_result(await client.call_tool("plan_run", plan))
    seen["run_status"] = tool_result(await client.call_tool("run_status", {"run": args.run}))
    seen["list_runs"] = tool_result(await client.call_tool("list_runs", {"project": args.project}))
    seen["list_baselines"] = tool_result(
        await client.call_tool("list_baselines", {"project": args.project})
    )
    seen["candidate_thumbnail"] = tool_result(
        await client.call_tool("candidate_thumbnail", {"run": args.run, "candidate": 2})
    )
    seen["contact_sheet"] = tool_result(
        await client.call_tool("contact_sheet", {"run": args.run, "thumb": 64})
    )
    seen["missing_run"] = tool_result(
        await client.call_tool("run_status", {"run": "00000000-0000-4000-8000-000000000000"})
    )
    seen["bad_arguments"] = tool_result(await client.call_tool("run_status", {"run": 7}))

    resources = await client.list_resources()
    seen["resources"] = [dump(resource) for resource in resources.resources]
    templates = await client.list_resource_templates()
    seen["resource_templates"] = [dump(template) for template in templates.resource_templates]
    reads = {}
    for uri in ["kroma://projects", f"kroma://projects/{args.project}", f"kroma://runs/{args.run}"]:
        contents = (await client.read_resource(uri)).contents
        reads[uri] = [{"mime_type": c.mime_type, "json": json.loads(c.text)} for c in contents]
    seen["read_resource"] = reads
    seen["unknown_resource"] = await protocol_error(client.read_resource("kroma://assets/1"))
    seen["missing_run_resource"] = await protocol_error(
        client.read_resource("kroma://runs/00000000-0000-4000-8000-000000000000")
    )

    prompts = await client.list_prompts()
    seen["prompts"] = [dump(prompt) for prompt in prompts.prompts]
    got = {}
    for name, arguments in [
        ("bootstrap_project", {"project": args.project, "goal": "A rainy noir comic"}),
        ("plan_scene", {"project": args.project, "scene": args.scene, "stage": "style", "candidates": "2"}),
    ]:
        result = await client.get_prompt(name, arguments)
        got[name] = {"description": result.description, "messages": [dump(m) for m in result.messages]}
    seen["get_prompt"] = got
    seen["bad_prompt"] = await protocol_error(
        client.get_prompt("plan_scene", {"project": args.project, "scene": args.scene, "candidates": "40"})
    )
    return seen


async def assets(client, args):
    """Reads a project's asset list, then every asset in it; a refusal is kept as the error."""
    templates = await client.list_resource_templates()
    seen = {"resource_templates": [dump(template) for template in templates.resource_templates]}
    prefix = f"kroma://projects/{args.project}/assets"
    listed = (await client.read_resource(prefix)).contents
    seen["assets"] = [resource_content(content) for content in listed]
    reads = {}
    for asset in seen["assets"][0]["json"]["assets"]:
        try:
            contents = (await client.read_resource(f"{prefix}/{asset['id']}")).contents
            reads[asset["id"]] = [resource_content(content) for content in contents]
        except MCPError as err:
            reads[asset["id"]] = {"code": err.code, "message": err.message}
    seen["reads"] = reads
    seen["missing_asset"] = await protocol_error(
        client.read_resource(f"{prefix}/00000000-0000-4000-8000-000000000000")
    )
    seen["unknown_project"] = await protocol_error(client.read_resource("kroma://projects/nowhere/assets"))
    return seen


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--scenario", required=True, choices=["tour", "tools", "thumbnail", "assets"])
    parser.add_argument("--project", default="noir")
    parser.add_argument("--scene")
    parser.add_argument("--run")
    parser.add_argument("server", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.server[1:] if args.server[:1] == ["--"] else args.server
    server = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(server, mode=args.mode) as client:
        seen = {"protocol_version": client.protocol_version}
        info = client.server_info
        seen["server_name"] = info.name if info is not None else None
        if args.scenario == "tour":
            seen.update(await tour(client, args))
        elif args.scenario == "tools":
            seen["tools"] = await tools(client)
            seen["list_projects"] = tool_result(await client.call_tool("list_projects", {}))
        elif args.scenario == "assets":
            seen.update(await assets(client, args))
        else:
            seen["candidate_thumbnail"] = tool_result(await client.call_tool("candidate_thumbnail", {"run": args.run}))
    json.dump(seen, sys.stdout, indent=1, sort_keys=True)


asyncio.run(main())
