"""--notify: a job's end is told once per target, by e-mail through the coordinator's --smtp-url or as a JSON
POST, to a local SMTP sink and HTTP receiver; bad targets are refused at submit; an unreachable receiver is
logged and holds nothing up."""

import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import pesc
from conftest import start_coordinator, start_worker, stop


class SmtpSink(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP for libcurl; keeps (recipients, message) of every mail taken."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.mails = []


class _SmtpSession(socketserver.StreamRequestHandler):
    def handle(self):
        recipients = []
        self.wfile.write(b"220 sink ESMTP\r\n")
        for line in self.rfile:
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip())
            if verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                message = b""
                for data in self.rfile:
                    if data == b".\r\n":
                        break
                    message += data
                self.server.mails.append((recipients, message.decode()))
                recipients = []
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            self.wfile.write(b"250 ok\r\n")


class HookReceiver(ThreadingHTTPServer):
    """Keeps the JSON body of every POST."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.posts = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A coordinator sending mail to a sink, a worker, and a hook receiver; yields them."""
    smtp, hook = _serve(SmtpSink()), _serve(HookReceiver())
    state, work, logs = (tmp_path_factory.mktemp(name) for name in ("state", "work", "logs"))
    coordinator, address, token = start_coordinator(
        state, logs, "--smtp-url", f"smtp://127.0.0.1:{smtp.server_address[1]}", "--smtp-from", "farm@lab.example")
    processes = [coordinator]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PESC_TOKEN", token)
        try:
            processes.append(start_worker(address, work, logs / "worker.log", slots=2))
            yield {"address": address, "smtp": smtp, "hook": hook, "log": logs / "coordinator.log"}
        finally:
            stop(processes)
            smtp.shutdown()
            hook.shutdown()


def _wait_for(what, check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _notices_of(job_id, farm):
    mails = [mail for mail in farm["smtp"].mails if job_id in mail[1]]
    posts = [post for post in farm["hook"].posts if post[1]["job_id"] == job_id]
    return mails, posts


def test_a_finished_job_sends_one_mail_and_one_post(farm):
    def square(rank):
        return rank * rank

    job = pesc.Farm(coordinator=farm["address"]).map(square, 6, name="squares",
                                                      notify=["mailto:ada@lab.example", farm["hook"].url])
    assert job.wait(progress=False).values == [rank * rank for rank in range(6)]
    _wait_for("the notices", lambda: all(_notices_of(job.id, farm)))
    time.sleep(1.0)  # nothing more comes: one notice per job, not per rank
    mails, posts = _notices_of(job.id, farm)
    assert len(mails) == 1 and len(posts) == 1
    recipients, message = mails[0]
    assert recipients == ["<ada@lab.example>"]
    assert "From: farm@lab.example" in message and "To: ada@lab.example" in message
    assert f"Subject: pesc job squares ({job.id}) finished" in message
    assert "6 succeeded, 0 failed" in message and "Speedup:" in message
    content_type, notice = posts[0]
    assert content_type == "application/json"
    assert notice["outcome"] == "finished" and notice["name"] == "squares"
    assert (notice["ranks"], notice["succeeded"], notice["failed"]) == (6, 6, 0)
    assert notice["wall_ms"] > 0 and notice["speedup"] >= 0


def test_a_cancelled_job_says_cancelled(farm):
    def slow(rank):
        import time
        time.sleep(60)

    job = pesc.Farm(coordinator=farm["address"]).map(slow, 2, notify=farm["hook"].url)
    job.cancel()
    _wait_for("the notice", lambda: _notices_of(job.id, farm)[1])
    notice = _notices_of(job.id, farm)[1][0][1]
    assert notice["outcome"] == "cancelled" and notice["cancelled"] == 2


@pytest.mark.parametrize("target, says", [
    ("ftp://lab.example/x", "neither mailto:ADDR nor an http:// or https:// URL"),
    ("mailto:nobody", "is not mailto:user@host"),
])
def test_a_bad_target_is_refused_at_submit(farm, target, says):
    with pytest.raises(pesc.SubmitError, match=says):
        pesc.Farm(coordinator=farm["address"]).map(abs, 1, notify=target)


def test_mail_needs_a_coordinator_with_smtp():
    with pytest.raises(pesc.SubmitError, match="--smtp-url"):
        pesc.Farm(slots=1).map(abs, 1, notify="mailto:ada@lab.example")


def test_an_unreachable_receiver_is_logged_and_blocks_nothing(farm):
    client = pesc.Farm(coordinator=farm["address"])
    unheard = client.map(abs, 1, notify="http://127.0.0.1:1/nobody-listens")
    unheard.wait(progress=False)
    _wait_for("the failure in the log", lambda: f"the notice of job {unheard.id} to http://127.0.0.1:1/"
              in farm["log"].read_text())
    assert "will retry" in farm["log"].read_text()
    # While it retries, other jobs run and are told as before.
    heard = client.map(abs, 2, notify=farm["hook"].url)
    assert heard.wait(timeout=30, progress=False).values == [0, 1]
    _wait_for("the other job's notice", lambda: _notices_of(heard.id, farm)[1])


def test_a_job_whose_ranks_fail_says_how_many_failed(farm):
    def broken(rank):
        raise ValueError(f"rank {rank} is broken")

    job = pesc.Farm(coordinator=farm["address"]).map(broken, 3, notify=farm["hook"].url)
    with pytest.raises(Exception, match="is broken"):
        job.wait(progress=False).values
    _wait_for("the notice", lambda: _notices_of(job.id, farm)[1])
    notice = _notices_of(job.id, farm)[1][0][1]
    # A rank's exception is the rank's fault: the job runs to its end (fail-fast ends it "failed" only for
    # the job's own fault, such as a process that cannot start).
    assert notice["outcome"] == "finished", notice
    assert (notice["succeeded"], notice["failed"]) == (0, 3), notice
