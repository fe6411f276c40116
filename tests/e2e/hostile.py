#!/usr/bin/env python3
"""hostile.py — a hostile client against `rapport serve`, with a prober beside it.

Usage: hostile.py BASE_URL TOKEN

Sends each heavy request the engine must refuse or cut short, one at a time, while a second
thread asks GET /health back to back on its own connection and times every answer. Prints one
JSON line per heavy request: {"name", "status", "ms", "body", "health_max_ms", "health_n"},
where health_max_ms is the slowest /health answer seen while that request ran (or right after,
for the probe that was waiting on it). The test that runs it judges the lines.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

base, token = sys.argv[1], sys.argv[2]
host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port


class Prober(threading.Thread):
    """GET /health back to back; the slowest answer since the last reset()."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.worst, self.n, self.stop = 0.0, 0, False

    def reset(self):
        with self.lock:
            worst, n = self.worst, self.n
            self.worst, self.n = 0.0, 0
        return worst, n

    def run(self):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while not self.stop:
            t = time.monotonic()
            conn.request("GET", "/health")
            r = conn.getresponse()
            r.read()
            ms = (time.monotonic() - t) * 1000
            with self.lock:
                self.worst = max(self.worst, ms)
                self.n += 1
            time.sleep(0.002)


def send(method, path, body=None, auth=True, bearer=None):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Authorization": "Bearer " + (bearer or token)} if auth else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    t = time.monotonic()
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (time.monotonic() - t) * 1000, data.decode("utf-8", "replace")


def q(obj):
    return urllib.parse.quote(json.dumps(obj))


heavy = [
    ("search of 30000 words", "GET",
     "/api/v1/search?q=" + "+".join("w%d" % i for i in range(30000)), None),
    ("search of 40 short words", "GET",
     "/api/v1/search?q=" + "+".join("a" for _ in range(40)), None),
    ("search of one dotted word of 500 letters", "GET",
     "/api/v1/search?q=" + ".".join("a" for _ in range(500)), None),
    ("filter of 5000 terms", "GET",
     "/api/v1/contact?where=" + q({"or": [{"first_name": "x%d" % i} for i in range(5000)]}),
     None),
    ("filter nested 5000 deep", "GET",
     "/api/v1/contact?where=" + urllib.parse.quote('{"not":' * 5000 + "{}" + "}" * 5000),
     None),
    ("slow filter within the caps", "GET",
     "/api/v1/contact?limit=1000&where=" +
     q({"or": [{"last_name": {"contains": "zq%d" % i}} for i in range(120)]}), None),
    ("bulk of 5000 records", "POST", "/api/v1/contact/bulk",
     json.dumps({"create": [{"first_name": "B%d" % i} for i in range(5000)]})),
    ("a 100 KB name through the backtracking trim rule", "POST", "/api/v1/contact",
     json.dumps({"first_name": "a" + " " * 100000 + "b"})),
    ("a body nested 100000 deep", "POST", "/api/v1/contact", "[" * 100000 + "]" * 100000),
    ("a backslash before a non-ASCII byte, no token", "POST", "/api/v1/auth/login",
     b'{"user": "\\\xc3\xa9"}'),
    # The password is checked (argon2id) on a worker: the loop only parses the body.
    ("a sign-in with a password of 1 MiB, no token", "POST", "/api/v1/auth/login",
     json.dumps({"user": "gus", "password": "x" * (1024 * 1024 - 100)})),
    ("a query string of 20000 parameters", "GET",
     "/api/v1/contact?" + "&".join("p%d=%d" % (i, i) for i in range(20000)), None),
    ("a path of 60000 bytes, no token", "GET", "/api/v1/" + "a/" * 30000, None),
    ("a cursor of 50000 bytes", "GET", "/api/v1/contact?limit=1000&after=" + "A" * 50000, None),
    ("an order of 1000 fields", "GET",
     "/api/v1/contact?limit=1000&order=" + ",".join(["-first_name", "last_name"] * 500), None),
    ("a bearer token of 60000 bytes", "GET", "/api/v1/contact", None),
]

prober = Prober()
prober.start()
time.sleep(0.2)
prober.reset()
for name, method, path, body in heavy:
    prober.reset()
    status, ms, text = send(method, path, body, auth="login" not in path and "no token" not in name,
                            bearer="rpt_" + "x" * 60000 if "bearer token" in name else None)
    time.sleep(0.05)  # the probe that waited on this request answers meanwhile
    worst, n = prober.reset()
    print(json.dumps({"name": name, "status": status, "ms": round(ms, 1), "body": text[:400],
                      "health_max_ms": round(worst, 1), "health_n": n}), flush=True)
prober.stop = True
