"""Drives hookrouter's dashboard in headless Chromium, for tests/browser.rs.

    dashboard_browser.py <base url> <scenario> '<json params>'

Uses Debian's chromium (never a downloaded browser) through Playwright. Prints one JSON object
per line on stdout: {"step": name, ...} at each checkpoint, {"done": true, ...} at the end, or
{"error": "..."} before exiting with status 1. Where a scenario needs the test to do something
(make a receiver fail, publish events, restart the service) it prints its step and waits for one
JSON line on stdin. Every scenario records every request the page makes and every console
error, and returns them with its figures, so the test can check that nothing went to another
host and nothing broke.
"""

import json
import shutil
import sys
import time
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

TIMEOUT_MS = 15_000


def say(**fields):
    print(json.dumps(fields), flush=True)


def hear():
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("the test closed the script's input")
    return json.loads(line)


def ms_since(start):
    return round((time.monotonic() - start) * 1000, 1)


class Session:
    """One page of the dashboard, with what it requested and what it logged."""

    # Before any script runs: count main-thread tasks over 50 ms (the page "stalling").
    LONG_TASKS = """
        window.__longTasks = [];
        try {
          new PerformanceObserver((list) => {
            for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
          }).observe({ type: 'longtask', buffered: true });
        } catch (e) {}
    """

    def __init__(self, playwright, base, viewport=(1280, 860)):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            raise RuntimeError("Debian's chromium is not installed (scripts/test installs it with apt)")
        self.base = base
        self.browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        self.context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.requests = []
        self.console_errors = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        self.page.add_init_script(self.LONG_TASKS)

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append(message.text)

    def open(self):
        start = time.monotonic()
        self.page.goto(f"{self.base}/dashboard")
        return start

    def wait_rows(self, count=None):
        """Waits for the table to show rows (exactly `count` when given)."""
        if count is None:
            self.page.wait_for_function("() => document.querySelectorAll('#rows tr[data-id]').length > 0")
        else:
            self.page.wait_for_function(
                "n => document.querySelectorAll('#rows tr[data-id]').length === n", arg=count
            )

    def row_state(self, webhook):
        return self.page.get_attribute(f'#rows tr[data-id="{webhook}"]', "data-state")

    def wait_row(self, webhook, condition, timeout=TIMEOUT_MS):
        """Waits until the row of `webhook` satisfies a JS condition on `row` (a <tr>)."""
        self.page.wait_for_function(
            f"""id => {{
                const row = document.querySelector(`#rows tr[data-id="${{id}}"]`);
                return Boolean(row) && ({condition});
            }}""",
            arg=webhook,
            timeout=timeout,
        )

    def cell(self, webhook, label):
        return self.page.text_content(f'#rows tr[data-id="{webhook}"] td[data-label="{label}"]').strip()

    def open_detail(self, webhook):
        self.page.click(f'#rows tr[data-id="{webhook}"] button.link')
        self.page.wait_for_selector("#detail:not([hidden])")
        self.page.wait_for_function("() => document.querySelector('#detail').dataset.state")

    def report(self, **figures):
        hosts = sorted({urlparse(url).netloc for url in self.requests if not url.startswith("data:")})
        say(
            done=True,
            hosts=hosts,
            requests=len(self.requests),
            request_urls=self.requests[-200:],
            console_errors=self.console_errors,
            long_tasks=self.page.evaluate("window.__longTasks || []"),
            **figures,
        )

    def close(self):
        self.browser.close()


