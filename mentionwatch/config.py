"""YAML config -> frozen dataclasses, validated on load.

Every error is a ConfigError naming the file, the line and the key path, e.g.
    config.yaml:14: rules[2].urgency: must be one of critical, high, normal, low (got 'urgent')
PyYAML's safe_load drops positions, so the document is composed into nodes first and the line of
every key is remembered while the same nodes are turned into Python values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mentionwatch import sources as sources_mod
from mentionwatch.errors import ConfigError
from mentionwatch.text import did_you_mean
from mentionwatch.matching import GROUP_NAME, QueryError, Search, parse_search, rule_term
from mentionwatch.model import URGENCIES, parse_duration

FIELDS = ("title", "text", "author", "url")
DEFAULT_FIELDS = ("title", "text")
ENV_CONFIG = "MENTIONWATCH_CONFIG"
ENV_DB = "MENTIONWATCH_DB"
APP = "mentionwatch"


@dataclass(frozen=True)
class Rule:
    name: str
    urgency: str
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    regex: str | None = None
    fields: tuple[str, ...] = DEFAULT_FIELDS
    sources: tuple[str, ...] = ()  # empty: every source
    # The word groups its terms use (`@login`), name -> terms: a rule carries what it needs, so a
    # worker process or a retag can build the same Tagger from the rules alone.
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Query:
    name: str
    search: Search
    sources: tuple[str, ...]
    feeds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    """Where alerts go: an Apprise URL (`url`, secrets from ${ENV} already substituted), or a
    program (`command`) that gets one JSON object per message on stdin."""
    name: str
    url: str | None = None
    command: tuple[str, ...] = ()
    timeout: float = 10.0  # seconds: a command that takes longer has failed


EVENTS = ("new", "sla_at_risk", "sla_breached", "followup_due", "snooze_ended", "assigned", "spike",
          "source_failing")
DIGESTS = {"hourly": 3600.0, "daily": 86400.0}


@dataclass(frozen=True)
class Route:
    """Which mentions and events go where, and when (`notify.routes[]`)."""
    name: str
    to: tuple[str, ...]  # channel names; "owner": the assignee's own channel (notify.people)
    on: tuple[str, ...] = ("new",)
    urgency: tuple[str, ...] = ()  # empty: any (as triage's filters)
    rules: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    digest: float | None = None  # seconds between digests; None: each message at once
    at: str | None = None  # "HH:MM" in the team's zone: when a daily digest goes
    cap: int = 10  # instant messages per run; the rest fold into one "and N more"
    page: bool = False  # send outside staffed hours too (on-call); else held until the next shift


@dataclass(frozen=True)
class Notify:
    channels: dict[str, Channel]
    people: dict[str, str]  # person -> channel name (their own URLs are channels named "@person")
    routes: tuple[Route, ...]
    at_risk: float = 0.75  # share of an SLA clock spent that makes sla_at_risk
    retry_for: float = 86400.0  # a failing delivery is retried (with backoff) this long, then expires
    spike_min_count: int = 5
    spike_min_history: float = 86400.0
    spike_threshold: float = 3.0


@dataclass(frozen=True)
class Config:
    path: str | None  # None: the example config embedded in the package
    database: str | None
    me: str | None
    default_urgency: str
    user_agent: str
    per_host: int
    max_bytes: int
    retries: int
    max_wait: float
    max_silence: float  # health: a source with no success for this long is unhealthy
    sla: dict[str, float]  # urgency -> seconds of staffed time to a first answer
    staffing: Any  # sla.Staffing
    repeat_window: float  # seconds after a resolve during which the same author counts as a repeat
    sources: SourceOptions
    queries: tuple[Query, ...]
    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = ()  # for stderr: problems that do not stop the command
    display_zone: str | None = None  # display.timezone: the zone times are shown in to people
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # named word groups, for @name in rules
    notify: Notify | None = None  # alerts: None when the config has no notify section


# --- where things live -----------------------------------------------------------------------------


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def default_config_path() -> Path:
    return config_dir() / "config.yaml"


def example_config_text() -> str:
    """The example config: inside the installed package, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    for p in (here / "config.example.yaml", here.parent / "config.example.yaml"):
        if p.is_file():
            return p.read_text(encoding="utf-8")
    raise ConfigError("config.example.yaml is missing from this installation")


