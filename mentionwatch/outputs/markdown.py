"""Markdown for people and tickets: the handover, and the one wording of a history event."""

from __future__ import annotations

from mentionwatch.model import duration_text
from mentionwatch.text import safe


def handover_markdown(s: dict) -> str:
    """The story as Markdown: paste it into a ticket or send it to the team taking over.
    Stranger-written text is quoted, not interpreted: it sits in blockquotes, escaped."""
    def esc(text: str | None) -> str:
        return safe(text or "", keep_newlines=True).replace("\\", "\\\\").replace("<", "&lt;")

    def inline(text: str | None) -> str:
        """One line, Markdown punctuation escaped: a title cannot become a heading or a link."""
        flat = " ".join(safe(text or "", keep_newlines=False).split())
        return "".join("\\" + ch if ch in "\\`*_[]#<>|!" else ch for ch in flat)

    sla_text = f"due {s['sla_due_at']}, " + (f"{duration_text(s['sla_left_s'])} left" if s["sla_left_s"] >= 0
                                             else f"overdue by {duration_text(-s['sla_left_s'])}")
    lines = [
        f"# Handover: {esc(s['id'])}",
        "",
        f"- **Customer:** {esc(s['author']) or '(unknown)'} on {s['source']}",
        f"- **Urgency:** {s['urgency']} · **State:** {s['state']} · **Owner:** {esc(s['assignee']) or 'unassigned'}",
        f"- **SLA:** {sla_text}",
        f"- **Linked issues:** {', '.join(esc(x) for x in s['links']) or 'none'}",
        f"- **Generated:** {s['generated_at']}",
        "",
        f"## Conversation ({len(s['conversation'])} mention{'s' if len(s['conversation']) != 1 else ''})",
    ]
    for c in s["conversation"]:
        lines += ["", f"### {esc(c['created_at'])} · [{esc(c['id'])}]({esc(c['url'])}) · {c['urgency']} · {c['state']}"]
        if c["title"]:
            lines.append(f"**{inline(c['title'])}**")
        lines += [""] + ["> " + line for line in esc(c["text"]).splitlines()]
        if c["links"]:
            lines += ["", "Linked: " + ", ".join(esc(x) for x in c["links"])]
        if c["events"]:
            lines += ["", "History:"]
            for e in c["events"]:
                lines.append("- " + event_text(e, esc))
    return "\n".join(lines) + "\n"


def event_text(e: dict, esc=lambda x: x or "") -> str:
    who = esc(e.get("who")) or "?"
    kind = e.get("kind") or "state"
    if kind == "state":
        text = f"{e['from_state']} → {e['to_state']}"
    elif kind == "assign":
        text = f"assigned to {esc(e['to_state']) or 'nobody'}" + (f" (was {esc(e['from_state'])})" if e["from_state"] else "")
    elif kind == "followup":
        text = f"follow-up set for {e['to_state']}"
    elif kind == "link":
        text = f"linked to {esc(e['to_state'])}"
    elif kind == "reply":
        text = "reply drafted"
    else:
        text = kind
    note = f": {esc(e['note'])}" if e.get("note") else ""
    return f"{e['at']} {who}: {text}{note}"
