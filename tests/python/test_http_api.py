"""The coordinator's REST API (`pesc-coordinator --http`) against real daemons on 127.0.0.1, with urllib alone.

Every endpoint of the README's "Web dashboard and REST API", its bad inputs
(a JSON error, nothing created), CSRF, and what a second user may not see.
"""

import io
import json
import os
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import _daemon, start_coordinator, start_worker, stop

RANK_SCRIPT = """\
import os, sys, time
args = sys.argv[1:]
rank = int(args[args.index("--rank") + 1])
out = args[args.index("--output_dir") + 1]
params = args[args.index("--parameters") + 1:] if "--parameters" in args else []
if params and params[0] == "sleep":
    time.sleep(float(params[1]))
if params and params[0] == "big":
    sys.stdout.write("y" * 300_000 + "\\n")
    with open(os.path.join(out, "big.bin"), "wb") as f:
        f.write(os.urandom(300_000))
print(f"rank {rank} says hello")
with open(os.path.join(out, "data.bin"), "wb") as f:
    f.write(bytes([rank]) * (rank + 1))
"""


class Http:
    """A client of the API: a Bearer token, or a browser-like session cookie with its CSRF token."""

    def __init__(self, base: str, token: str | None = None, context=None):
        self.base, self.token, self.context = base, token, context
        self.cookie = None
        self.csrf = None

    def login(self, token: str):
        status, body, headers = self.request("POST", "/api/v1/login", {"token": token})
        assert status == 200, body
        self.cookie = headers["Set-Cookie"].split(";")[0]
        self.csrf = body["csrf_token"]
        return body, headers["Set-Cookie"]

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None, content_type=None,
                csrf: bool = True, headers=None):
        data, all_headers = raw, dict(headers or {})
        if body is not None:
            data, content_type = json.dumps(body).encode(), "application/json"
        if data is None and method in ("POST", "DELETE"):
            data = b""
        if content_type:
            all_headers["Content-Type"] = content_type
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            all_headers["Cookie"] = self.cookie
            if csrf and self.csrf and method != "GET":
                all_headers["X-CSRF-Token"] = self.csrf
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                payload, status, response_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            payload, status, response_headers = error.read(), error.code, error.headers
        if response_headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(payload), response_headers
        return status, payload, response_headers

    def get(self, path: str):
        return self.request("GET", path)[:2]

    def submit(self, spec: dict, script: str = RANK_SCRIPT, name: str = "hello.py", shared=(), csrf: bool = True):
        parts = [("spec", None, json.dumps(spec).encode()), ("process", name, script.encode())]
        parts += [("shared", file_name, content) for file_name, content in shared]
        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for field, file_name, content in parts:
            body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"".encode())
            if file_name:
                body.write(f"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream".encode())
            body.write(b"\r\n\r\n" + content + b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        return self.request("POST", "/api/v1/jobs", raw=body.getvalue(),
                            content_type=f"multipart/form-data; boundary={boundary}", csrf=csrf)[:2]

    def wait_job(self, job_id: str, states=("done", "failed", "cancelled"), timeout: float = 60):
        deadline = time.monotonic() + timeout
        while True:
            status, job = self.get(f"/api/v1/jobs/{job_id}")
            assert status == 200, job
            if job["state"] in states or time.monotonic() > deadline:
                return job
            time.sleep(0.1)


def wait_for_file(path: Path, process, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert process.poll() is None, "the coordinator exited"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text().strip()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A coordinator serving --http on 127.0.0.1:0, a 2-slot worker, and users alice and bob."""
    state = tmp_path_factory.mktemp("http-state")
    logs = tmp_path_factory.mktemp("http-logs")
    coordinator, address, admin_token = start_coordinator(state, logs, "--http", "127.0.0.1:0")
    processes = [coordinator]
    try:
        base = wait_for_file(state / "http.addr", coordinator)
        env = dict(os.environ, PESC_TOKEN=admin_token)
        processes.append(start_worker(address, tmp_path_factory.mktemp("http-work"), logs / "worker.log", env=env))
        admin = Http(base, admin_token)
        tokens = {}
        for user in ("alice", "bob"):
            status, issued = admin.request("POST", "/api/v1/admin/users", {"name": user})[:2]
            assert status == 201, issued
            tokens[user] = issued["token"]
        deadline = time.monotonic() + 20
        while not any(w["state"] == "online" for w in admin.get("/api/v1/workers")[1]["workers"]):
            assert time.monotonic() < deadline, "the worker never joined"
            time.sleep(0.1)
        yield {"base": base, "state": state, "admin": admin, "tokens": tokens, "logs": logs}
    finally:
        stop(processes)


@pytest.fixture(scope="module")
def finished_job(farm):
    """A 4-rank job of alice's, run to the end."""
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, body = alice.submit({"domain": "python", "repetitions": 4, "name": "greetings", "params": ["x"],
                                 "memory": "512M", "timeout": 60},
                                shared=[("table.csv", b"a,b\n1,2\n")])
    assert status == 201, body
    job = alice.wait_job(body["id"])
    assert job["state"] == "done", job
    return job


def blobs_in(state: Path) -> int:
    return sum(1 for path in state.rglob("*") if path.is_file() and "blob" in str(path.relative_to(state)))


def test_login_sets_a_strict_http_only_cookie_and_me_names_the_user(farm):
    browser = Http(farm["base"])
    status, body, _ = browser.request("POST", "/api/v1/login", {"token": "pesc_" + "0" * 40})
    assert status == 401 and "token" in body["error"]
    status, body, _ = browser.request("POST", "/api/v1/login", {"nothing": 1})
    assert status == 400 and "token" in body["error"]
    me, cookie = browser.login(farm["tokens"]["alice"])
    assert me["user"] == "alice" and me["admin"] is False and me["csrf_token"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie, "plain HTTP on loopback: a Secure cookie would never come back"
    status, body = browser.get("/api/v1/me")
    assert status == 200 and body == me
    status, body, _ = browser.request("POST", "/api/v1/logout")
    assert status == 200
    status, body = browser.get("/api/v1/me")
    assert status == 401 and "log in again" in body["error"]
    status, body = Http(farm["base"]).get("/api/v1/jobs")
    assert status == 401 and "needs a token" in body["error"]


def test_a_change_without_the_csrf_token_is_refused_and_creates_nothing(farm):
    browser = Http(farm["base"])
    browser.login(farm["tokens"]["alice"])
    before = browser.get("/api/v1/jobs")[1]["total"]
    status, body = browser.submit({"domain": "python", "repetitions": 1}, csrf=False)
    assert status == 403 and "CSRF" in body["error"]
    browser.csrf = "pesc_forged"
    status, body = browser.submit({"domain": "python", "repetitions": 1})
    assert status == 403 and "CSRF" in body["error"]
    assert browser.get("/api/v1/jobs")[1]["total"] == before
    browser.csrf = browser.get("/api/v1/me")[1]["csrf_token"]
    status, body = browser.submit({"domain": "python", "repetitions": 1})
    assert status == 201, body
    assert browser.wait_job(body["id"])["state"] == "done"


@pytest.mark.parametrize("spec, script, name, says", [
    ({"domain": "python", "repetitions": 0}, RANK_SCRIPT, "hello.py", "repetitions"),
    ({"domain": "python", "repetitions": 2, "colour": "red"}, RANK_SCRIPT, "hello.py", "colour"),
    ({"domain": "python", "repetitions": "two"}, RANK_SCRIPT, "hello.py", "repetitions"),
    ({"repetitions": 2}, RANK_SCRIPT, "hello.py", "domain"),
    ({"domain": "python", "repetitions": 2}, "not a zip", "broken.zip", "zip"),
    ({"domain": "python", "repetitions": 2, "rooms": ["lab-of-nobody"]}, RANK_SCRIPT, "hello.py", "room"),
    ({"domain": "python", "repetitions": 2, "memory": "lots"}, RANK_SCRIPT, "hello.py", "memory"),
])
def test_a_bad_submit_says_what_is_wrong_and_creates_nothing(farm, spec, script, name, says):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    if "rooms" in spec:
        farm["admin"].request("POST", "/api/v1/admin/rooms", {"room": "lab-of-nobody", "users": ["bob"]})
    jobs_before, blobs_before = alice.get("/api/v1/jobs")[1]["total"], blobs_in(farm["state"])
    status, body = alice.submit(spec, script=script + f"\n# {uuid.uuid4()}\n", name=name)
    assert 400 <= status < 500 and says in body["error"], body
    assert alice.get("/api/v1/jobs")[1]["total"] == jobs_before
    assert blobs_in(farm["state"]) == blobs_before, "a refused submit stores no file"


def test_a_submit_that_is_not_a_form_is_refused(farm):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, body, _ = alice.request("POST", "/api/v1/jobs", {"domain": "python"})
    assert status == 400 and "multipart/form-data" in body["error"]
    status, body, _ = alice.request("POST", "/api/v1/jobs", raw=b"--x--\r\n",
                                    content_type="multipart/form-data; boundary=x")
    assert status == 400 and "malformed" in body["error"]
    status, body, _ = alice.request("POST", "/api/v1/jobs", raw=b"--x\r\nContent-Disposition: form-data; "
                                    b"name=\"spec\"\r\n\r\n{}\r\n--x--\r\n",
                                    content_type="multipart/form-data; boundary=x")
    assert status == 400 and "\"process\" file" in body["error"]


def test_jobs_list_status_and_spec(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, listing = alice.get("/api/v1/jobs?state=done&limit=50")
    assert status == 200
    assert finished_job["id"] in [job["id"] for job in listing["jobs"]]
    assert all(job["owner"] == "alice" for job in listing["jobs"])
    assert listing["usage"] and listing["usage"][0]["user"] == "alice"
    job = finished_job
    assert (job["repetitions"], job["done"], job["failed"], job["queued"]) == (4, 4, 0, 0)
    assert job["spec"]["domain"] == "python" and job["spec"]["params"] == ["x"] and job["name"] == "greetings"
    assert job["spec"]["shared"] == ["table.csv"] and job["spec"]["entry"] == "hello.py"
    assert job["spec"]["memory"] == 512 << 20 and job["spec"]["timeout_s"] == 60
    assert job["wall_s"] > 0 and job["finished_at"] >= job["submitted_at"]
    assert job["speedup"] > 0 and job["workers_used"] == 1
    for bad in ("?limit=0", "?limit=5000", "?offset=-1", "?limit=ten"):
        status, body = alice.get("/api/v1/jobs" + bad)
        assert status == 400 and "takes a whole number" in body["error"]
    status, body = alice.get("/api/v1/jobs/nosuchjob")
    assert status == 404 and "nosuchjob" in body["error"]


def test_ranks_page_filter_and_rank_outputs(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    job_id = finished_job["id"]
    status, page = alice.get(f"/api/v1/jobs/{job_id}/ranks?offset=1&limit=2")
    assert status == 200 and page["total"] == 4
    assert [rank["rank"] for rank in page["ranks"]] == [1, 2]
    rank = page["ranks"][0]
    assert rank["status"] == "done" and rank["worker"] and rank["attempts"] == 1
    assert rank["duration_s"] >= 0 and rank["cpu_s"] >= 0 and rank["max_rss_kb"] > 0
    assert alice.get(f"/api/v1/jobs/{job_id}/ranks?status=failed")[1] == {"total": 0, "offset": 0, "ranks": []}
    assert alice.get(f"/api/v1/jobs/{job_id}/ranks?status=done")[1]["total"] == 4
    status, body = alice.get(f"/api/v1/jobs/{job_id}/ranks?status=happy")
    assert status == 400 and "queued, running, done, failed or cancelled" in body["error"]
    status, body = alice.get(f"/api/v1/jobs/{job_id}/ranks?limit=501")
    assert status == 400 and "500" in body["error"]

    status, rank3 = alice.get(f"/api/v1/jobs/{job_id}/ranks/3")
    assert status == 200 and rank3["rank"] == 3
    assert {"name": "data.bin", "size": 4} in rank3["files"]
    assert rank3["files"][0]["name"] == "output.txt"
    status, output = alice.get(f"/api/v1/jobs/{job_id}/ranks/3/output")
    assert status == 200 and output == b"rank 3 says hello\n"
    status, data = alice.get(f"/api/v1/jobs/{job_id}/ranks/3/files/data.bin")
    assert status == 200 and data == b"\x03" * 4
    status, body = alice.get(f"/api/v1/jobs/{job_id}/ranks/3/files/nothing.txt")
    assert status == 404 and "nothing.txt" in body["error"]
    status, body = alice.get(f"/api/v1/jobs/{job_id}/ranks/4")
    assert status == 404 and "0 to 3" in body["error"]
    status, body = alice.get(f"/api/v1/jobs/{job_id}/ranks/minus")
    assert status == 400

    status, archive = alice.get(f"/api/v1/jobs/{job_id}/ranks/2/archive")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert tar.extractfile("rank_2/output.txt").read() == b"rank 2 says hello\n"
        assert tar.extractfile("rank_2/data.bin").read() == b"\x02" * 3


def test_the_job_archive_has_every_rank_and_the_joined_output(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, archive, headers = alice.request("GET", f"/api/v1/jobs/{finished_job['id']}/archive")
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
        assert names[0] == "output.txt"
        assert tar.extractfile("output.txt").read() == b"".join(
            f"rank {r} says hello\n".encode() for r in range(4))
        for r in range(4):
            assert tar.extractfile(f"rank_{r}/output.txt").read() == f"rank {r} says hello\n".encode()
            assert tar.extractfile(f"rank_{r}/data.bin").read() == bytes([r]) * (r + 1)


def test_outputs_too_big_to_travel_inline_come_from_their_blobs(farm):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, body = alice.submit({"domain": "python", "repetitions": 1, "params": ["big"]})
    assert status == 201, body
    job_id = body["id"]
    assert alice.wait_job(job_id)["state"] == "done"
    status, output = alice.get(f"/api/v1/jobs/{job_id}/ranks/0/output")
    assert status == 200 and output.startswith(b"y" * 1000) and len(output) == 300_000 + len("rank 0 says hello\n") + 1
    status, big = alice.get(f"/api/v1/jobs/{job_id}/ranks/0/files/big.bin")
    assert status == 200 and len(big) == 300_000
    status, archive = alice.get(f"/api/v1/jobs/{job_id}/archive")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert tar.extractfile("rank_0/big.bin").read() == big
        assert tar.extractfile("output.txt").read() == output == tar.extractfile("rank_0/output.txt").read()


def test_timeline_distribution_and_report(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    job_id = finished_job["id"]
    status, timeline = alice.get(f"/api/v1/jobs/{job_id}/timeline")
    assert status == 200 and len(timeline["spans"]) == 4 and timeline["slots"]
    assert sorted(span["rank"] for span in timeline["spans"]) == [0, 1, 2, 3]
    assert all(span["end"] >= span["start"] and span["status"] == "done" for span in timeline["spans"])
    assert timeline["speedup"] > 0
    status, distribution = alice.get(f"/api/v1/jobs/{job_id}/distribution")
    assert status == 200
    assert sorted(r for worker in distribution["workers"] for r in worker["ranks"]) == [0, 1, 2, 3]
    status, svg, headers = alice.request("GET", f"/api/v1/jobs/{job_id}/report.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and svg.startswith(b"<svg")


def test_a_second_user_sees_neither_the_jobs_nor_their_outputs(farm, finished_job):
    bob = Http(farm["base"], farm["tokens"]["bob"])
    job_id = finished_job["id"]
    assert job_id not in [job["id"] for job in bob.get("/api/v1/jobs")[1]["jobs"]]
    for path in ("", "/ranks", "/ranks/0", "/ranks/0/output", "/ranks/0/files/data.bin", "/ranks/0/archive",
                 "/archive", "/timeline", "/distribution", "/report.svg"):
        status, body = bob.get(f"/api/v1/jobs/{job_id}{path}")
        assert status == 404 and body == {"error": f"no job {job_id}"}, path
    status, body, _ = bob.request("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert status == 404
    status, body, _ = bob.request("DELETE", f"/api/v1/jobs/{job_id}")
    assert status == 404
    status, body = bob.get(f"/api/v1/events?job={job_id}")
    assert status == 404
    admin = farm["admin"]
    assert admin.get(f"/api/v1/jobs/{job_id}")[0] == 200, "the admin sees every job"
    assert admin.get("/api/v1/jobs/nosuchjob/ranks")[0] == 404, "but only jobs that exist"


def test_cancel_a_running_job_and_delete_it(farm):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, body = alice.submit({"domain": "python", "repetitions": 6, "params": ["sleep", "30"]})
    assert status == 201, body
    job_id = body["id"]
    alice.wait_job(job_id, states=("running",))
    status, cancelled, _ = alice.request("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert status == 200 and cancelled == {"id": job_id, "state": "cancelled"}
    assert alice.wait_job(job_id)["state"] == "cancelled"
    status, body, _ = alice.request("DELETE", f"/api/v1/jobs/{job_id}")
    assert status == 200 and body["id"] == job_id
    assert alice.get(f"/api/v1/jobs/{job_id}")[0] == 404


def test_workers_and_metrics(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    status, body = alice.get("/api/v1/workers")
    worker = body["workers"][0]
    assert status == 200 and worker["state"] == "online" and worker["slots"] == 2 and worker["rooms"] == ["public"]
    assert worker["ranks_done"] >= 4 and worker["last_seen"] > 0
    status, text = Http(farm["base"]).get("/metrics")
    assert status == 200
    text = text.decode()
    for line in ('pesc_workers{state="online"} 1', "# TYPE pesc_store_seconds histogram",
                 'pesc_slots{state="free"}', "pesc_dispatched_total ", "pesc_results_total "):
        assert line in text, line
    done = next(line for line in text.splitlines() if line.startswith('pesc_ranks{state="done"}'))
    assert int(done.split()[1]) >= 4


def test_events_stream_wakes_with_a_new_job_and_keeps_to_the_users_jobs(farm, finished_job):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    request = urllib.request.Request(farm["base"] + "/api/v1/events",
                                     headers={"Authorization": f"Bearer {farm['tokens']['bob']}"})
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = stream.readline()
        assert first.startswith(b"event: worker"), first
        bob = Http(farm["base"], farm["tokens"]["bob"])
        status, body = bob.submit({"domain": "python", "repetitions": 2})
        assert status == 201
        alice.submit({"domain": "python", "repetitions": 1})
        deadline = time.monotonic() + 30
        seen_done = False
        while not seen_done and time.monotonic() < deadline:
            line = stream.readline()
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[len("data: "):])
            if "owner" in event:
                assert event["owner"] == "bob", "bob's stream carries none of alice's jobs"
                seen_done = event["id"] == body["id"] and event["state"] == "done"
        assert seen_done


def test_admin_routes_are_for_the_admin(farm):
    alice = Http(farm["base"], farm["tokens"]["alice"])
    for method, path in (("GET", "/api/v1/admin/users"), ("POST", "/api/v1/admin/worker-tokens"),
                         ("GET", "/api/v1/admin/rooms")):
        status, body, _ = alice.request(method, path)
        assert status == 403 and "admin" in body["error"]
    admin = farm["admin"]
    status, issued, _ = admin.request("POST", "/api/v1/admin/users", {"name": "carol"})
    assert status == 201 and issued["name"] == "carol"
    status, body, _ = admin.request("POST", "/api/v1/admin/users", {"name": "carol"})
    assert status >= 400 and "carol" in body["error"]
    status, body, _ = admin.request("POST", "/api/v1/admin/users", {"name": "no spaces allowed"})
    assert status == 400
    names = [token["name"] for token in admin.get("/api/v1/admin/users")[1]["tokens"]]
    assert {"admin", "alice", "bob", "carol"} <= set(names)
    carol = Http(farm["base"])
    carol.login(issued["token"])
    status, worker = admin.request("POST", "/api/v1/admin/worker-tokens")[:2]
    assert status == 201 and worker["name"].startswith("worker-") and worker["token"]
    assert worker["name"] in [t["name"] for t in admin.get("/api/v1/admin/worker-tokens")[1]["tokens"]]
    status, room = admin.request("POST", "/api/v1/admin/rooms", {"room": "gpu-lab", "users": ["alice"]})[:2]
    assert status == 200 and room == {"room": "gpu-lab", "users": ["alice"]}
    assert {"room": "gpu-lab", "users": ["alice"]} in admin.get("/api/v1/admin/rooms?room=gpu-lab")[1]["rooms"]
    status, body, _ = admin.request("POST", "/api/v1/admin/rooms", {"users": ["alice"]})
    assert status == 400 and "room" in body["error"]
    status, body, _ = admin.request("DELETE", "/api/v1/admin/users/carol")
    assert status == 200 and body["revoked"] == 1
    assert carol.get("/api/v1/me")[0] == 401, "a revoked token ends its sessions"
    status, body, _ = admin.request("DELETE", "/api/v1/admin/users/carol")
    assert status == 404


def test_pages_and_errors_are_served(farm):
    browser = Http(farm["base"])
    status, page, headers = browser.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in page
    status, body = browser.get("/assets/index.html")
    assert status == 200
    status, body = browser.get("/assets/../../etc/passwd")
    assert status == 404
    status, body = browser.get("/api/v1/nothing")
    assert status == 404 and "no such page" in body["error"]


def test_http_refuses_a_public_address_without_tls(tmp_path):
    result = subprocess.run(
        [_daemon("PESC_COORDINATOR_BIN", "pesc-coordinator"), "--listen", "127.0.0.1:0",
         "--state-dir", tmp_path / "state", "--http", "0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "without TLS" in result.stderr and "ssh -L" in result.stderr
    assert not (tmp_path / "state" / "admin.token").exists(), "refused before anything starts"


def test_https_with_the_coordinators_certificate(tmp_path):
    cli = Path(_daemon("PESC_COORDINATOR_BIN", "pesc-coordinator")).parent / "pesc"
    certs = tmp_path / "certs"
    subprocess.run([cli, "certs", "init", certs], check=True, capture_output=True, timeout=60)
    state, logs = tmp_path / "state", tmp_path / "logs"
    state.mkdir()
    logs.mkdir()
    coordinator, _, admin_token = start_coordinator(
        state, logs, "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        "--http", "127.0.0.1:0")
    try:
        base = wait_for_file(state / "http.addr", coordinator)
        assert base.startswith("https://127.0.0.1:")
        browser = Http(base, context=ssl.create_default_context(cafile=str(certs / "ca.pem")))
        me, cookie = browser.login(admin_token)
        assert me["admin"] is True and "Secure" in cookie
        assert browser.get("/api/v1/workers")[0] == 200
    finally:
        stop([coordinator])
