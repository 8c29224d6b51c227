"""The dashboard in a real browser (headless Chromium driven by Selenium) against a real coordinator started with
--http 127.0.0.1:0 and real workers: log in with a token, submit through the form, watch the job finish live, read a
rank's output, download the job's archive, cancel, see a killed worker turn lost; a second user sees nothing of the
first's; a change without the CSRF token is refused. Screenshots of every page at desktop and phone width go to
PESC_WEB_OUTPUT (default: <build>/test-output/web) for a person to look at.
"""

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("needs chromium and chromedriver (Debian: chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (Debian: python3-selenium)")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The daemons start as in the Python suite; loaded under its own name so this folder needs no conftest of its own.
_spec = importlib.util.spec_from_file_location("pesc_test_daemons", ROOT / "tests" / "python" / "conftest.py")
daemons = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(daemons)

RANKS = 8
PARAMETERS = ["alpha", "two words"]
GREETING = "hello from a shared file"
DESKTOP, PHONE = (1280, 900), (390, 844)

RANK_SCRIPT = """\
import os, time
rank = int(os.environ["PESC_RANK"])
with open(os.path.join(os.environ["PESC_OUTPUT_DIR"], "data.bin"), "wb") as out:
    out.write(bytes([rank % 256]) * (1000 + rank) + b"\\x00\\xff\\r\\n")
with open(os.path.join(os.environ["PESC_APP_DIR"], "greeting.txt")) as shared:
    greeting = shared.read().strip()
time.sleep(0.5)
print(f"{greeting}: rank {rank} squared is {rank * rank}; parameters: {os.environ['PESC_PARAMETERS']}")
"""
SLOW_SCRIPT = "import time\ntime.sleep(120)\n"


def expected_output(rank):
    return f"{GREETING}: rank {rank} squared is {rank * rank}; parameters: {' '.join(PARAMETERS)}\n"


def expected_data(rank):
    return bytes([rank % 256]) * (1000 + rank) + b"\x00\xff\r\n"


# ---------- the farm ----------

def rest(base, method, path, token=None, body=None, headers=None):
    """(status, JSON body) of one /api/v1 call; errors come back too, for the tests that expect them."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for(what, check, seconds=30.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def new_user_token(address, admin, user):
    """A token for a new user, from `pesc user add` beside the daemons."""
    cli = daemons._daemon("PESC_COORDINATOR_BIN", "pesc-coordinator").parent / "pesc"
    made = subprocess.run([cli, "user", "add", user, "--coordinator", address], env=dict(os.environ, PESC_TOKEN=admin),
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A coordinator serving the dashboard on loopback, two 2-slot workers, and user tokens for alice and bob."""
    state, logs = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("logs")
    # A short lease, so that a killed worker turns lost within seconds.
    coordinator, address, admin = daemons.start_coordinator(
        state, logs, "--http", "127.0.0.1:0", "--worker-lease-ms", "3000")
    processes = [coordinator]
    try:
        url = wait_for("the coordinator's http.addr", lambda: (state / "http.addr").exists()
                       and (state / "http.addr").read_text().strip(), 20)
        base = url if url.startswith("http") else "http://" + url
        env = dict(os.environ, PESC_TOKEN=admin)
        for index in range(2):
            processes.append(daemons.start_worker(address, tmp_path_factory.mktemp(f"work{index}"),
                                                  logs / f"worker{index}.log", slots=2, env=env))
        tokens = {user: new_user_token(address, admin, user) for user in ("alice", "bob")}
        wait_for("both workers online", lambda: sum(
            w["state"] == "online" for w in rest(base, "GET", "/workers", admin)[1]["workers"]) == 2)
        yield {"base": base, "address": address, "admin": admin, "tokens": tokens, "logs": logs,
               "processes": processes, "env": env, "tmp": tmp_path_factory}
    finally:
        daemons.stop(processes)