def resolve_config_path(option: str | None) -> Path | None:
    """--config, else $MENTIONWATCH_CONFIG, else the user config file; None when none exists
    (the embedded example is used then, so a fresh install works with no setup)."""
    explicit = option or os.environ.get(ENV_CONFIG)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError("config file not found" if not p.exists() else "not a file", file=str(p))
        return p
    p = default_config_path()
    return p if p.is_file() else None


def load(option: str | None = None) -> Config:
    path = resolve_config_path(option)
    if path is None:
        return parse(example_config_text(), None)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(path)) from None
    cfg = parse(text, str(path))
    spots = secret_spots(cfg)
    try:
        shared = path.stat().st_mode & 0o044
    except OSError:
        shared = 0
    if spots and shared:
        import dataclasses

        warning = (f"{path} is readable by other users and holds a secret ({spots[0]}); "
                   f"run: chmod 600 {path}")
        cfg = dataclasses.replace(cfg, warnings=(*cfg.warnings, warning))
    return cfg


_SECRET_URL = re.compile(
    r"/alerts/feeds/\d|[?&;](access_token|token|key|api_key|apikey|client_secret|secret|password|sig)=|://[^/@\s]+:[^/@\s]+@",
    re.I)


def secret_spots(cfg: "Config") -> list[str]:
    """Config values that are credentials themselves: private feed URLs (a Google Alerts feed URL
    is all it takes to read the alert), URLs with tokens or passwords in them."""
    spots = []
    for q in cfg.queries:
        for i, url in enumerate(q.feeds):
            if _SECRET_URL.search(url):
                spots.append(f"query {q.name}, feeds[{i}]")
    for name, options in cfg.sources.items():
        for key, value in options.items():
            if isinstance(value, str) and _SECRET_URL.search(value):
                spots.append(f"sources.{name}.{key}")
    return spots


def resolve_db_path(option: str | None, config: Config | None) -> Path:
    """--db, else $MENTIONWATCH_DB, else `database:` (relative to the config file), else the user data dir."""
    if option:
        return Path(option).expanduser()
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB]).expanduser()
    if config is not None and config.database:
        p = Path(config.database).expanduser()
        if not p.is_absolute():
            base = Path(config.path).parent if config.path else data_dir()
            p = base / p
        return p
    return data_dir() / "mentions.db"


# --- parsing ---------------------------------------------------------------------------------------


class _Doc:
    """The loaded YAML plus the line of every key path, for error messages."""

    def __init__(self, file: str | None):
        self.file = file or "<embedded config.example.yaml>"
        self.lines: dict[str, int] = {}
        self.walked: set[int] = set()

    def err(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line(key), key=key or None)

    def line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            shorter = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", key)
            if shorter == key:
                break
            key = shorter
        return self.lines.get("")


MAX_DEPTH = 32  # no real config nests deeper than 5; deeper is a mistake or an attack


def _without_dates(base):
    """A safe loader that leaves 2026-12-24 a string: dates are checked where they are used, with
    the file, line and key in the message (YAML's own constructor raises a bare ValueError for
    2026-02-30)."""
    cls = type(f"NoDates{base.__name__}", (base,), {})
    cls.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in base.yaml_implicit_resolvers.items()
    }
    return cls