def live_states(session, params):
    """The page loads; a webhook whose receiver starts failing turns failing/retrying."""
    start = session.open()
    session.wait_rows(params["webhooks"])
    loaded = ms_since(start)
    session.page.wait_for_selector('#connection[data-state="live"]')
    live = ms_since(start)
    states = session.page.eval_on_selector_all("#rows tr[data-id]", "rows => rows.map(r => r.dataset.state)")
    say(step="loaded", loaded_ms=loaded, live_ms=live, states=states)
    hear()  # the receiver fails from now on, and an event is on its way
    go = time.monotonic()
    session.wait_row(params["watch"], "['failing', 'retrying'].includes(row.dataset.state)", timeout=5_000)
    turned = ms_since(go)
    state = session.row_state(params["watch"])
    error = session.cell(params["watch"], "Last error")
    session.report(turned_ms=turned, state=state, last_error=error)


def pause_resume(session, params):
    """Pause shows paused and deliveries stop; Resume drains the backlog."""
    webhook = params["webhook"]
    session.open()
    session.wait_rows()
    session.open_detail(webhook)
    clicked = time.monotonic()
    session.page.get_by_role("button", name="Pause", exact=True).click()
    session.wait_row(webhook, "row.dataset.state === 'paused'")
    session.page.wait_for_function("() => document.querySelector('#detail').dataset.state === 'paused'")
    paused_ms = ms_since(clicked)
    resume_visible = session.page.is_visible("#act-resume")
    say(step="paused", paused_ms=paused_ms)
    queued = hear()["queued"]
    session.wait_row(webhook, f"row.querySelector('td[data-label=\"Backlog\"]').textContent.trim() === '{queued}'")
    backlog_while_paused = session.cell(webhook, "Backlog")
    clicked = time.monotonic()
    session.page.get_by_role("button", name="Resume", exact=True).click()
    session.wait_row(
        webhook,
        "row.dataset.state === 'healthy' && row.querySelector('td[data-label=\"Backlog\"]').textContent.trim() === '0'",
    )
    drained_ms = ms_since(clicked)
    session.report(
        resume_visible=resume_visible,
        backlog_while_paused=backlog_while_paused,
        drained_ms=drained_ms,
        delivered_5min=session.cell(webhook, "Delivered 5 min"),
    )


def replay(session, params):
    """The detail panel lists dead letters; Replay all empties the list."""
    webhook = params["webhook"]
    session.open()
    session.wait_rows()
    session.open_detail(webhook)
    session.page.wait_for_function(
        "n => document.querySelectorAll('#dead tbody tr').length === n", arg=params["dead"]
    )
    listed = session.page.eval_on_selector_all("#dead tbody tr code", "codes => codes.map(c => c.textContent)")
    attempts = session.page.eval_on_selector_all(
        "#attempts tbody tr", "rows => rows.map(r => r.dataset.outcome)"
    )
    clicked = time.monotonic()
    session.page.get_by_role("button", name="Replay all").click()
    session.page.wait_for_selector("#dead-empty:not([hidden])")
    emptied_ms = ms_since(clicked)
    status = session.page.text_content("#detail-status")
    session.report(listed=listed, attempt_outcomes=attempts, emptied_ms=emptied_ms, status=status)


def replay_since(session, params):
    """"Replay since…" starts a replay from the panel; it shows as running, then done."""
    webhook = params["webhook"]
    session.open()
    session.wait_rows()
    session.open_detail(webhook)
    session.page.fill("#replay-since", params["since"])
    clicked = time.monotonic()
    session.page.get_by_role("button", name="Replay since").click()
    session.page.wait_for_selector("#replays tbody tr[data-state]")
    shown_ms = ms_since(clicked)
    first_state = session.page.get_attribute("#replays tbody tr", "data-state")
    session.page.wait_for_selector('#replays tbody tr[data-state="done"]', timeout=TIMEOUT_MS)
    done_ms = ms_since(clicked)
    cells = session.page.eval_on_selector_all(
        "#replays tbody tr td", "cells => cells.map(c => c.textContent.trim())"
    )
    session.report(
        shown_ms=shown_ms,
        done_ms=done_ms,
        first_state=first_state,
        cells=cells,
        status=session.page.text_content("#detail-status"),
        title=session.page.text_content("#replays-title"),
    )