@pytest.fixture(scope="module")
def shots():
    out = Path(os.environ.get("PESC_WEB_OUTPUT") or Path(os.environ.get("PESC_BUILD") or ROOT / "build") / "test-output" / "web")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def no_script_errors(browser):
    """Every test ends with no uncaught error in the page's scripts."""
    browser.get_log("browser")
    yield
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and entry.get("source") in ("javascript", "console-api")]
    assert not errors, errors


# ---------- the browser ----------

def until(driver, what, check, seconds=30):
    def safe(d):
        try:
            return check(d)
        except StaleElementReferenceException:
            return False
    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(safe, f"timed out waiting for {what}")


def find(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css)


def click(driver, css):
    """Clicks `css` in the middle of the screen, clear of the sticky header."""
    def clicked(d):
        element = find(d, css)
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()
        return True
    # A live update may redraw the element between finding and clicking it.
    until(driver, f"a click on {css}", clicked, seconds=10)


def visible(driver, css):
    elements = driver.find_elements(By.CSS_SELECTOR, css)
    return elements[0] if elements and elements[0].is_displayed() else None


def log_in(driver, farm, token):
    driver.get(farm["base"] + "/#/login")
    driver.delete_all_cookies()
    driver.refresh()  # a fresh page: nothing of the last user's session stays in it
    until(driver, "the login form", lambda d: visible(d, "#token")).send_keys(token)
    click(driver, "#login-button")
    until(driver, "the jobs page", lambda d: d.execute_script("return location.hash") == "#/jobs"
          and visible(d, "#jobs"))


def go(driver, farm, route, ready_css):
    driver.get(f"{farm['base']}/#/{route}")
    return until(driver, f"#/{route}", lambda d: visible(d, ready_css))


