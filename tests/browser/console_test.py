"""The web console in a real headless Chromium (Debian's, driven by
Playwright), against the real server binary.

Run by tests/tests/console_browser.rs:

    python console_test.py --server BINARY --wsgi-port P --websocket-port Q \
        --artifacts DIR [--chromium /usr/bin/chromium]

Each check prints `ok` or `FAILED` with the reason; the exit status is the
number of failures. Screenshots land in the artifacts directory.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid

from playwright.sync_api import sync_playwright

PROJECT = "console-tests"
CLIENT_ID = str(uuid.uuid4())


class Server:
    """zaqar-server on fixed ports with its own data directory, so a restart
    comes back where the page expects it, with the same messages."""

    def __init__(self, binary, wsgi_port, websocket_port):
        self.binary = os.path.abspath(binary)
        self.wsgi_port = wsgi_port
        self.websocket_port = websocket_port
        self.dir = tempfile.TemporaryDirectory(prefix="zaqar-console-")
        self.process = None
        self.log = open(os.path.join(self.dir.name, "server.log"), "ab")
        data = json.dumps(os.path.join(self.dir.name, "data"))
        transports = '["wsgi", "websocket"]' if websocket_port else '["wsgi"]'
        text = f"""
[server]
log_level = "info"

[drivers]
transports = {transports}

[drivers.transport.wsgi]
bind = "127.0.0.1"
port = {wsgi_port}

[drivers.message_store]
name = "embedded"
[drivers.message_store.embedded]
path = {data}
[drivers.management_store]
name = "embedded"
[drivers.management_store.embedded]
path = {data}
"""
        if websocket_port:
            text += f"""
