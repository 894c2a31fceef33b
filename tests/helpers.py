"""What many test files share: the one time helper and the one way tests store mentions (the
function `poll` itself stores through)."""

from __future__ import annotations

from datetime import datetime

from mentionwatch.model import Mention, utc_text


def mention(nid: str, text: str, created_at: str, *, source: str = "hackernews", author: str = "alice",
            title: str = "", kind: str = "comment", url: str | None = None) -> Mention:
    """A mention as a source yields it."""
    return Mention(source=source, native_id=nid, url=url or f"https://{source}.test/item/{nid}", author=author,
                   title=title, text=text, created_at=created_at, kind=kind)


def iso(when: float | datetime) -> str:
    """Epoch seconds or a datetime as the UTC text mentionwatch stores and emits."""
    return utc_text(when)


def store_mentions(conn, cfg, mentions, query: str = "acme", seen_at: str | None = None,
                   timeouts: dict | None = None) -> list[str]:
    """Store mentions exactly as a poll does (ingest.save_found: tag with `cfg`'s rules, or the
    example config's when None, link repeat contacts, group cross-posts, insert); return the ids
    that were new."""
    from mentionwatch import config
    from mentionwatch.ingest import save_found
    from mentionwatch.ingest.rules import Tagger

    if cfg is None:
        cfg = config.parse(config.example_config_text(), None)

    return save_found(conn, list(mentions), query, Tagger(cfg.rules, cfg.default_urgency), cfg.repeat_window,
                      {} if timeouts is None else timeouts, seen_at=seen_at)
