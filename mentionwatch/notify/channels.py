"""Delivering one message to one channel (an Apprise URL or a program), and saying why it failed.

Every failure is one line that names the channel by scheme and host only: channel URLs carry
tokens and passwords (and for many services the "host" is itself a token), and these lines reach
terminals, logs and the shared database.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from urllib.parse import parse_qsl, unquote, urlsplit

from mentionwatch.config import Channel
from mentionwatch.outputs.messages import Message
from mentionwatch.text import host_of, redact, safe

# Apprise plugins declare the formats they render. These also declare Markdown, but they post a
# generic payload to whatever program listens (JSON, form, XML, AMQP, an Apprise API server):
# plain text is what such a reader can use, so they get `text` like every text-only channel.
_GENERIC = {"json", "jsons", "form", "forms", "xml", "xmls", "amqp", "amqps", "apprise", "apprises"}

_LINE_MAX = 300


def kind(channel: Channel) -> str:
    """Which body the channel gets: "command" (message.data as JSON), "markdown" or "text"."""
    if not channel.url:
        return "command"
    plugin = _plugin(channel.url)
    if plugin is None or _scheme(channel.url) in _GENERIC:
        return "text"
    apprise = _apprise()

    declared = plugin.notify_format
    formats = declared if isinstance(declared, (tuple, list, set)) else (declared,)
    return "markdown" if apprise.NotifyFormat.MARKDOWN in formats else "text"


def check(channel: Channel) -> str | None:
    """None when the channel could be used (the URL names a known service, the program exists),
    else one line saying what is wrong. Sends nothing."""
    if channel.url:
        if _plugin(channel.url) is None:
            return f"{_label(channel.url)}: not a valid Apprise URL"
        return None
    if not channel.command:
        return f"channel {channel.name}: neither a url nor a command"
    if _which(channel.command[0]) is None:
        return f"command {_program(channel)} not found"
    return None


def send(channel: Channel, message: Message) -> str | None:
    """Deliver; None on success, else one line saying what failed. Never raises for a failed
    delivery, and never writes to stdout or stderr."""
    if channel.url:
        return _send_apprise(channel, message)
    if channel.command:
        return _run_command(channel, message)
    return f"channel {channel.name}: neither a url nor a command"


# --- Apprise ---------------------------------------------------------------------------------

def _apprise():
    # Imported here, not at the top: apprise takes ~270 ms to import, and --help or a poll with
    # nothing to send must not pay for it. Its plugins import deprecated modules (imghdr in
    # apprise.utils.pgp): that is apprise's business, not something to show our users.
    if "apprise" not in sys.modules:
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"apprise(\.|$)")
    import apprise

    return apprise


def _plugin(url: str):
    """The Apprise plugin for a URL, or None when Apprise cannot read it."""
    apprise = _apprise()
    try:
        return apprise.Apprise.instantiate(url)
    except Exception:  # instantiate() already suppresses; a bad URL must still be a None here
        return None


def _send_apprise(channel: Channel, message: Message) -> str | None:
    apprise = _apprise()

    _route_debug_to_capture()
    label = _label(channel.url)
    notifier = apprise.Apprise()
    if not notifier.add(channel.url):
        return f"{label}: not a valid Apprise URL"
    if kind(channel) == "markdown":
        body, body_format = message.markdown, apprise.NotifyFormat.MARKDOWN
    else:
        body, body_format = message.text, apprise.NotifyFormat.TEXT
    try:
        # timeout= bounds the whole call (apprise 2.x): past it, apprise stops waiting and
        # reports TIMEOUT. The abandoned request keeps running in apprise's shared worker pool
        # until its own socket timeouts end it (cto/rto, 4 s each per connect / per read unless
        # the URL sets them), and Python waits for that worker at exit: a silent receiver costs
        # at most ~4 s more at exit, one dripping bytes can keep the worker alive longer.
        result = notifier.notify(body=body, title=message.title, body_format=body_format,
                                 timeout=channel.timeout, log_level=logging.DEBUG)
    except Exception as e:  # a plugin bug must not take the poll down with it
        return f"{label}: {_clean(type(e).__name__ + ': ' + str(e), channel.url)}"
    with result:
        if result:
            return None
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            return f"{label}: no answer within {channel.timeout:g} s"
        return f"{label}: {_reason(list(result.logs()), channel.url)}"


_debug_routed = False


def _route_debug_to_capture() -> None:
    # Apprise logs *why* a connection failed ("[Errno 111] Connection refused") only at DEBUG,
    # and its per-call capture (result.logs(), which stays separate for concurrent sends) only
    # sees records the "apprise" logger lets through. So the logger goes to DEBUG once. Nothing
    # is printed: apprise installs a NullHandler and mentionwatch configures no logging handlers.
    # (apprise.LogCapture would also work, but it swaps the global level on every call and mixes
    # the records of concurrent sends.)
    global _debug_routed
    if not _debug_routed:
        log = logging.getLogger("apprise")
        if log.getEffectiveLevel() > logging.DEBUG:
            log.setLevel(logging.DEBUG)
        _debug_routed = True


_HTTP_ERROR = re.compile(r"\berror=(\d{3})\b")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([A-Za-z][A-Za-z ,'-]*[A-Za-z])")
_TIMED_OUT = re.compile(r"\btimed out\b", re.I)


def _reason(entries, url: str) -> str:
    """One line from apprise's captured log: the HTTP status, the socket error, or its warning."""
    messages = [(e.level, e.message) for e in entries]
    for _level, text in messages:
        m = _HTTP_ERROR.search(text)
        if m:
            return f"HTTP {m.group(1)}"
    for _level, text in messages:
        m = _ERRNO.search(text)
        if m:
            return _clean(m.group(1).lower(), url)
    if any(_TIMED_OUT.search(text) for _level, text in messages):
        return "timed out"
    if any("connection error" in text.lower() for _level, text in messages):
        return "connection failed"
    warnings = [text for level, text in messages if level in ("WARNING", "ERROR", "CRITICAL")]
    return _clean(warnings[-1], url) if warnings else "not delivered (apprise gave no reason)"