def actions(session, params):
    """Retry now probes a failing webhook at once; Enable brings back a disabled one."""
    session.open()
    session.wait_rows()
    figures = {}
    for webhook, button, before in ((params["retry"], "Retry now", "failing"), (params["enable"], "Enable", "disabled")):
        session.wait_row(webhook, f"row.dataset.state === '{before}'")
        session.open_detail(webhook)
        session.page.wait_for_function(
            "s => document.querySelector('#detail').dataset.state === s", arg=before
        )
        clicked = time.monotonic()
        session.page.get_by_role("button", name=button, exact=True).click()
        session.wait_row(
            webhook,
            "row.dataset.state === 'healthy' && row.querySelector('td[data-label=\"Backlog\"]').textContent.trim() === '0'",
        )
        figures[button] = ms_since(clicked)
        session.page.get_by_role("button", name="Close").click()
    session.report(healed_ms=figures)


def tokens(session, params):
    """With access tokens: a token form, no data until a valid token is given."""
    data_answers = []
    session.page.on(
        "response",
        lambda r: data_answers.append((r.url, r.status)) if "/dashboard/webhooks" in r.url else None,
    )
    session.open()
    session.page.wait_for_selector("#signin:not([hidden])")
    session.page.wait_for_timeout(700)  # nothing arrives later either
    before = {
        "board_hidden": session.page.is_hidden("#board"),
        "rows": session.page.eval_on_selector_all("#rows tr", "rows => rows.length"),
        "text_has_urls": "127.0.0.1:" in session.page.inner_text("body"),
        "answers": list(data_answers),
    }
    session.page.fill("#token", "not-the-token-at-all")
    session.page.get_by_role("button", name="Show the dashboard").click()
    session.page.wait_for_selector("#signin-error:not([hidden])")
    wrong = {
        "error": session.page.text_content("#signin-error"),
        "rows": session.page.eval_on_selector_all("#rows tr", "rows => rows.length"),
        "board_hidden": session.page.is_hidden("#board"),
    }
    session.page.fill("#token", params["token"])
    session.page.get_by_role("button", name="Show the dashboard").click()
    session.wait_rows(params["webhooks"])
    session.page.wait_for_selector('#connection[data-state="live"]')
    stored = session.page.evaluate("sessionStorage.getItem('hookrouter.accessToken')")
    session.report(before=before, wrong=wrong, stored_token_matches=stored == params["token"])


