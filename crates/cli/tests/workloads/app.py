"""A small web app for the learning round trip: serves files from a
directory on a loopback port, and on request tries one new behaviour
(spawn a shell, connect to a port, write a file) and reports the errno."""
import http.server
import json
import socket
import subprocess
import sys
import threading
import urllib.parse

PORT, ROOT = int(sys.argv[1]), sys.argv[2]


def connect(port):
    with socket.socket() as s:
        s.settimeout(2)
        s.connect(("127.0.0.1", port))


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/shell":
            return self.attempt(lambda: subprocess.run(["/bin/sh", "-c", "true"], check=True))
        if url.path == "/connect":
            port = int(query["port"][0])
            return self.attempt(lambda: connect(port))
        if url.path == "/write":
            return self.attempt(lambda: open(query["path"][0], "w").close())
        if url.path == "/quit":
            self.reply({"ok": True})
            threading.Thread(target=self.server.shutdown).start()
            return None
        return super().do_GET()

    def attempt(self, action):
        try:
            action()
            self.reply({"ok": True})
        except OSError as e:
            self.reply({"ok": False, "errno": e.errno, "error": str(e)})
        except subprocess.SubprocessError as e:
            self.reply({"ok": False, "errno": None, "error": str(e)})

    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
server.server_close()