[drivers.transport.websocket]
bind = "127.0.0.1"
port = {websocket_port}
"""
        self.config = os.path.join(self.dir.name, "zaqar.toml")
        with open(self.config, "w") as f:
            f.write(text)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.wsgi_port}"

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZAQAR_") and k != "RUST_LOG"}
        self.process = subprocess.Popen(
            [self.binary, "--config", self.config],
            cwd=self.dir.name,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        expected = 2 if self.websocket_port else 1
        listening = 0
        deadline = time.monotonic() + 60
        while listening < expected:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"zaqar-server exited during start-up:\n{self.server_log()}")
            if line.startswith("zaqar-server: transport ") and " listening on " in line:
                listening += 1
            if time.monotonic() > deadline:
                raise RuntimeError("zaqar-server did not start within 60 s")

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def server_log(self):
        with open(os.path.join(self.dir.name, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def post(self, queue, bodies):
        """Posts bodies over HTTP, as any other client would."""
        request = urllib.request.Request(
            f"{self.url}/v2/queues/{queue}/messages",
            method="POST",
            data=json.dumps({"messages": [{"body": b, "ttl": 300} for b in bodies]}).encode(),
            headers={
                "Client-ID": CLIENT_ID,
                "X-Project-ID": PROJECT,
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201, response.status

    def close(self):
        self.kill()
        self.log.close()
        self.dir.cleanup()


def wait_until(page, expression, timeout):
    """Polls `expression` in the page until it is truthy. (Playwright's
    wait_for_function polls with eval, which the console's content security
    policy forbids; page.evaluate is not affected.)"""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} ms waiting for {expression}")
        time.sleep(0.02)


class Page:
    """The console in a fresh browser context, recording console errors."""

    def __init__(self, browser, server):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.server = server

    def open_project(self, queue):
        page = self.page
        page.goto(f"{self.server.url}/ui/")
        page.fill("#project", PROJECT)
        page.click("#connect")
        page.wait_for_selector("#workspace:not([hidden])")
        page.fill("#tail-queue", queue)
        page.click("#tail-start")

    def wait_open(self, transport, timeout=15000):
        try:
            self.page.wait_for_selector(
                f'#connection[data-state="open"][data-transport="{transport}"]', timeout=timeout
            )
        except Exception:
            state = self.page.eval_on_selector(
                "#connection", "c => [c.dataset.state, c.dataset.transport, c.textContent]"
            )
            print(f"  connection (state, transport, text) when the wait ended: {state}")
            raise

    def tail_bodies(self):
        """Each tailed message as (seq, body), oldest first."""
        items = self.page.eval_on_selector_all(
            "#tail li[data-seq]",
            "items => items.map(li => [Number(li.dataset.seq), li.querySelector('pre').textContent])",
        )
        return [(seq, json.loads(body)) for seq, body in reversed(items)]

    def wait_tail_count(self, count, timeout):
        wait_until(
            self.page, f"document.querySelectorAll('#tail li[data-seq]').length >= {count}", timeout
        )

    def screenshot(self, artifacts, name):
        path = os.path.join(artifacts, name)
        self.page.screenshot(path=path, full_page=True)
        return path

    def close(self):
        self.context.close()


def check_live_tail_and_restart(browser, args):
    """Loads cleanly, tails live within a second, escapes content, keeps the
    project, and resumes exactly once across a server restart."""
    server = Server(args.server, args.wsgi_port, args.websocket_port)
    server.start()
    view = Page(browser, server)
    try:
        queue = "deploys"
        view.open_project(queue)
        view.wait_open("websocket")
        assert not view.errors, f"console errors while loading: {view.errors}"
        text = view.page.text_content("#transport")
        assert text == "websocket", f"transport shown as {text!r}"

        # A message posted over HTTP appears in the tail within a second.
        started = time.monotonic()
        server.post(queue, [{"n": 1, "kind": "deploy"}])
        view.wait_tail_count(1, timeout=1000)
        print(f"  live tail: {1000 * (time.monotonic() - started):.0f} ms after the post")

        # Message content is text, never markup.
        hostile = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>"
        server.post(queue, [{"n": 2, "html": hostile}])
        view.wait_tail_count(2, timeout=2000)
        assert view.page.evaluate("window.__xss === undefined"), "message content ran as code"
        assert view.page.query_selector("#tail img") is None, "message content became markup"
        assert hostile in view.page.text_content("#tail"), "the content is shown as text"

        # The queue list shows it with its stats.
        view.page.click("#queues-refresh")
        view.page.wait_for_selector(f'#queues tr[data-queue="{queue}"]')
        total = view.page.text_content(f'#queues tr[data-queue="{queue}"] td:nth-child(4)')
        assert total == "2", f"total shown as {total!r}"
        view.screenshot(args.artifacts, "console-live-tail.png")

        # The server goes away and comes back on the same data; messages
        # posted before the page reconnects arrive once, in order.
        server.kill()
        view.page.wait_for_selector('#connection:not([data-state="open"])', timeout=10000)
        view.screenshot(args.artifacts, "console-reconnecting.png")
        server.start()
        server.post(queue, [{"n": 3}, {"n": 4}, {"n": 5}])
        view.wait_open("websocket", timeout=20000)
        view.wait_tail_count(5, timeout=10000)
        server.post(queue, [{"n": 6}])
        view.wait_tail_count(6, timeout=2000)
        time.sleep(0.5)
        messages = view.tail_bodies()
        numbers = [body["n"] for _, body in messages]
        assert numbers == [1, 2, 3, 4, 5, 6], f"tail after the restart: {numbers}"
        seqs = [seq for seq, _ in messages]
        assert seqs == sorted(set(seqs)), f"seqs not unique and ordered: {seqs}"
        view.screenshot(args.artifacts, "console-after-restart.png")

        # The project is remembered: a reload opens it without asking.
        view.page.reload()
        view.wait_open("websocket")
        assert view.page.input_value("#project") == PROJECT
        view.wait_tail_count(6, timeout=5000)
    except Exception:
        print(server.server_log())
        raise
    finally:
        view.close()
        server.close()


def check_claim_and_delete(browser, args):
    """Claims from the tailed queue and deletes a claimed message."""
    server = Server(args.server, args.wsgi_port, args.websocket_port)
    server.start()
    view = Page(browser, server)
    try:
        queue = "work"
        server.post(queue, [{"job": i} for i in range(3)])
        view.open_project(queue)
        view.wait_open("websocket")
        view.wait_tail_count(3, timeout=5000)
        view.page.fill("#claim-limit", "2")
        view.page.click("#claim")
        wait_until(view.page, "document.querySelectorAll('#claimed li[data-id]').length === 2", 5000)
        view.page.click("#claimed li[data-id] button.danger")
        wait_until(view.page, "document.querySelectorAll('#claimed li[data-id]').length === 1", 5000)
        view.page.click("#queues-refresh")
        wait_until(
            view.page,
            f"""(() => {{
                const row = document.querySelector('#queues tr[data-queue="{queue}"]');
                return row && row.cells[3].textContent === '2' && row.cells[2].textContent === '1';
            }})()""",
            5000,
        )
        view.screenshot(args.artifacts, "console-claims.png")
        view.page.click("#claim-release")
        view.page.wait_for_selector("#claim-release[disabled]")
        assert not view.errors, f"console errors: {view.errors}"
    finally:
        view.close()
        server.close()


def check_sse_fallback(browser, args):
    """Without the websocket transport the page streams over SSE."""
    server = Server(args.server, args.wsgi_port, None)
    server.start()
    view = Page(browser, server)
    try:
        queue = "fallback"
        with urllib.request.urlopen(f"{server.url}/ui/config.json", timeout=10) as response:
            config = json.load(response)
        assert config == {"websocket_url": None}, config
        view.open_project(queue)
        view.wait_open("sse")
        started = time.monotonic()
        server.post(queue, [{"via": "sse"}])
        view.wait_tail_count(1, timeout=2000)
        print(f"  SSE tail: {1000 * (time.monotonic() - started):.0f} ms after the post")
        assert view.page.text_content("#transport") == "sse"
        assert not view.errors, f"console errors: {view.errors}"
        view.screenshot(args.artifacts, "console-sse.png")
    finally:
        view.close()
        server.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--wsgi-port", type=int, required=True)
    parser.add_argument("--websocket-port", type=int, required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    failures = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for check in (check_live_tail_and_restart, check_claim_and_delete, check_sse_fallback):
            try:
                check(browser, args)
                print(f"ok {check.__name__}")
            except Exception:
                failures += 1
                print(f"FAILED {check.__name__}")
                traceback.print_exc(file=sys.stdout)
        browser.close()
    sys.exit(failures)


if __name__ == "__main__":
    main()
