"""Serves a directory over HTTP on 127.0.0.1 (an ephemeral port) while one command runs.

Usage: serve_and_run.py ROOT FILE TIMEOUT_S -- COMMAND [ARGS...]

The server is Debian's python3-rangehttpserver (RangeHTTPServer.RangeRequestHandler: http.server's
static files plus Range requests), bound to 127.0.0.1 only, port chosen by the kernel. COMMAND runs
with CUB_URL=http://127.0.0.1:PORT/FILE in its environment, its output passed through, and is killed
after TIMEOUT_S seconds; then the server stops. Afterwards one line per request the server answered
is printed, "[server] GET /FILE range=<Range header or ->", and this program exits with COMMAND's
exit code (124 if it timed out).
"""
import functools
import http.server
import os
import signal
import subprocess
import sys
import threading

from RangeHTTPServer import RangeRequestHandler


class LoggingHandler(RangeRequestHandler):
    """Records each request's method, path and Range header (for the tests); serving is the library's."""

    requests = []

    def send_head(self):
        LoggingHandler.requests.append((self.command, self.path, self.headers.get("Range", "-")))
        return super().send_head()

    def log_message(self, format, *args):  # quiet: the request lines are printed at the end
        pass


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    root, name, timeout_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    command = sys.argv[5:]
    # A hard bound on this whole program, whatever happens below.
    signal.alarm(int(timeout_s) + 15)
    handler = functools.partial(LoggingHandler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    env = dict(os.environ, CUB_URL=f"http://127.0.0.1:{server.server_address[1]}/{name}")
    sys.stdout.flush()
    # Its own session, so that a timeout ends the command's children (curl, tar) too.
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        code = child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        print(f"[server] {command[0]} did not finish within {timeout_s} s: killed", flush=True)
        code = 124
    finally:
        server.shutdown()
        server.server_close()
    for method, path, byte_range in LoggingHandler.requests:
        print(f"[server] {method} {path} range={byte_range}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