def many(session, params):
    """1,000 webhooks: the page shows 50, filters and pages without stalling."""
    start = session.open()
    session.wait_rows(50)
    first_rows_ms = ms_since(start)
    caption = session.page.text_content("#caption")

    def timed_filter(selector, value, done_condition, arg=None):
        """Types a filter and times it until the table shows the answer."""
        began = time.monotonic()
        if selector.startswith("select"):
            session.page.select_option(selector, value)
        else:
            session.page.fill(selector, value)
        session.page.wait_for_function(done_condition, arg=arg)
        return ms_since(began)

    def server_ms(fragment):
        """How long the service took to answer the last view request containing `fragment`."""
        return session.page.evaluate(
            """fragment => {
                const entries = performance.getEntriesByType('resource')
                    .filter(e => e.name.includes('/dashboard/webhooks?') && e.name.includes(fragment));
                const last = entries[entries.length - 1];
                return last ? Math.round((last.responseEnd - last.requestStart) * 10) / 10 : null;
            }""",
            fragment,
        )

    target = params["search"]
    text_ms = timed_filter(
        "#f-q",
        target,
        """t => {
            const rows = [...document.querySelectorAll('#rows tr[data-id]')];
            return rows.length === 1 && rows[0].querySelector('button.link').textContent.includes(t);
        }""",
        arg=target,
    )
    text_server_ms = server_ms("q=")
    session.page.fill("#f-q", "")
    session.wait_rows(50)
    user_ms = timed_filter(
        "#f-user",
        params["user"],
        """([user, n]) => {
            const cells = [...document.querySelectorAll('#rows tr[data-id] td[data-label="User"]')];
            return cells.length === n && cells.every(c => c.textContent === user);
        }""",
        arg=[params["user"], params["per_user"]],
    )
    user_server_ms = server_ms("user=")
    session.page.fill("#f-user", "")
    session.wait_rows(50)
    state_ms = timed_filter(
        "select#f-state",
        "paused",
        """n => {
            const rows = [...document.querySelectorAll('#rows tr[data-id]')];
            return rows.length === n && rows.every(r => r.dataset.state === 'paused');
        }""",
        arg=params["paused"],
    )
    session.page.select_option("select#f-state", "")
    session.wait_rows(50)
    first_page = session.page.eval_on_selector_all("#rows tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    began = time.monotonic()
    session.page.get_by_role("button", name="Next", exact=True).click()
    session.page.wait_for_function(
        "first => { const r = document.querySelector('#rows tr[data-id]'); return r && r.dataset.id !== first; }",
        arg=first_page[0],
    )
    next_ms = ms_since(began)
    second_page = session.page.eval_on_selector_all("#rows tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    page_info = session.page.text_content("#page-info")
    # A few live updates of 50 rows while idle, to catch slow renders.
    session.page.wait_for_timeout(1500)
    session.report(
        first_rows_ms=first_rows_ms,
        caption=caption,
        text_ms=text_ms,
        text_server_ms=text_server_ms,
        user_ms=user_ms,
        user_server_ms=user_server_ms,
        state_ms=state_ms,
        next_ms=next_ms,
        page_info=page_info,
        overlap=len(set(first_page) & set(second_page)),
        second_page_rows=len(second_page),
    )


def restart(session, params):
    """The service stops and starts again: the page says reconnecting, then is live again."""
    session.open()
    session.wait_rows(params["webhooks"])
    session.page.wait_for_selector('#connection[data-state="live"]')
    say(step="live")
    hear()  # stopping now
    stopped = time.monotonic()
    session.page.wait_for_selector('#connection[data-state="reconnecting"]')
    noticed_ms = ms_since(stopped)
    say(step="reconnecting", noticed_ms=noticed_ms, text=session.page.text_content("#connection"))
    hear()  # started again
    started = time.monotonic()
    session.page.wait_for_selector('#connection[data-state="live"]', timeout=20_000)
    back_ms = ms_since(started)
    session.wait_rows(params["webhooks"])
    session.report(noticed_ms=noticed_ms, back_ms=back_ms)


def screenshot(session, params):
    """A realistic state with a detail panel open, saved as a PNG."""
    session.open()
    session.wait_rows(params["webhooks"])
    for state in ("failing", "retrying", "paused", "disabled"):
        session.page.wait_for_selector(f'#rows tr[data-state="{state}"]')
    session.open_detail(params["open"])
    session.page.wait_for_selector("#attempts tbody tr")
    session.page.wait_for_selector("#dead tbody tr")
    session.page.wait_for_timeout(600)
    session.page.screenshot(path=params["path"])
    states = session.page.eval_on_selector_all("#rows tr[data-id]", "rows => rows.map(r => r.dataset.state)")
    session.report(states=states)


SCENARIOS = {
    "live_states": live_states,
    "pause_resume": pause_resume,
    "replay": replay,
    "actions": actions,
    "replay_since": replay_since,
    "tokens": tokens,
    "many": many,
    "restart": restart,
    "screenshot": screenshot,
}


def main():
    base, scenario, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    viewport = tuple(params.get("viewport", (1280, 860)))
    with sync_playwright() as playwright:
        session = Session(playwright, base, viewport)
        try:
            SCENARIOS[scenario](session, params)
        finally:
            session.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # reported to the test, which fails with it
        say(error=f"{type(error).__name__}: {error}")
        sys.exit(1)