def _secrets_of(url: str) -> tuple[str, ...]:
    """Every part of a channel URL that may be a credential: user, password, path segments,
    query values and fragment, and the host when it is not a network host (slack://TOKEN/...)."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return ()
    found = [user, password, parts.fragment]
    found += parts.path.split("/")
    found += [v for _k, v in parse_qsl(parts.query, keep_blank_values=True)]
    if not _is_network_host(parts.hostname or ""):
        found.append(parts.hostname)
    found = [s for s in found if s and len(s) >= 3]
    found += [unquote(s) for s in found]
    # longest first, so a secret is never half replaced by a shorter one inside it
    return tuple(sorted(set(found), key=len, reverse=True))


def _clean(text: str, url: str) -> str:
    """Apprise's or an exception's words made fit for one line: no secret, no control characters."""
    text = redact(text, _secrets_of(url)) or ""
    text = safe(" ".join(text.split()), keep_newlines=False)
    return text[:_LINE_MAX]


def _is_network_host(host: str) -> bool:
    return host == "localhost" or "." in host or ":" in host  # name, IPv4, or IPv6


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def _label(url: str) -> str:
    """How a channel is named in messages: scheme and network host, e.g. json://127.0.0.1:8080.
    For services whose URL "host" is an id or token (slack://T0/B0/xyz, tgram://bot-token/...),
    the scheme alone ("slack: HTTP 404")."""
    scheme = _scheme(url)
    if not scheme:
        return "channel URL"
    try:
        hostname = urlsplit(url).hostname or ""
    except ValueError:
        return scheme
    if not _is_network_host(hostname):
        return scheme
    return f"{scheme}://{host_of(url)}"


# --- command ---------------------------------------------------------------------------------

def _program(channel: Channel) -> str:
    # Only argv[0]: later arguments may well be tokens.
    return safe(redact(channel.command[0]) or "", keep_newlines=False)


def _which(program: str) -> str | None:
    if os.sep in program or (os.altsep and os.altsep in program):
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program)


def _run_command(channel: Channel, message: Message) -> str | None:
    name = _program(channel)
    stdin = (json.dumps(message.data, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        # Popen rather than subprocess.run: on timeout, run() kills only the child and then waits
        # for the pipes to close, which a grandchild (`sh -c "curl ...; ..."`) holding them keeps
        # open. A session of its own lets us kill the whole group. No shell: argv as given.
        proc = subprocess.Popen(channel.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=os.name == "posix")
    except FileNotFoundError:
        return f"command {name} not found"
    except PermissionError:
        return f"command {name} is not executable"
    except OSError as e:
        return f"command {name} could not start: {e.strerror or e}"
    try:
        _out, err = proc.communicate(stdin, timeout=channel.timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return f"command {name} took longer than {channel.timeout:g} s"
    if proc.returncode == 0:
        return None
    code = proc.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited {code}"
    first = next((line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()), "")
    first = safe(redact(first) or "", keep_newlines=False)[:_LINE_MAX]
    return f"command {name} {how}: {first}" if first else f"command {name} {how}"


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass  # already gone
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass  # something outside the group still holds the pipes; do not hang the poll on it