def _loaders():
    import yaml

    return _without_dates(yaml.SafeLoader), (_without_dates(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else None)


def _load_yaml(text: str, doc: _Doc) -> Any:
    import yaml

    _NoDates, _CNoDates = _loaders()

    # libyaml's loader when PyYAML has it: ten times faster, and triage loads the config too.
    # But libyaml recurses in C and crashes the process on absurdly nested brackets, where the
    # pure-Python loader raises RecursionError; a real config has a few dozen brackets.
    loader_cls = _NoDates
    if _CNoDates is not None and text.count("[") + text.count("{") < 2000:
        loader_cls = _CNoDates
    try:
        loader = loader_cls(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            # Lines first: it also rejects duplicate keys, deep nesting and self-reference
            # before anything is built from the nodes.
            _record_lines(node, "", doc, 0, set())
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {e.problem or e.context}", file=doc.file, line=line) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1 if isinstance(e.position, int) else None
        what = f"character {e.character!r}" if isinstance(e.character, str) else "a byte"
        raise ConfigError(f"invalid YAML: {what} is not allowed (control characters are not)",
                          file=doc.file, line=line) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {str(e).splitlines()[0]}", file=doc.file) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", file=doc.file) from None
    return data


def _record_lines(node: Any, path: str, doc: _Doc, depth: int, active: set[int]) -> None:
    """Remember the line of every key path; a key given twice in one mapping is an error (YAML
    would silently keep the last one, hiding the user's first setting). Aliases (`*name`) are
    walked like the anchor they point to; an alias inside its own anchor is an error."""
    import yaml

    if depth > MAX_DEPTH:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=doc.file,
                          line=node.start_mark.line + 1, key=path or None)
    if id(node) in active:
        raise ConfigError("an alias refers to the value that contains it", file=doc.file,
                          line=node.start_mark.line + 1, key=path or None)
    if id(node) in doc.walked:
        return  # reached again through an alias: walking it once is enough (and no alias bomb)
    doc.walked.add(id(node))
    lines = doc.lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        active.add(id(node))
        seen = set()
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                sub = f"{path}.{k.value}" if path else str(k.value)
                if k.value in seen:
                    raise ConfigError("key given twice in the same mapping", file=doc.file,
                                      line=k.start_mark.line + 1, key=sub)
                seen.add(k.value)
                lines.setdefault(sub, k.start_mark.line + 1)
                _record_lines(v, sub, doc, depth + 1, active)
        active.discard(id(node))
    elif isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        for i, v in enumerate(node.value):
            _record_lines(v, f"{path}[{i}]", doc, depth + 1, active)
        active.discard(id(node))


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(value: Any, path: str, doc: _Doc, done: dict | None = None) -> Any:
    """${VAR} in any string is replaced from the environment, so tokens never live in the file.

    A value reached through several aliases is substituted once (`done`), so an alias bomb
    costs as little as the nodes actually written."""
    done = {} if done is None else done
    if isinstance(value, (dict, list)) and id(value) in done:
        return done[id(value)]
    if isinstance(value, str):

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise doc.err(path, f"environment variable {name} is not set (used as ${{{name}}})")
            return os.environ[name]

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        out_d: dict = {}
        done[id(value)] = out_d
        for k, v in value.items():
            out_d[k] = _substitute(v, f"{path}.{k}" if path else str(k), doc, done)
        return out_d
    if isinstance(value, list):
        out_l: list = []
        done[id(value)] = out_l
        out_l.extend(_substitute(v, f"{path}[{i}]", doc, done) for i, v in enumerate(value))
        return out_l
    return value


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _expect(doc: _Doc, key: str, value: Any, kind: type | tuple, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # YAML's `yes`/`true` are bools, which Python also counts as ints: never accept them as numbers.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise doc.err(key, f"must be {what} (got {_type_name(value)})")
    return value


def _mapping(doc, key, value, allowed: tuple[str, ...]) -> dict:
    _expect(doc, key, value, dict, "a mapping")
    for k in value:
        if not isinstance(k, str) or k not in allowed:
            sub = f"{key}.{k}" if key else str(k)
            raise doc.err(sub, f"unknown key (expected one of: {', '.join(allowed)}){did_you_mean(k, allowed)}")
    return value


def _str_list(doc, key, value, what="a list of strings") -> tuple[str, ...]:
    _expect(doc, key, value, list, what)
    for i, item in enumerate(value):
        _expect(doc, f"{key}[{i}]", item, str, "a string")
        if not item.strip():
            raise doc.err(f"{key}[{i}]", "must not be empty")
    return tuple(value)


def _name(doc, key, value) -> str:
    _expect(doc, key, value, str, "a string")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise doc.err(key, f"{value!r} is not a valid name (letters, digits, '-', '_', '.')")
    return value


def _number(doc, key, value, minimum=0, integer=False):
    _expect(doc, key, value, int if integer else (int, float), "a whole number" if integer else "a number")
    if value != value or value < minimum or value > 10**9:  # value != value: NaN
        raise doc.err(key, f"must be between {minimum} and {10**9} (got {value})")
    return value


TOP_KEYS = ("database", "me", "default_urgency", "http", "health", "sla", "staffed", "repeat_window",
            "display", "sources", "queries", "groups", "rules", "notify")
NOTIFY_KEYS = ("channels", "people", "routes", "at_risk", "retry_for", "spikes")
SPIKE_KEYS = ("min_count", "min_history", "threshold")
ROUTE_KEYS = ("name", "to", "on", "urgency", "rules", "queries", "sources", "digest", "at", "cap", "page")
COMMAND_KEYS = ("command", "timeout")
DISPLAY_KEYS = ("timezone",)
CALENDAR_KEYS = ("timezone", "hours", "holidays")
STAFFED_KEYS = CALENDAR_KEYS + ("message", "calendars")
HEALTH_KEYS = ("max_silence",)
HTTP_KEYS = ("user_agent", "per_host", "max_bytes", "retries", "max_wait")
QUERY_KEYS = ("name", "search", "sources", "feeds")
RULE_KEYS = ("name", "urgency", "any", "all", "none", "regex", "fields", "sources")
DEFAULT_UA = "mentionwatch/{version} (+https://github.com/mentionwatch/mentionwatch)"


def parse(text: str, file: str | None) -> Config:
    doc = _Doc(file)
    raw = _load_yaml(text, doc)
    if raw is None:
        raw = {}
    raw = _mapping(doc, "", raw, TOP_KEYS)
    raw = _substitute(raw, "", doc)

    database = raw.get("database")
    if database is not None:
        _expect(doc, "database", database, str, "a file path")
    me = raw.get("me")
    if me is not None:
        _expect(doc, "me", me, str, "a name")
    default_urgency = raw.get("default_urgency", "normal")
    _urgency(doc, "default_urgency", default_urgency)

    http = _mapping(doc, "http", _or_empty(raw, "http", {}), HTTP_KEYS)
    from mentionwatch import __version__

    user_agent = _expect(doc, "http.user_agent", http.get("user_agent", DEFAULT_UA), str, "a string")
    user_agent = user_agent.replace("{version}", __version__)
    per_host = _number(doc, "http.per_host", http.get("per_host", 4), minimum=1, integer=True)
    max_bytes = _number(doc, "http.max_bytes", http.get("max_bytes", 20_000_000), minimum=1000, integer=True)
    retries = _number(doc, "http.retries", http.get("retries", 2), minimum=0, integer=True)
    max_wait = _number(doc, "http.max_wait", http.get("max_wait", 30), minimum=0)

    health = _mapping(doc, "health", _or_empty(raw, "health", {}), HEALTH_KEYS)
    max_silence = _duration(doc, "health.max_silence", health.get("max_silence", 86400))

    from mentionwatch import sla as sla_mod

    sla_raw = _mapping(doc, "sla", _or_empty(raw, "sla", {}), URGENCIES)
    budgets = {u: _duration(doc, f"sla.{u}", sla_raw.get(u, sla_mod.DEFAULT_SLA[u])) for u in URGENCIES}
    staffing = _staffing(doc, _or_empty(raw, "staffed", {}))
    repeat_window = _duration(doc, "repeat_window", raw.get("repeat_window", 7 * 86400))
    display = _mapping(doc, "display", _or_empty(raw, "display", {}), DISPLAY_KEYS)
    display_zone = _zone_name(doc, "display.timezone", display["timezone"]) if "timezone" in display else None

    srcs = _sources(doc, _or_empty(raw, "sources", {}))
    queries = _queries(doc, raw.get("queries"))
    groups = _groups(doc, _or_empty(raw, "groups", {}))
    rules = _rules(doc, _or_empty(raw, "rules", []), groups)
    notify = _notify(doc, raw["notify"], queries, rules) if raw.get("notify") is not None else None
    return Config(
        path=file, database=database, me=me, default_urgency=default_urgency, user_agent=user_agent,
        per_host=per_host, max_bytes=max_bytes, retries=retries, max_wait=max_wait, max_silence=max_silence, sla=budgets,
        staffing=staffing, repeat_window=repeat_window, sources=srcs, queries=queries, rules=rules,
        display_zone=display_zone, groups=groups, notify=notify,
    )


def _notify(doc, raw, queries, rules) -> Notify:
    """`notify:` channels (name -> Apprise URL or {command, timeout}), people (name -> URL or a
    channel name), routes, and the escalation, retry and spike settings."""
    _mapping(doc, "notify", raw, NOTIFY_KEYS)
    channels: dict[str, Channel] = {}
    for name, spec in _expect(doc, "notify.channels", raw.get("channels") or {}, dict, "a mapping").items():
        channels[_name(doc, f"notify.channels.{name}", name)] = _channel(doc, f"notify.channels.{name}", name, spec)
    people: dict[str, str] = {}
    for person, spec in _expect(doc, "notify.people", raw.get("people") or {}, dict, "a mapping").items():
        key = f"notify.people.{person}"
        _expect(doc, key, person, str, "a name")
        if isinstance(spec, str) and spec in channels:
            people[person] = spec
        else:
            # A person's own URL is a channel of its own, named so it cannot clash with the team's.
            channels[f"@{person}"] = _channel(doc, key, f"@{person}", spec)
            people[person] = f"@{person}"
    routes = []
    route_list = _expect(doc, "notify.routes", raw.get("routes") or [], list, "a list of routes")
    # YAML 1.1 reads a bare `on:` key as true; the route key is `on`, as people write it.
    route_list = [{("on" if k is True else k): v for k, v in r.items()} if isinstance(r, dict) else r
                  for r in route_list]
    for key, r, name in _named_entries(doc, "notify.routes", route_list, ROUTE_KEYS, ("name", "to"), "route"):
        to = _str_list(doc, f"{key}.to", r["to"] if isinstance(r["to"], list) else [r["to"]], "channel names")
        for i, c in enumerate(to):
            if c != "owner" and c not in channels:
                known = [*(x for x in channels if not x.startswith("@")), "owner"]
                raise doc.err(f"{key}.to[{i}]", f"no channel named {c!r} in notify.channels (known: "
                                                f"{', '.join(known)}){did_you_mean(c, known)}")
        on = _str_list(doc, f"{key}.on", r.get("on", ["new"]), "a list of events")
        for i, e in enumerate(on):
            if e not in EVENTS:
                raise doc.err(f"{key}.on[{i}]", f"unknown event {e!r} (one of: {', '.join(EVENTS)}){did_you_mean(e, EVENTS)}")
        urgency = _str_list(doc, f"{key}.urgency", r.get("urgency", []), "a list of urgencies")
        for i, u in enumerate(urgency):
            _urgency(doc, f"{key}.urgency[{i}]", u)
        route_queries = _str_list(doc, f"{key}.queries", r.get("queries", []), "a list of query names")
        names = [q.name for q in queries]
        for i, q in enumerate(route_queries):
            if q not in names:
                raise doc.err(f"{key}.queries[{i}]", f"no query named {q!r}{did_you_mean(q, names)}")
        route_rules = _str_list(doc, f"{key}.rules", r.get("rules", []), "a list of rule names")
        names = [x.name for x in rules]
        for i, x in enumerate(route_rules):
            if x not in names:
                raise doc.err(f"{key}.rules[{i}]", f"no rule named {x!r}{did_you_mean(x, names)}")
        route_sources = _source_names(doc, f"{key}.sources", r.get("sources", []))
        digest = None
        if "digest" in r:
            d = r["digest"]
            digest = DIGESTS.get(d) if isinstance(d, str) and d in DIGESTS else parse_duration(d)
            if not digest or digest < 60:
                raise doc.err(f"{key}.digest", f"must be hourly, daily or a duration of a minute or more like 30m "
                                               f"or 4h (got {d!r})")
        at = r.get("at")
        if at is not None:
            if digest != DIGESTS["daily"]:
                raise doc.err(f"{key}.at", "only a daily digest has a time of day (digest: daily)")
            if not isinstance(at, str) or not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", at):
                raise doc.err(f"{key}.at", f"must be a local time like \"09:00\" (got {at!r}; quote it in YAML)")
        cap = _number(doc, f"{key}.cap", r.get("cap", 10), minimum=1, integer=True)
        page = _expect(doc, f"{key}.page", r.get("page", False), bool, "true or false")
        routes.append(Route(name=name, to=to, on=on, urgency=urgency, rules=route_rules, queries=route_queries,
                            sources=route_sources, digest=digest, at=at, cap=cap, page=page))
    at_risk = raw.get("at_risk", 0.75)
    if isinstance(at_risk, str) and re.fullmatch(r"\d+(\.\d+)?%", at_risk.strip()):
        at_risk = float(at_risk.strip()[:-1]) / 100
    if isinstance(at_risk, bool) or not isinstance(at_risk, (int, float)) or not 0 < at_risk < 1:
        raise doc.err("notify.at_risk", f"must be a share of the SLA clock between 0 and 1, or a percentage like "
                                        f"75% (got {at_risk!r})")
    retry_for = _duration(doc, "notify.retry_for", raw.get("retry_for", 86400))
    spikes = _mapping(doc, "notify.spikes", raw.get("spikes") or {}, SPIKE_KEYS)
    return Notify(
        channels=channels, people=people, routes=tuple(routes), at_risk=float(at_risk), retry_for=retry_for,
        spike_min_count=_number(doc, "notify.spikes.min_count", spikes.get("min_count", 5), minimum=1, integer=True),
        spike_min_history=_duration(doc, "notify.spikes.min_history", spikes.get("min_history", 86400)),
        spike_threshold=float(_number(doc, "notify.spikes.threshold", spikes.get("threshold", 3))),
    )


def _channel(doc, key: str, name: str, spec) -> Channel:
    if isinstance(spec, str):
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", spec.strip()):
            raise doc.err(key, "must be an Apprise URL like slack://..., mailto://..., json://host/path "
                               "(https://github.com/caronc/apprise/wiki), or {command: [program, args...]}")
        return Channel(name=name, url=spec.strip())
    _mapping(doc, key, spec, COMMAND_KEYS)
    if "command" not in spec:
        raise doc.err(key, "missing required key 'command'")
    command = spec["command"] if isinstance(spec["command"], list) else [spec["command"]]
    argv = _str_list(doc, f"{key}.command", command, "a program and its arguments")
    timeout = _duration(doc, f"{key}.timeout", spec.get("timeout", 10))
    return Channel(name=name, command=argv, timeout=max(timeout, 1.0))


def _staffing(doc, raw):
    """`staffed:` is one calendar (timezone, hours, holidays) or `calendars:` for a team in several
    time zones; `message:` is the expectation the team publishes. Empty: staffed around the clock."""
    from mentionwatch import sla as sla_mod

    _mapping(doc, "staffed", raw, STAFFED_KEYS)
    message = raw.get("message")
    if message is not None:
        _expect(doc, "staffed.message", message, str, "a string")
    if "calendars" in raw:
        if any(k in raw for k in CALENDAR_KEYS):
            raise doc.err("staffed", "give either calendars: or timezone/hours/holidays, not both")
        _expect(doc, "staffed.calendars", raw["calendars"], list, "a list of calendars")
        cals = tuple(_calendar(doc, f"staffed.calendars[{i}]", c) for i, c in enumerate(raw["calendars"]))
    elif any(k in raw for k in CALENDAR_KEYS):
        cals = (_calendar(doc, "staffed", {k: raw[k] for k in CALENDAR_KEYS if k in raw}),)
    else:
        cals = ()
    return sla_mod.Staffing(cals, message)


def _calendar(doc, key, raw):
    import datetime as dt

    from mentionwatch import sla as sla_mod

    _mapping(doc, key, raw, CALENDAR_KEYS)
    tz = _zone_name(doc, f"{key}.timezone", raw.get("timezone", "UTC"))
    if "hours" not in raw:
        raise doc.err(key, "missing required key 'hours' (e.g. hours: {mon-fri: \"08:00-20:00\"})")
    hours = _expect(doc, f"{key}.hours", raw["hours"], dict, "a mapping of days to time ranges")
    try:
        parsed = sla_mod.parse_hours(hours)
    except ValueError as e:
        raise doc.err(f"{key}.hours", str(e)) from None
    holidays = set()
    for i, h in enumerate(_expect(doc, f"{key}.holidays", raw.get("holidays", []), list, "a list of dates")):
        if isinstance(h, dt.date) and not isinstance(h, dt.datetime):
            holidays.add(h)
            continue
        try:
            holidays.add(dt.date.fromisoformat(str(h)))
        except ValueError:
            raise doc.err(f"{key}.holidays[{i}]", f"must be a date like 2026-12-24 (got {h!r})") from None
    return sla_mod.Calendar(tz, parsed, frozenset(holidays))


def _zone_name(doc, key: str, tz) -> str:
    """An IANA time zone name (or UTC), checked against the tz database."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    _expect(doc, key, tz, str, "a time zone name like Europe/Berlin")
    if tz.upper() != "UTC":
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise doc.err(key, f"unknown time zone {tz!r} (use a name like Europe/Berlin)") from None
    return tz


def _or_empty(mapping: dict, key: str, empty):
    """A section's value; a key written with nothing after it (`rss:`) means an empty section,
    but `false`, `0` or `""` are type errors, reported as such."""
    value = mapping.get(key)
    return empty if value is None else value


def _urgency(doc, key, value) -> str:
    if value not in URGENCIES:
        raise doc.err(key, f"must be one of {', '.join(URGENCIES)} (got {value!r}){did_you_mean(value, URGENCIES)}")
    return value


class SourceOptions(dict):
    """Options per source name. Sources the config sets are validated on load; the others get
    their defaults when first asked for, so commands that never touch a source (triage, show)
    never import it."""

    def __missing__(self, name: str) -> dict[str, Any]:
        if not sources_mod.is_known(name):
            raise KeyError(name)
        self[name] = {opt: spec.default for opt, spec in sources_mod.options_for(name).items()}
        return self[name]


def _sources(doc, raw) -> SourceOptions:
    _expect(doc, "sources", raw, dict, "a mapping")
    out = SourceOptions()
    for name in raw:
        if not isinstance(name, str) or not sources_mod.is_known(name):
            raise doc.err(f"sources.{name}", f"unknown key (expected one of: {', '.join(sources_mod.names())})"
                                             f"{did_you_mean(name, sources_mod.names())}")
        options = sources_mod.options_for(name)
        given = _or_empty(raw, name, {})
        key = f"sources.{name}"
        _mapping(doc, key, given, tuple(options))
        out[name] = {opt: _option(doc, f"{key}.{opt}", opt, spec, given.get(opt, spec.default))
                     for opt, spec in options.items()}
    return out


def _option(doc, k: str, opt: str, spec, value):
    if value is None and spec.default is None:
        return None  # optional and not set
    if spec.type is str:
        _expect(doc, k, value, str, "a string")
        if (opt == "base_url" or opt.endswith("_url")) and not _is_url(value):
            raise doc.err(k, f"must be an http:// or https:// URL (got {value!r})")
        return value.rstrip("/") if opt.endswith("url") else value
    if spec.type is bool:
        return _expect(doc, k, value, bool, "true or false")
    if spec.type is list:
        return list(_str_list(doc, k, value))
    if spec.type == sources_mod.DURATION:
        return _duration(doc, k, value)
    integer = spec.type is int
    return _number(doc, k, value, minimum=1 if integer else 0.001, integer=integer)


def _duration(doc, key, value) -> float:
    secs = parse_duration(value)
    if secs is None:
        raise doc.err(key, f"must be a duration like 90, 30m, 1h or 1d (got {value!r})")
    return secs


def _named_entries(doc, section: str, raw: list, keys: tuple, required: tuple, what: str):
    """(key path, mapping, name) for each entry of a list of named mappings (queries, rules):
    known keys only, required keys present, names valid and unique."""
    seen = set()
    for i, entry in enumerate(raw):
        key = f"{section}[{i}]"
        _mapping(doc, key, entry, keys)
        for k in required:
            if k not in entry:
                raise doc.err(key, f"missing required key '{k}'")
        name = _name(doc, f"{key}.name", entry["name"])
        if name in seen:
            raise doc.err(f"{key}.name", f"duplicate {what} name {name!r}")
        seen.add(name)
        yield key, entry, name


def _queries(doc, raw) -> tuple[Query, ...]:
    if raw is None:
        raise doc.err("queries", "missing: add at least one query (what to search for)")
    _expect(doc, "queries", raw, list, "a list of queries")
    if not raw:
        raise doc.err("queries", "must list at least one query")
    out = []
    for key, q, name in _named_entries(doc, "queries", raw, QUERY_KEYS, ("name", "search"), "query"):
        _expect(doc, f"{key}.search", q["search"], str, "a string")
        try:
            search = parse_search(q["search"])
        except QueryError as e:
            raise doc.err(f"{key}.search", f"{e} in {q['search']!r}") from None
        srcs = _source_names(doc, f"{key}.sources", q["sources"] if "sources" in q else sources_mod.default_names())
        feeds = _str_list(doc, f"{key}.feeds", q.get("feeds", []), "a list of feed URLs")
        for j, url in enumerate(feeds):
            if not _is_url(url):
                raise doc.err(f"{key}.feeds[{j}]", f"must be an http:// or https:// URL (got {url!r})")
        out.append(Query(name=name, search=search, sources=srcs, feeds=feeds))
    return tuple(out)


def _is_url(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"\s", value)


def _source_names(doc, key, value) -> tuple[str, ...]:
    names = _str_list(doc, key, value, "a list of source names")
    for i, n in enumerate(names):
        if not sources_mod.is_known(n):
            raise doc.err(f"{key}[{i}]", f"unknown source {n!r} (known: {', '.join(sources_mod.names())})"
                                         f"{did_you_mean(n, sources_mod.names())}")
    return names


def _groups(doc, raw) -> dict[str, tuple[str, ...]]:
    """`groups:` name -> terms, defined once and used in rules as `@name`. A group holds words,
    phrases and prefixes only: no @name (so no cycles) and no NEAR."""
    _expect(doc, "groups", raw, dict, "a mapping of group names to lists of words or phrases")
    out = {}
    for name, terms in raw.items():
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
            raise doc.err(f"groups.{name}", f"{name!r} is not a group name (letters, digits, '-' and '_'; "
                                            "starting with a letter)")
        terms = _str_list(doc, f"groups.{name}", terms, "a list of words or phrases")
        if not terms:
            raise doc.err(f"groups.{name}", "must list at least one word or phrase")
        for j, term in enumerate(terms):
            try:
                kind = rule_term(term)[0]
            except ValueError as e:
                raise doc.err(f"groups.{name}[{j}]", str(e)) from None
            if kind != "term":
                raise doc.err(f"groups.{name}[{j}]", f"{term!r}: a group holds words, phrases and prefixes only "
                                                     "(no @group, no NEAR)")
        out[name] = terms
    return out


def _rules(doc, raw, groups: dict[str, tuple[str, ...]] | None = None) -> tuple[Rule, ...]:
    import regex

    groups = groups or {}
    _expect(doc, "rules", raw, list, "a list of rules")
    out = []
    for key, r, name in _named_entries(doc, "rules", raw, RULE_KEYS, ("name", "urgency"), "rule"):
        urgency = _urgency(doc, f"{key}.urgency", r["urgency"])
        lists = {k: _str_list(doc, f"{key}.{k}", r[k]) for k in ("any", "all", "none") if k in r}
        used: dict[str, tuple[str, ...]] = {}
        for k, terms in lists.items():
            for j, term in enumerate(terms):
                try:
                    form = rule_term(term)
                except ValueError as e:
                    raise doc.err(f"{key}.{k}[{j}]", str(e)) from None
                parts = (form[1], form[3]) if form[0] == "near" else (form,)
                for kind, value in parts:
                    if kind != "group":
                        continue
                    if value not in groups:
                        known = f" (defined: {', '.join(groups)})" if groups else " (none defined under 'groups:')"
                        raise doc.err(f"{key}.{k}[{j}]", f"unknown group @{value}{known}"
                                                         f"{did_you_mean('@' + value, ['@' + g for g in groups])}")
                    used[value] = groups[value]
        pattern = r.get("regex")
        if pattern is not None:
            _expect(doc, f"{key}.regex", pattern, str, "a regular expression string")
            try:
                regex.compile(pattern, regex.IGNORECASE | regex.UNICODE)
            except (regex.error, OverflowError, RecursionError, ValueError) as e:
                raise doc.err(f"{key}.regex", f"invalid regular expression: {e}") from None
        if not lists.get("any") and not lists.get("all") and pattern is None:
            raise doc.err(key, "needs at least one of 'any', 'all' or 'regex' (what makes the rule fire)")
        fields = _str_list(doc, f"{key}.fields", r.get("fields", list(DEFAULT_FIELDS)))
        for j, f in enumerate(fields):
            if f not in FIELDS:
                raise doc.err(f"{key}.fields[{j}]", f"unknown field {f!r} (known: {', '.join(FIELDS)})")
        srcs = _source_names(doc, f"{key}.sources", r.get("sources", []))
        out.append(Rule(name=name, urgency=urgency, any=lists.get("any", ()), all=lists.get("all", ()),
                        none=lists.get("none", ()), regex=pattern, fields=fields, sources=srcs,
                        groups=tuple(used.items())))
    return tuple(out)


class _OneRuleDoc(_Doc):
    """A rule written on its own (`rules backtest --rule`): its keys are named as written there
    (`urgency`, `any[0]`), not as the entry of a config's `rules:` list it is checked as."""

    def err(self, key: str, message: str) -> ConfigError:
        key = re.sub(r"^rules(\[0\])?\.?", "", key)
        return ConfigError(message, file=self.file, line=self.line(key), key=key or None)


def parse_rule(text: str, groups: dict[str, tuple[str, ...]] | None = None, label: str = "--rule") -> Rule:
    """One rule written as YAML (`{name: refund, urgency: high, any: [refund*]}`), checked exactly
    as an entry of `rules:` is (its `@groups` from `groups`, a config's); errors name `label`."""
    doc = _OneRuleDoc(label)
    try:
        raw = _load_yaml(text, doc)
    except ConfigError as e:
        # YAML marks an unclosed bracket at the end of the stream: the line after a one-line rule.
        e.line = min(e.line, text.count("\n") + 1) if e.line else e.line
        raise ConfigError(e.message, file=e.file, line=e.line, key=e.key) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"must be one rule as a YAML mapping, like {{name: refund, urgency: high, any: [refund*]}} "
                          f"(got {_type_name(raw)})", file=label)
    raw = _substitute(raw, "", doc)
    return _rules(doc, [raw], groups or {})[0]
