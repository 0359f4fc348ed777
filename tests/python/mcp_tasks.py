"""Drives kroma-mcp's tasks (the `io.modelcontextprotocol/tasks` extension) with the independent
Python MCP SDK, for tests/e2e/mcp/tasks.rs. The SDK has no tasks client of its own; it carries
extensions, so this script declares the extension and sends `tasks/get` and `tasks/cancel`
itself. On 2026-07-28 it declares a result claim for `resultType: "task"` and calls tools through
the SDK. On 2025-11-25 (legacy) that era has no such result kind (the SDK activates no claim
there and would drop a claimed extension from its capabilities), so the script advertises the
extension alone, sends `tools/call` as a plain request and keeps the raw answer: kroma-mcp must
answer it as it answers any client without tasks.

    python mcp_tasks.py --mode legacy|2026-07-28 --scene ASSET -- kroma-mcp ARGS...

It writes one JSON object per line on stdout. `{"need_code": ID}` asks the person for the
instruction's one-time code, which the test writes back as one line on stdin; the last line is
everything the client saw.
"""

import argparse
import asyncio
import json
import sys
from typing import Any, Literal

from mcp import Client
from mcp.client.extension import ClientExtension, ResultClaim, advertise
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation
from mcp_types import Request, Result
from pydantic import ConfigDict, TypeAdapter

CLIENT_NAME = "kroma-e2e-agent"
TASKS = "io.modelcontextprotocol/tasks"


def say(value):
    print(json.dumps(value, sort_keys=True), flush=True)


class CreatedTask(Result):
    """`CreateTaskResult`: the task's seed state at the top level."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class TaskRequest(Request[dict[str, Any], str]):
    name_param = "taskId"


class ToolCall(Request[dict[str, Any], str]):
    name_param = "name"


async def unresolved(result, context):
    raise RuntimeError("this script reads its tasks itself (allow_claimed=True)")


class TasksExtension(ClientExtension):
    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=unresolved)]


async def start(client, name, arguments):
    """A tool call that may answer with a task: the task as data, or the tool's result."""
    if client.protocol_version != "2026-07-28":
        params = {"name": name, "arguments": arguments}
        return await client.session.send_request(
            ToolCall(method="tools/call", params=params), TypeAdapter(dict[str, Any])
        )
    result = await client.session.call_tool(name, arguments, allow_claimed=True)
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")


async def task_request(client, method, task_id):
    try:
        return await client.session.send_request(
            TaskRequest(method=method, params={"taskId": task_id}), TypeAdapter(dict[str, Any])
        )
    except MCPError as err:
        return {"protocol_error": {"code": err.code, "message": err.message}}


async def until_final(client, task_id):
    """Polls `tasks/get` until the task is final; keeps the status messages it saw."""
    messages = []
    for _ in range(600):
        task = await task_request(client, "tasks/get", task_id)
        if task.get("statusMessage") and task["statusMessage"] not in messages:
            messages.append(task["statusMessage"])
        if task.get("status") not in ["working", "input_required"]:
            task["messages_seen"] = messages
            return task
        await asyncio.sleep(0.1)
    return task


def plan_params(args, candidates):
    return {"project": "noir", "scenes": [args.scene], "candidates": candidates, "provider": "fake", "size": "64x96", "quality": "low"}


def instruction(args, candidates):
    return {
        "project": "noir",
        "objective": "the alley at night",
        "payload": {"type": "pipeline_run", "params": plan_params(args, candidates)},
    }


async def scenario(client, args, seen):
    await client.list_tools()
    seen["submit"] = await start(client, "submit_instruction", instruction(args, 2))
    task_id = seen["submit"]["taskId"]
    seen["waiting"] = await task_request(client, "tasks/get", task_id)
    listed = await client.call_tool("list_instructions", {"project": "noir"})
    instruction_id = listed.structured_content["instructions"][0]["id"]
    say({"need_code": instruction_id})
    code = sys.stdin.readline().strip()
    seen["confirm"] = await start(client, "confirm_with_code", {"id": instruction_id, "code": code})
    seen["confirm_final"] = await until_final(client, seen["confirm"]["taskId"])
    seen["submit_final"] = await until_final(client, task_id)

    seen["to_cancel"] = await start(client, "submit_instruction", instruction(args, 1))
    cancel_id = seen["to_cancel"]["taskId"]
    seen["cancel"] = await task_request(client, "tasks/cancel", cancel_id)
    seen["canceled_final"] = await until_final(client, cancel_id)
    listed = await client.call_tool("list_instructions", {"project": "noir"})
    seen["instructions"] = listed.structured_content["instructions"]
    seen["unknown_task"] = await task_request(client, "tasks/get", "no-such-task")


async def legacy_scenario(client, args, seen):
    await client.list_tools()
    seen["submit"] = await start(client, "submit_instruction", instruction(args, 1))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["legacy", "2026-07-28"], required=True)
    parser.add_argument("--scene", required=True)
    parser.add_argument("server", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.server[1:] if args.server[:1] == ["--"] else args.server
    transport = StdioServerParameters(command=command[0], args=command[1:])
    options = {"mode": args.mode, "client_info": Implementation(name=CLIENT_NAME, version="1")}
    extension = TasksExtension() if args.mode == "2026-07-28" else advertise(TASKS)
    seen = {}
    async with Client(transport, extensions=[extension], **options) as client:
        seen["protocol_version"] = client.protocol_version
        await (scenario if args.mode == "2026-07-28" else legacy_scenario)(client, args, seen)
    say({"result": seen})


asyncio.run(main())
