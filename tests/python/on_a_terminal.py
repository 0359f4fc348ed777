"""Runs a command on a real terminal (a pseudo-terminal, Python's standard library), answers its
question once the question is on the screen, and prints what the command wrote and how it ended
as one JSON object, for the Rust tests of the questions kromactl asks a person.

    python3 on_a_terminal.py --answer y --after "[y/N]" -- COMMAND ARGS...
"""

import argparse
import json
import os
import pty
import select
import signal
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", required=True)
    parser.add_argument("--after", required=True, help="the text that shows the question is asked")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    pid, terminal = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if not answered and args.after.encode() in output:
            os.write(terminal, (args.answer + "\n").encode())
            answered = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seen = {"output": output.decode(errors="replace"), "answered": answered}
    seen["status"] = os.waitstatus_to_exitcode(status)
    print(json.dumps(seen))


main()
