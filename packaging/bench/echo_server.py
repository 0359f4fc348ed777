"""The blocking client's floor in `kromactl bench rpc`: a plain Python echo server on a Unix
socket, a thread per connection, each line written back as it was read (run as `python3 -c`).

Arguments: SOCKET_PATH. Prints "ready" once it listens.
"""
import os
import socket
import sys
import threading

path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(16)
print("ready", flush=True)


def serve(connection):
    for line in connection.makefile("rb"):
        connection.sendall(line)


while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