def screenshot(driver, shots, name):
    """The page at desktop and phone width (a phone's viewport, as a phone shows it), each as tall as its content."""
    def viewport(width, height, mobile):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        time.sleep(0.4)
    for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        viewport(width, height, label == "phone")
        full = driver.execute_script("return document.documentElement.scrollHeight")
        viewport(width, max(height, min(full, 4000)), label == "phone")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(shots / f"{name}-{label}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def submit_through_form(driver, farm, script, repetitions, name, parameters=(), more=None, shared=None):
    go(driver, farm, "submit", "#submit-form")
    find(driver, "#process").send_keys(str(script))
    repetitions_box = find(driver, "#repetitions")
    repetitions_box.clear()
    repetitions_box.send_keys(str(repetitions))
    find(driver, "#domain").send_keys("python")
    find(driver, "#name").send_keys(name)
    if parameters:
        find(driver, "#params").send_keys("\n".join(parameters))
    if shared:
        find(driver, "#shared").send_keys(str(shared))
    if more:
        click(driver, "#submit-form details summary")
        for field, value in more.items():
            find(driver, f"#{field}").send_keys(value)
    click(driver, "#submit-button")
    hash_ = until(driver, "the new job's page", lambda d: (h := d.execute_script("return location.hash")).startswith("#/jobs/") and h,
                  seconds=30)
    until(driver, "the job's progress", lambda d: visible(d, "#job-progress-text"))
    return hash_.split("/")[2]


def downloaded(folder, what):
    """The next finished download in `folder`: a file not there before, once Chromium has renamed it."""
    def fresh():
        done = [p for p in folder.iterdir() if p.name not in DOWNLOADED and not p.name.endswith(".crdownload")]
        return done[0] if done else None
    path = wait_for(what + " in the download dir", fresh, 60)
    wait_for(what + " complete", lambda: not any(p.name.endswith(".crdownload") for p in folder.iterdir()), 60)
    DOWNLOADED.add(path.name)
    return path


DOWNLOADED = set()


def job_state(driver):
    return find(driver, "#job-state .badge").text.strip().lower()


def fetch_in_page(driver, method, path, headers=None):
    """(status, body) of a fetch from the page itself: the session cookie goes along, headers only as given."""
    return driver.execute_async_script("""
        const [method, path, headers, done] = arguments;
        fetch(path, {method, headers, credentials: 'same-origin'})
          .then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));""",
                                       method, path, headers or {})


# ---------- the tests ----------

def test_a_user_submits_watches_reads_and_downloads(farm, browser, shots, downloads, tmp_path):
    driver = browser
    go(driver, farm, "login", "#login-form")
    screenshot(driver, shots, "login")
    log_in(driver, farm, farm["tokens"]["alice"])

    script = tmp_path / "squares.py"
    script.write_text(RANK_SCRIPT)
    greeting = tmp_path / "greeting.txt"
    greeting.write_text(GREETING + "\n")
    job_id = submit_through_form(driver, farm, script, RANKS, "squares from the web", PARAMETERS,
                                 {"memory": "512M", "max_attempts": "2"}, shared=greeting)
    farm["alice_job"] = job_id
    spec = rest(farm["base"], "GET", f"/jobs/{job_id}", farm["tokens"]["alice"])[1]["spec"]
    assert (spec["repetitions"], spec["params"], spec["memory"], spec["max_attempts"], spec["shared"]) == (
        RANKS, PARAMETERS, 512 << 20, 2, ["greeting.txt"])
    # Progress must reach the end through the event stream: the marker would be gone after a reload.
    driver.execute_script("window.pescMarker = 'this page was never reloaded'")
    seen = set()

    def finished(d):
        text = find(d, "#job-progress-text")
        seen.add(int(text.get_attribute("data-done")))
        return int(text.get_attribute("data-done")) == RANKS and job_state(d) == "done"
    until(driver, "every rank done", finished, seconds=120)
    assert driver.execute_script("return window.pescMarker") == "this page was never reloaded"
    until(driver, "the words", lambda d: f"{RANKS} of {RANKS} done" in find(d, "#job-progress-text").text)
    until(driver, "the timeline's bars", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline svg rect[rx]")) >= RANKS)
    until(driver, "the rank table, all done", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#rank-table tr[data-status=done]")) == RANKS)
    until(driver, "the speedup report", lambda d: d.execute_script(
        "const i = document.getElementById('report-svg'); return i && i.complete && i.naturalWidth > 0"))
    screenshot(driver, shots, "job")

    # The rank table filters through the API.
    click(driver, "#rank-states button[data-value=failed]")
    until(driver, "no failed rank", lambda d: "No rank here" in find(d, "#rank-table").text)
    click(driver, "#rank-states button[data-value='']")
    until(driver, "rank 3's row", lambda d: visible(d, "#rank-table tr[data-rank='3']")).click()
    output = until(driver, "rank 3's output", lambda d: expected_output(3).strip() in find(d, "#rank-output").text
                   and find(d, "#rank-output"))
    assert output.text.strip() == expected_output(3).strip()
    assert "data.bin" in find(driver, "#rank-files").text
    screenshot(driver, shots, "rank")
    click(driver, "#download-rank")
    with tarfile.open(downloaded(downloads, "rank 3's archive")) as tar:
        names = {m.name.lstrip("./").split("/")[-1]: m for m in tar.getmembers() if m.isfile()}
        assert tar.extractfile(names["data.bin"]).read() == expected_data(3)
        assert tar.extractfile(names["output.txt"]).read().decode() == expected_output(3)

    go(driver, farm, f"jobs/{job_id}", "#download-job").click()
    with tarfile.open(downloaded(downloads, "the job's archive")) as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        # Whatever folder the archive puts its layout in, it is the `pesc results --out` one below it.
        prefix = next(name[:-len("output.txt")] for name in members if name.endswith("output.txt") and "rank_" not in name)
        read = lambda name: tar.extractfile(members[prefix + name]).read()  # noqa: E731
        assert read("output.txt").decode() == "".join(expected_output(rank) for rank in range(RANKS))
        for rank in range(RANKS):
            assert read(f"rank_{rank}/output.txt").decode() == expected_output(rank)
            assert read(f"rank_{rank}/data.bin") == expected_data(rank)


def test_a_running_job_is_cancelled_from_its_page(farm, browser, shots, tmp_path):
    driver = browser
    log_in(driver, farm, farm["tokens"]["alice"])
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    job_id = submit_through_form(driver, farm, script, 6, "slow one")
    until(driver, "the job running", lambda d: job_state(d) == "running"
          and int(find(d, "#job-progress-text").get_attribute("data-done")) == 0, seconds=60)
    until(driver, "running ranks in the table", lambda d: d.find_elements(By.CSS_SELECTOR, "#rank-table tr[data-status=running]"))
    screenshot(driver, shots, "job-running")
    click(driver, "#cancel-job")
    driver.switch_to.alert.accept()
    until(driver, "the job cancelled", lambda d: job_state(d) == "cancelled", seconds=60)
    until(driver, "no cancel button", lambda d: not visible(d, "#cancel-job"))
    status, job = rest(farm["base"], "GET", f"/jobs/{job_id}", farm["tokens"]["alice"])
    assert status == 200 and job["state"] == "cancelled"

    go(driver, farm, "jobs", "#jobs")
    until(driver, "both jobs listed", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs [data-job-id]")) >= 2)
    screenshot(driver, shots, "jobs")

    go(driver, farm, f"jobs/{job_id}", "#delete-job")
    click(driver, "#delete-job")
    driver.switch_to.alert.accept()
    until(driver, "the jobs page", lambda d: d.execute_script("return location.hash") == "#/jobs")
    assert rest(farm["base"], "GET", f"/jobs/{job_id}", farm["tokens"]["alice"])[0] == 404


def test_the_rank_table_pages_and_filters_through_the_api(farm, browser, tmp_path):
    driver = browser
    log_in(driver, farm, farm["tokens"]["alice"])
    script = tmp_path / "many.py"
    script.write_text("import os\nprint('rank', os.environ['PESC_RANK'])\n")
    submit_through_form(driver, farm, script, 120, "many ranks")
    until(driver, "120 ranks done", lambda d: find(d, "#job-progress-text").get_attribute("data-done") == "120", seconds=180)
    until(driver, "the first page", lambda d: "1–50 of 120" in find(d, "#rank-table .pager").text
          and len(d.find_elements(By.CSS_SELECTOR, "#rank-table tbody tr")) == 50)
    click(driver, "#page-next")
    until(driver, "the second page", lambda d: "51–100 of 120" in find(d, "#rank-table .pager").text)
    until(driver, "ranks 50 to 99 listed", lambda d: [int(row.get_attribute("data-rank")) for row in d.find_elements(
        By.CSS_SELECTOR, "#rank-table tbody tr")] == list(range(50, 100)))
    click(driver, "#rank-states button[data-value=running]")
    until(driver, "no running rank", lambda d: "No rank here" in find(d, "#rank-table").text)
    click(driver, "#rank-states button[data-value=done]")
    until(driver, "the done ranks from the start", lambda d: "1–50 of 120" in find(d, "#rank-table .pager").text)


def test_the_submit_form_shows_the_servers_validation_error(farm, browser, shots, tmp_path):
    driver = browser
    log_in(driver, farm, farm["tokens"]["alice"])
    before = rest(farm["base"], "GET", "/jobs", farm["tokens"]["alice"])[1]["total"]
    script = tmp_path / "any.py"
    script.write_text("print('never runs')\n")
    go(driver, farm, "submit", "#submit-form")
    find(driver, "#process").send_keys(str(script))
    find(driver, "#repetitions").clear()
    find(driver, "#repetitions").send_keys("3")
    find(driver, "#domain").send_keys("no-such-domain-without-entry")
    click(driver, "#submit-button")
    error = until(driver, "the server's error", lambda d: visible(d, "#submit-error"))
    assert error.text.strip()
    assert driver.execute_script("return location.hash") == "#/submit"
    assert rest(farm["base"], "GET", "/jobs", farm["tokens"]["alice"])[1]["total"] == before
    screenshot(driver, shots, "submit-error")


def test_a_second_user_sees_neither_the_jobs_nor_the_outputs_of_the_first(farm, browser, shots):
    driver = browser
    job_id = farm.get("alice_job") or pytest.skip("needs alice's job from the first test")
    log_in(driver, farm, farm["tokens"]["bob"])
    assert not driver.find_elements(By.CSS_SELECTOR, "#jobs [data-job-id]")
    assert "No job yet" in find(driver, "#jobs").text
    screenshot(driver, shots, "jobs-other-user")
    go(driver, farm, f"jobs/{job_id}", "#page-error")
    assert "Not found" in find(driver, "#page-error").text
    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/ranks/3/output", f"/api/v1/jobs/{job_id}/archive"):
        status, body = fetch_in_page(driver, "GET", path)
        assert status == 404, (path, status, body)
        assert "squared" not in body
    go(driver, farm, f"jobs/{job_id}", "#page-error")
    screenshot(driver, shots, "job-not-yours")


def test_a_change_without_the_csrf_token_is_refused(farm, browser):
    driver = browser
    log_in(driver, farm, farm["tokens"]["alice"])
    status, made = rest(farm["base"], "GET", "/jobs?state=done", farm["tokens"]["alice"])
    job_id = made["jobs"][0]["id"]
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        status, body = fetch_in_page(driver, "POST", f"/api/v1/jobs/{job_id}/cancel", headers)
        assert status == 403, (headers, status, body)
        assert "csrf" in json.loads(body)["error"].lower()
        status, body = fetch_in_page(driver, "POST", "/api/v1/logout", headers)
        assert status == 403, (headers, status, body)
    # The session is still there, and the page's own requests carry the token.
    assert fetch_in_page(driver, "GET", "/api/v1/me")[0] == 200


def test_the_farm_page_shows_a_killed_worker_turn_lost(farm, browser, shots):
    driver = browser
    log_in(driver, farm, farm["tokens"]["alice"])
    doomed = daemons.start_worker(farm["address"], farm["tmp"].mktemp("doomed"), farm["logs"] / "doomed.log",
                                  slots=1, env=farm["env"])
    farm["processes"].append(doomed)
    go(driver, farm, f"farm?job={farm['alice_job']}" if "alice_job" in farm else "farm", "#workers")
    until(driver, "three online workers", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#workers [data-state=online]")) == 3, seconds=30)
    driver.execute_script("window.pescMarker = 'farm page kept'")
    until(driver, "the distribution map", lambda d: d.find_elements(By.CSS_SELECTOR, "#distribution .dist-row"))
    screenshot(driver, shots, "farm")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    until(driver, "a lost worker", lambda d: d.find_elements(By.CSS_SELECTOR, "#workers [data-state=lost]"), seconds=60)
    assert driver.execute_script("return window.pescMarker") == "farm page kept"
    screenshot(driver, shots, "farm-lost")


def test_the_admin_page_issues_a_token_that_logs_in(farm, browser, shots):
    driver = browser
    log_in(driver, farm, farm["admin"])
    go(driver, farm, "admin", "#admin-users table")
    find(driver, "#new-user").send_keys("carol")
    click(driver, "#add-user button")
    token = until(driver, "carol's token", lambda d: visible(d, "#new-token-value")).text.strip()
    until(driver, "carol in the list", lambda d: visible(d, "#admin-users tr[data-name=carol]"))
    find(driver, "#room-name").send_keys("public")
    find(driver, "#room-users").send_keys("alice, carol")
    click(driver, "#restrict-room button")
    until(driver, "the restricted room", lambda d: "only alice, carol" in find(d, "#admin-rooms [data-room=public]").text)
    screenshot(driver, shots, "admin")
    click(driver, "#admin-rooms [data-room=public] button")
    until(driver, "the room open again", lambda d: "open to everyone" in find(d, "#admin-rooms [data-room=public]").text)
    assert rest(farm["base"], "GET", "/me", token)[1]["user"] == "carol"
    log_in(driver, farm, token)
    assert "carol" in find(driver, "#who-name").text
    go(driver, farm, "submit", "#submit-form")
    screenshot(driver, shots, "submit")
