"""The chat page at / in Debian's Chromium, driven by Playwright: streaming over /v1/ws,
Stop, a reasoning model's thinking folded above its answer, past chats stored on the
server, the key prompt, phone width, readable errors, and model and stored text that stays
text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from hearth.core.errors import Overloaded
from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.ws_client import running
from tests.engine.tiny_reasoner import ANSWER, REASONING

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
LONG = "Write a very long story about a dragon and a knight."  # greedy: 1000+ tokens
TOKEN_KEY = "sk-browser-token-1"  # a valid subprotocol token: sent as bearer.<key>
FRAME_KEY = "sk-browser/slash=1"  # not a token: sent in an auth frame
XSS = (
    "Look: <img src=x onerror=\"window.__pwned='img'\"> and "
    "<script>window.__pwned='script'</script> and [click](javascript:window.__pwned=1) "
    "and **bold** done."
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: while the sync API runs, its event loop counts as running in this
    # thread, which the asyncio tests of other modules must not find.
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageErrors(list[str]):
    """Uncaught page errors and console errors, which a clean page has none of."""


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    contexts = []

    def open_(
        server: LiveServer, viewport: dict[str, int] = DESKTOP, *, bypass_csp: bool = False
    ) -> tuple[Page, PageErrors]:
        context = browser.new_context(viewport=viewport, bypass_csp=bypass_csp)
        contexts.append(context)
        page = context.new_page()
        errors = PageErrors()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/")
        return page, errors

    yield open_
    for context in contexts:
        context.close()


def models_loaded(page: Page) -> None:
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")


def set_setting(page: Page, name: str, value: str) -> None:
    page.locator(f"#{name}").fill(value)


def ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_reply(page: Page) -> Any:
    return page.locator(".msg.assistant").last


def wait_done(page: Page, timeout: float = 60_000) -> str:
    reply = last_reply(page)
    reply.locator(".stats:not(:empty), .error-note").first.wait_for(timeout=timeout)
    return reply.inner_text()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("keyed"), api_keys=[TOKEN_KEY, FRAME_KEY], parallel=2
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    class Busy(FakeBackend):
        async def start(self, request):  # type: ignore[no-untyped-def]
            raise Overloaded("The engine's queue is full.", retry_after=2)

    # Room for the page's default max_tokens (512) next to the prompt.
    registry = registry_of(
        FakeBackend("scripted", XSS, context_length=4096, token_delay=0.01),
        Busy("busy"),
        FakeBackend("doomed", context_length=4096),
    )
    server = LiveServer(make_settings(tmp_path_factory.mktemp("scripted")), registry).start()
    yield server
    server.stop()


def test_root_serves_the_page_to_browsers_only(live_server: LiveServer) -> None:
    page = httpx.get(live_server.url + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["vary"] == "Accept"
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        probe = httpx.get(live_server.url + "/", headers=headers)
        assert probe.text == "Ollama is running" and probe.headers["vary"] == "Accept"
    head = httpx.head(live_server.url + "/", headers={"Accept": "text/html"})
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/plain")
    script = httpx.get(live_server.url + "/ui/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(live_server.url + "/ui/nope.js").status_code == 404


def test_chat_streams_and_stop_frees_the_slot(
    live_server: LiveServer, open_page: Any, tmp_path: Path
) -> None:
    page, errors = open_page(live_server)
    models_loaded(page)
    assert page.locator("#model").input_value() == MODEL
    set_setting(page, "temperature", "0")
    set_setting(page, "max_tokens", "1000")
    # Count the distinct states the reply passes through while it streams.
    page.evaluate(
        """() => {
        window.__states = new Set();
        new MutationObserver(() => {
          const body = [...document.querySelectorAll('.msg.assistant .body')].pop();
          if (body) window.__states.add(body.textContent.length);
        }).observe(document.querySelector('#messages'),
                   {subtree: true, childList: true, characterData: true});
      }"""
    )
    ask(page, LONG)
    assert page.locator(".msg.user .body").last.inner_text() == LONG
    page.wait_for_function("() => window.__states.size >= 5")  # token by token, not all at once
    assert page.locator("#send").inner_text() == "Stop"
    assert last_reply(page).locator("details.reasoning").is_hidden()  # SmolLM2 does not think
    assert running(live_server) == 1
    page.screenshot(path=str(tmp_path / "streaming.png"))
    page.click("#send")
    text = wait_done(page)
    assert "Stopped" in last_reply(page).locator(".stats").inner_text()
    assert page.locator("#send").inner_text() == "Send"
    with httpx.Client() as client:
        deadline = time.monotonic() + 1.0
        while running(live_server, client) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running(live_server, client) == 0
    body = last_reply(page).locator(".body").inner_text()
    time.sleep(0.3)
    assert last_reply(page).locator(".body").inner_text() == body  # it stopped growing
    assert len(text) > 20
    # A next turn carries the first (the stopped reply included) and completes.
    set_setting(page, "max_tokens", "12")
    ask(page, "Thanks! Now one word about the dragon.")
    stats = wait_done(page).splitlines()[-1]
    assert "tok/s" in stats and "cached" in stats and "cut at max tokens" in stats
    assert len(page.locator(".msg.assistant").all()) == 2
    assert page.locator(".msg.assistant details.reasoning:not([hidden])").count() == 0
    page.screenshot(path=str(tmp_path / "desktop.png"))
    assert errors == []


# The think family (Qwen3's template) and the bracket family (Ministral 3 Reasoning's).
@pytest.mark.parametrize("model", ["reasoner", "ministral"])
def test_thinking_folds_above_the_answer(
    reasoning_server: LiveServer, open_page: Any, tmp_path: Path, model: str
) -> None:
    page, errors = open_page(reasoning_server)
    models_loaded(page)
    page.select_option("#model", model)
    set_setting(page, "temperature", "0")
    ask(page, "hi")
    assert "tokens" in wait_done(page)
    reply = page.locator(".msg.assistant").first  # the first turn's, also after the next
    thinking, answer = reply.locator("details.reasoning"), reply.locator(".body")
    thought = thinking.locator(".reasoning-text")
    assert thinking.is_visible() and thinking.locator("summary").inner_text() == "Thinking"
    assert not thinking.evaluate("d => d.open") and thought.is_hidden()  # folded
    assert thought.text_content() == REASONING
    assert answer.inner_text() == ANSWER  # the answer alone: no markers, no thinking
    above, below = thinking.bounding_box(), answer.bounding_box()
    assert above is not None and below is not None
    assert above["y"] + above["height"] <= below["y"]
    page.screenshot(path=str(tmp_path / "thinking-folded.png"))
    thinking.locator("summary").click()
    thought.wait_for(state="visible")
    assert thinking.evaluate("d => d.open") and thought.inner_text() == REASONING
    page.screenshot(path=str(tmp_path / "thinking-open.png"))
    # A next turn folds its own thinking; the first stays as it was.
    ask(page, "And again?")
    assert "tokens" in wait_done(page)
    second = last_reply(page).locator("details.reasoning")
    assert second.is_visible() and not second.evaluate("d => d.open")
    assert second.locator(".reasoning-text").text_content() == REASONING
    assert last_reply(page).locator(".body").inner_text() == ANSWER
    assert thinking.evaluate("d => d.open")
    # The server stores the answers alone, so a reopened chat has no thinking to fold.
    conversation_id = page.locator("#history .history-row.active").get_attribute("data-id")
    stored = stored_items(reasoning_server, str(conversation_id))
    assert [(i["type"], i["role"]) for i in stored] == [
        ("message", "user"),
        ("message", "assistant"),
    ] * 2
    assert stored[1]["content"][0]["text"] == ANSWER
    page.reload()
    models_loaded(page)
    page.locator(f'#history .history-row[data-id="{conversation_id}"] .history-open').click()
    reopened = page.locator(".msg.assistant")
    reopened.nth(1).wait_for()
    assert reopened.locator(".body").all_inner_texts() == [ANSWER, ANSWER]
    assert reopened.locator("details.reasoning").count() == 2
    assert reopened.locator("details.reasoning:not([hidden])").count() == 0  # no empty fold
    assert errors == []


def test_key_prompt_and_both_ways_of_sending_it(
    keyed: LiveServer, open_page: Any, tmp_path: Path
) -> None:
    page, _ = open_page(keyed)
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    assert "needs an API key" in page.locator("#key-reason").inner_text()
    page.screenshot(path=str(tmp_path / "key.png"))
    page.fill("#key-input", "sk-not-the-right-one")
    page.click("#key-save")
    page.wait_for_function(
        "() => document.querySelector('#key-reason').textContent.includes('did not accept')"
    )
    assert dialog.is_visible()
    # Another call meeting the old key's 401 while the user types leaves the typing alone
    # (both the model list and the chat list may answer 401 after one save).
    page.fill("#key-input", "sk-half-typed")
    page.evaluate("() => document.querySelector('#banner .banner-action').click()")
    assert page.input_value("#key-input") == "sk-half-typed"
    for key in (TOKEN_KEY, FRAME_KEY):
        if not dialog.is_visible():
            page.click("#change-key")
        page.fill("#key-input", key)
        page.click("#key-save")
        models_loaded(page)
        assert not dialog.is_visible()
        assert page.evaluate("() => localStorage.getItem('hearth.apiKey')") == key
        set_setting(page, "max_tokens", "5")
        ask(page, "Hi")
        assert "tokens" in wait_done(page)
    # The key is remembered: a reload asks for nothing.
    page.reload()
    models_loaded(page)
    assert not dialog.is_visible()
    # A key the socket refuses (1008) brings the prompt back, with a readable message.
    page.evaluate("() => localStorage.setItem('hearth.apiKey', 'sk-revoked-key-99')")
    ask(page, "Hi")
    dialog.wait_for(state="visible")
    assert "did not accept" in last_reply(page).locator(".error-note").inner_text()
    assert page.locator("#prompt").input_value() == "Hi"  # offered again


def test_phone_width_layout(live_server: LiveServer, open_page: Any, tmp_path: Path) -> None:
    page, errors = open_page(live_server, PHONE)
    models_loaded(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert not page.locator("#sidebar").is_visible()
    for selector in ("#menu", "#model", "#prompt", "#send"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    open_drawer(page)
    set_setting(page, "max_tokens", "40")
    page.click("#scrim", position={"x": PHONE["width"] - 10, "y": 300})  # beside the drawer
    page.locator("#sidebar").wait_for(state="hidden")
    ask(page, "Write a python function that adds two numbers.")
    assert "tokens" in wait_done(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "phone.png"))
    assert errors == []


def test_model_text_cannot_inject_html(
    scripted: LiveServer, open_page: Any, tmp_path: Path
) -> None:
    # Without the page's CSP: what is tested is that no element is ever made from model
    # text, not that the policy would stop its script.
    page, errors = open_page(scripted, bypass_csp=True)
    models_loaded(page)
    page.select_option("#model", "scripted")
    ask(page, "Say the thing.")
    assert "tokens" in wait_done(page)
    body = last_reply(page).locator(".body")
    text = body.inner_text()
    assert "<img src=x onerror=" in text and "<script>" in text
    assert body.locator("strong").inner_text() == "bold"  # Markdown still renders
    assert page.evaluate("() => document.querySelectorAll('img, script:not([src])').length") == 0
    assert body.locator("a").count() == 0  # a javascript: link stays text
    time.sleep(0.3)
    assert page.evaluate("() => window.__pwned") is None
    page.screenshot(path=str(tmp_path / "xss.png"))
    assert errors == []


def conversation_ids(server: LiveServer) -> set[str]:
    page = httpx.get(f"{server.url}/v1/conversations", params={"limit": 100}).json()
    return {c["id"] for c in page["data"]}


def test_errors_read_as_messages(scripted: LiveServer, open_page: Any, tmp_path: Path) -> None:
    page, _ = open_page(scripted)
    models_loaded(page)
    stored_before = conversation_ids(scripted)
    page.select_option("#model", "busy")
    ask(page, "Hi")
    wait_done(page)
    note = last_reply(page).locator(".error-note").inner_text()
    assert note.startswith("The server is busy.") and "Try again in 2 s." in note
    # The chat its first message created holds nothing: it leaves the list and the store.
    page.wait_for_function(
        "() => !document.querySelector('#history .history-row.active')"
        " && document.querySelector('#prompt').value === 'Hi'"
    )
    deadline = time.monotonic() + 10
    while conversation_ids(scripted) != stored_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conversation_ids(scripted) == stored_before
    assert page.locator("#history .history-row").count() == len(stored_before)
    # The model went away after the page listed it.
    page.select_option("#model", "doomed")
    assert httpx.request(
        "DELETE", scripted.url + "/api/delete", json={"model": "doomed"}
    ).is_success
    ask(page, "Hi")
    wait_done(page)
    assert "doomed" in last_reply(page).locator(".error-note").inner_text()
    page.screenshot(path=str(tmp_path / "errors.png"))


def test_server_down_reads_as_a_message(tmp_path: Path, open_page: Any) -> None:
    server = LiveServer(make_settings(tmp_path), registry_of(FakeBackend("scripted"))).start()
    page, _ = open_page(server)
    models_loaded(page)
    server.stop()
    ask(page, "Hi")
    wait_done(page)
    assert "connection to the server" in last_reply(page).locator(".error-note").inner_text()
    assert page.locator("#send").inner_text() == "Send"
    assert page.locator("#prompt").input_value() == "Hi"


def open_drawer(page: Page) -> None:
    page.click("#menu")
    # Until it has slid all the way in (a screenshot then shows all of it).
    page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().x==0")


def stored_items(server: LiveServer, conversation_id: str) -> list[dict[str, Any]]:
    url = f"{server.url}/v1/conversations/{conversation_id}/items"
    items: list[dict[str, Any]] = httpx.get(url, params={"order": "asc", "limit": 100}).json()[
        "data"
    ]
    return items


def test_history_reopens_a_stopped_chat_after_a_reload(
    live_server: LiveServer, open_page: Any, tmp_path: Path
) -> None:
    page, errors = open_page(live_server)
    models_loaded(page)
    set_setting(page, "temperature", "0")
    set_setting(page, "max_tokens", "1000")
    ask(page, LONG)
    page.wait_for_function(
        "() => document.querySelector('.msg.assistant .body').textContent.length > 60"
    )
    page.click("#send")  # Stop
    assert "Stopped" in wait_done(page)
    before = last_reply(page).locator(".body").inner_text()
    row = page.locator("#history .history-row.active")
    assert row.locator(".history-open").inner_text() == LONG  # titled after the message
    conversation_id = row.get_attribute("data-id")
    assert conversation_id is not None
    stored = stored_items(live_server, conversation_id)
    assert [(i["role"], i["status"]) for i in stored] == [
        ("user", "completed"),
        ("assistant", "incomplete"),
    ]
    assert stored[0]["content"][0]["text"] == LONG and len(stored[1]["content"][0]["text"]) > 60

    page.reload()
    models_loaded(page)
    assert page.locator(".msg").count() == 0  # a fresh chat
    page.locator("#history .history-open", has_text=LONG).first.click()
    assert page.locator(".msg.user .body").inner_text() == LONG
    reopened = last_reply(page).locator(".body").inner_text()
    assert last_reply(page).locator(".stats").inner_text() == "Unfinished"
    # The reply as far as it got (the store may hold the one piece the Stop cut off).
    assert reopened.startswith(before[: len(before) * 4 // 5]) and len(reopened) >= len(before)
    assert page.locator("#history .history-row.active").get_attribute("data-id") == (
        conversation_id
    )
    # The next turn goes on from the stored history: its prompt was cached.
    set_setting(page, "max_tokens", "12")
    ask(page, "Thanks! Now one word about the dragon.")
    assert "cached" in wait_done(page).splitlines()[-1]
    assert len(stored_items(live_server, conversation_id)) == 4
    page.screenshot(path=str(tmp_path / "history-desktop.png"))
    # A new chat starts empty and unselected.
    page.click("#new-chat")
    assert page.locator(".msg").count() == 0
    assert page.locator("#history .history-row.active").count() == 0
    assert errors == []


def test_history_rename_and_delete_at_phone_width(
    live_server: LiveServer, open_page: Any, tmp_path: Path
) -> None:
    api = f"{live_server.url}/v1/conversations"
    hostile = '<img src=x onerror="window.__pwned=1"> title'
    made = []
    for title, reply in (("Bread", "Rye is **good**."), (hostile, "<b>not bold</b>")):
        body = {
            "metadata": {"title": title},
            "items": [
                {"role": "user", "content": f"About {title}"},
                {"role": "assistant", "content": reply},
            ],
        }
        made.append(httpx.post(api, json=body).json()["id"])
    bread, evil = made
    page, errors = open_page(live_server, PHONE)
    models_loaded(page)
    open_drawer(page)
    ids = page.locator("#history .history-row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids.index(evil) < ids.index(bread)  # newest first
    evil_row = page.locator(f'#history .history-row[data-id="{evil}"]')
    assert evil_row.locator(".history-open").inner_text() == hostile  # a title stays text
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "history-phone.png"))

    # Rename: the new title is the conversation's metadata.title on the server.
    bread_row = page.locator(f'#history .history-row[data-id="{bread}"]')
    bread_row.locator(".history-rename").click()
    page.fill("#history .history-title-input", "Rye bread")
    page.press("#history .history-title-input", "Enter")
    bread_row.locator(".history-open", has_text="Rye bread").wait_for()
    assert httpx.get(f"{api}/{bread}").json()["metadata"] == {"title": "Rye bread"}
    # Escape leaves a rename without saving, and without closing the drawer.
    bread_row.locator(".history-rename").click()
    page.fill("#history .history-title-input", "Never saved")
    page.press("#history .history-title-input", "Escape")
    bread_row.locator(".history-open", has_text="Rye bread").wait_for()
    assert page.locator("#sidebar").is_visible()
    assert httpx.get(f"{api}/{bread}").json()["metadata"] == {"title": "Rye bread"}

    # Opening one closes the drawer and shows its messages, rendered as they are stored.
    evil_row.locator(".history-open").click()
    page.locator("#sidebar").wait_for(state="hidden")
    assert page.locator(".msg.user .body").inner_text() == f"About {hostile}"
    assert last_reply(page).locator(".body").inner_text() == "<b>not bold</b>"
    assert page.evaluate("() => document.querySelectorAll('img, .msg b').length") == 0
    page.screenshot(path=str(tmp_path / "history-open-phone.png"))

    # Delete asks first; "Keep" keeps it, "Delete" removes it on the server, and the open
    # chat it was makes way for a new one.
    open_drawer(page)
    evil_row.locator(".history-delete").click()
    page.screenshot(path=str(tmp_path / "history-delete-phone.png"))
    evil_row.locator(".history-keep").click()
    assert httpx.get(f"{api}/{evil}").status_code == 200
    evil_row.locator(".history-delete").click()
    evil_row.locator(".history-confirm").click()
    evil_row.wait_for(state="detached")
    assert httpx.get(f"{api}/{evil}").status_code == 404
    assert page.locator(".msg").count() == 0
    assert bread_row.is_visible()
    time.sleep(0.2)
    assert page.evaluate("() => window.__pwned") is None
    assert errors == []


def test_a_chat_deleted_elsewhere_reads_as_a_message(
    live_server: LiveServer, open_page: Any
) -> None:
    page, _ = open_page(live_server)
    models_loaded(page)
    set_setting(page, "max_tokens", "3")
    ask(page, "Hi")
    assert "tokens" in wait_done(page)
    first = page.locator("#history .history-row.active").get_attribute("data-id")
    assert httpx.delete(f"{live_server.url}/v1/conversations/{first}").is_success
    ask(page, "Hello again")
    wait_done(page)
    note = last_reply(page).locator(".error-note").inner_text()
    assert "no longer on the server" in note
    assert page.locator("#prompt").input_value() == "Hello again"  # offered again
    page.press("#prompt", "Enter")
    assert "tokens" in wait_done(page)
    second = page.locator("#history .history-row.active").get_attribute("data-id")
    assert second not in (None, first)
    assert [i["role"] for i in stored_items(live_server, str(second))] == ["user", "assistant"]


MARKDOWN_CASES = """
() => import('/ui/markdown.js').then(({render}) => {
  const html = (text) => {
    const div = document.createElement('div');
    div.append(render(text));
    return div.innerHTML;
  };
  return {
    fence: html('Hi\\n```python\\nx = "<b>"\\n```\\nafter'),
    open_fence: html('```js\\nlet a = 1;'),
    list: html('- one\\n- **two**\\n  - nested\\n1. first'),
    table: html('| a | b |\\n|---|--:|\\n| `x` | <i>y</i> |'),
    links: html('[ok](https://example.com) [bad](javascript:alert(1)) http://a.b/c.'),
    inline: html('snake_case_name and *em* and ~~del~~ and `a<b`'),
    heading: html('# Title\\n> quoted'),
  };
})
"""


def test_markdown_renderer(live_server: LiveServer, open_page: Any) -> None:
    page, errors = open_page(live_server)
    out = page.evaluate(MARKDOWN_CASES)
    assert out["fence"] == (
        '<p>Hi</p><figure class="code"><figcaption><span class="lang">python</span>'
        '<button class="copy" type="button">Copy</button></figcaption>'
        '<pre><code>x = "&lt;b&gt;"</code></pre></figure><p>after</p>'
    )
    assert "<code>let a = 1;</code>" in out["open_fence"]  # still streaming: code to the end
    assert out["list"] == (
        "<ul><li>one</li><li><strong>two</strong><ul><li>nested</li></ul></li></ul>"
        "<ol><li>first</li></ol>"
    )
    assert "<th>a</th>" in out["table"] and 'style="text-align: right;"' in out["table"]
    assert "<td><code>x</code></td>" in out["table"] and "&lt;i&gt;y&lt;/i&gt;" in out["table"]
    assert out["links"].count("<a ") == 2 and "javascript" not in out["links"]
    assert 'href="https://example.com/"' in out["links"] and 'href="http://a.b/c"' in out["links"]
    assert "<span>bad</span>" in out["links"]
    assert out["inline"] == (
        "<p>snake_case_name and <em>em</em> and <del>del</del> and <code>a&lt;b</code></p>"
    )
    assert out["heading"] == "<h3>Title</h3><blockquote><p>quoted</p></blockquote>"
    assert errors == []
