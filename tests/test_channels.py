"""Channels deliver for real, to receivers on 127.0.0.1: a webhook server, an SMTP server and a
recording program. Vendor channels (slack://, discord://...) always go to the vendor's host, so
for them only kind() and check() are tested here; their content is the formatter's business."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from mentionwatch.config import Channel
from mentionwatch.notify.channels import check, kind, send
from mentionwatch.outputs.messages import Message
from receivers import body_of, command_recorder, free_port, recorded, smtp_server, webhook_server

MESSAGE = Message(
    title="mentionwatch: 2 new mentions",
    markdown="**2 new** mentions of *acme*",
    text="2 new mentions of acme",
    data={"kind": "mentions", "count": 2, "title": "Grüße, acme ✓"},
)

# What a stranger may write in a post. Making it inert for each chat is done upstream; the
# channel layer must deliver exactly what it is given.
HOSTILE = "@everyone @here <!channel> <@U123> <https://evil.example|bank> [bank](https://evil.example) & :100: \u202e ü 😀\n2nd line"


@pytest.fixture
def webhook():
    with webhook_server() as server:
        yield server


def test_json_delivers_title_and_text(webhook):
    assert send(Channel("hook", url=webhook.url_for("mw")), MESSAGE) is None
    (path, headers, body), = webhook.wait_for(1)
    assert path == "/mw"
    assert headers["Content-Type"] == "application/json"
    # apprise's json:// payload: the text body, not the Markdown one
    assert body == {"version": "1.0", "title": MESSAGE.title, "message": MESSAGE.text,
                    "attachments": [], "type": "info"}


def test_json_delivers_hostile_text_unchanged(webhook):
    hostile = Message(title="<!here> " + HOSTILE, markdown="unused", text=HOSTILE)
    assert send(Channel("hook", url=webhook.url_for()), hostile) is None
    body = webhook.wait_for(1)[0].body
    assert body["message"] == HOSTILE
    assert body["title"] == "<!here> " + HOSTILE


def test_http_error_is_one_line_with_host_and_status_and_no_secret(webhook):
    webhook.fail_next(1, status=500)
    url = webhook.url_for("mw").replace("json://", "json://alice:s3cretpw@") + "?token=tok-SECRET&x=1"
    error = send(Channel("hook", url=url), MESSAGE)
    assert error == f"json://127.0.0.1:{webhook.port}: HTTP 500"
    assert len(webhook.wait_for(1)) == 1


def test_connection_refused_names_the_reason():
    port = free_port()  # nothing listens there
    error = send(Channel("hook", url=f"json://127.0.0.1:{port}/mw?token=tok-SECRET"), MESSAGE)
    assert error == f"json://127.0.0.1:{port}: connection refused"


def test_a_hung_receiver_costs_at_most_the_channel_timeout(webhook):
    webhook.hang_next(1, seconds=5)
    start = time.monotonic()
    error = send(Channel("hook", url=webhook.url_for(), timeout=0.5), MESSAGE)
    assert time.monotonic() - start < 2
    assert error == f"json://127.0.0.1:{webhook.port}: no answer within 0.5 s"


def test_concurrent_sends_keep_their_own_outcome(webhook):
    webhook.fail_next(1, status=502)
    results = {}

    def deliver(name):
        results[name] = send(Channel(name, url=webhook.url_for(name)), MESSAGE)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [v for v in results.values() if v]
    assert failed == [f"json://127.0.0.1:{webhook.port}: HTTP 502"]


def test_mailto_delivers_title_as_subject_and_text_as_body():
    with smtp_server() as smtp:
        channel = Channel("mail", url=smtp.mailto_url(to="team@example.com"))
        assert kind(channel) == "text"
        assert send(channel, MESSAGE) is None
        mail, = smtp.wait_for(1)
    assert mail["Subject"] == MESSAGE.title
    assert mail["To"] == "team@example.com"
    assert mail["From"] == "mentionwatch@example.com"
    assert body_of(mail).rstrip("\r\n") == MESSAGE.text


def test_nothing_reaches_stdout_or_stderr(webhook, capfd):
    webhook.fail_next(1)
    assert send(Channel("hook", url=webhook.url_for()), MESSAGE)
    assert send(Channel("hook", url=webhook.url_for()), MESSAGE) is None
    assert send(Channel("bad", url="nosuchscheme://x"), MESSAGE)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("url, expected", [
    ("slack://T1ABC/B2DEF/C3GHI", "markdown"),
    ("discord://123456/abcdef", "markdown"),
    ("tgram://123456789:ABCdefGHI/12345", "markdown"),
    ("matrixs://user:pw@matrix.example.org/!room:example.org", "markdown"),
    ("json://127.0.0.1:8080/mw", "text"),
    ("form://127.0.0.1:8080/mw", "text"),
    ("mailto://user:pw@mail.example.com?to=team@example.com", "text"),
    ("ntfy://mytopic", "text"),
])
def test_kind_picks_the_body_each_service_renders(url, expected):
    channel = Channel("c", url=url)
    assert kind(channel) == expected
    assert check(channel) is None


def test_check_rejects_an_unknown_url_without_its_secrets():
    error = check(Channel("c", url="nosuchscheme://alice:pw-SECRET@tok-SECRET/path-SECRET?k=v-SECRET"))
    assert error == "nosuchscheme: not a valid Apprise URL"
    assert "SECRET" not in send(Channel("c", url="nosuchscheme://alice:pw-SECRET@tok-SECRET/x"), MESSAGE)


def test_check_names_a_network_host_but_not_a_token_host():
    assert check(Channel("c", url="json://user:pw@hooks.example.com:8443/x?method=BREW")) \
        == "json://hooks.example.com:8443: not a valid Apprise URL"


# --- command channels ------------------------------------------------------------------------

def test_command_gets_exactly_one_json_line(tmp_path, capfd):
    argv, out = command_recorder(tmp_path)
    channel = Channel("page", command=argv)
    assert kind(channel) == "command"
    assert check(channel) is None
    assert send(channel, MESSAGE) is None
    raw = out.read_text(encoding="utf-8")
    assert raw == json.dumps(MESSAGE.data, ensure_ascii=False) + "\n"
    assert recorded(out) == [MESSAGE.data]
    assert capfd.readouterr() == ("", "")  # the program's own stdout and stderr are kept


def test_command_exit_code_and_first_stderr_line(tmp_path):
    argv, _out = command_recorder(tmp_path, exit_code=3, stderr="\nquota exceeded \x1b[31m\nsecond line\n")
    error = send(Channel("page", command=argv), MESSAGE)
    assert error == f"command {sys.executable} exited 3: quota exceeded \\x1b[31m"


def test_command_that_hangs_is_killed(tmp_path):
    argv, _out = command_recorder(tmp_path, sleep=30)
    start = time.monotonic()
    error = send(Channel("page", command=argv, timeout=0.5), MESSAGE)
    assert time.monotonic() - start < 3
    assert error == f"command {sys.executable} took longer than 0.5 s"


def test_command_timeout_also_kills_what_it_started():
    # sh forks sleep, which holds the output pipes: killing sh alone would leave us waiting
    start = time.monotonic()
    error = send(Channel("page", command=("sh", "-c", "sleep 30; echo done"), timeout=0.5), MESSAGE)
    assert time.monotonic() - start < 3
    assert error == "command sh took longer than 0.5 s"


@pytest.mark.parametrize("program", ["/nonexistent/page-oncall", "mw-no-such-program"])
def test_missing_program(program):
    channel = Channel("page", command=(program, "--token", "tok-SECRET"))
    assert check(channel) == f"command {program} not found"
    assert send(channel, MESSAGE) == f"command {program} not found"


def test_not_executable(tmp_path):
    script = tmp_path / "page"
    script.write_text("#!/bin/sh\nexit 0\n")
    channel = Channel("page", command=(str(script),))
    assert check(channel) == f"command {script} not found"
    assert send(channel, MESSAGE) == f"command {script} is not executable"
