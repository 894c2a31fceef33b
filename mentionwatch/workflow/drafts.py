"""Replies in the team's voice."""

from __future__ import annotations


def reply_draft(m: dict, body: str, signer: str) -> str:
    """A reply in the team's voice, signed by the person who drafted it: no anonymous answers."""
    greeting = f"Hi {m['author']}," if m.get("author") else "Hi,"
    return f"{greeting}\n\n{body.strip()}\n\n— {signer}\n"


def fix_followup_text(ref: str) -> str:
    return (f"Good news: the problem you reported is fixed ({ref}). Could you check it works for you now? "
            "If anything is still wrong, reply here and we will pick it up right away.")
