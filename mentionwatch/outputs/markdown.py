"""Markdown for people and tickets: the handover, and the one wording of a history event."""

from __future__ import annotations

from mentionwatch.model import duration_text
from mentionwatch.outputs.when import shown
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

    lines = [
        f"# Handover: {esc(s['id'])}",
        "",
        f"- **Customer:** {esc(s['author']) or '(unknown)'} on {s['source']}",
        f"- **Urgency:** {s['urgency']} · **State:** {s['state']} · **Owner:** {esc(s['assignee']) or 'unassigned'}",
        f"- **SLA:** {clock_text(s)}",
    ]
    if next_clock(s):
        lines.append(f"- **First response:** {first_response_text(s)}")
    lines += [
        f"- **Linked issues:** {', '.join(esc(x) for x in s['links']) or 'none'}",
        f"- **Generated:** {shown(s['generated_at'])}",
        "",
        f"## Conversation ({len(s['conversation'])} mention{'s' if len(s['conversation']) != 1 else ''})",
    ]
    for c in s["conversation"]:
        lines += ["", f"### {esc(shown(c['created_at']))} · [{esc(c['id'])}]({esc(c['url'])}) · {c['urgency']} · {c['state']}"]
        if c["title"]:
            lines.append(f"**{inline(c['title'])}**")
        lines += [""] + ["> " + line for line in esc(c["text"]).splitlines()]
        if c["links"]:
            lines += ["", "Linked: " + ", ".join(esc(x) for x in c["links"])]
        if c["events"]:
            lines += ["", "History:"]
            for e in c["events"]:
                if e.get("kind") == "reply" and e.get("note"):
                    # A draft spans lines: quoted under its bullet, it cannot break out of the list.
                    lines.append("- " + event_text({**e, "note": None}, esc) + ":")
                    lines += ["  > " + line if line else "  >" for line in esc(e["note"]).rstrip("\n").split("\n")]
                else:
                    lines.append("- " + event_text(e, esc))
    return "\n".join(lines) + "\n"


def next_clock(m: dict) -> bool:
    """Whether the current response clock is a next-response one (started by a reopen)."""
    return bool(m.get("clock_started_at")) and m["clock_started_at"] != m.get("created_at")


def answered_text(response_s: int | None, sla_s: int, met: bool | None) -> str:
    """How long (in staffed time) an answer took, against the SLA: "answered in 12m (SLA 15m: met)"."""
    if response_s is None:
        return "answered (time not recorded)"
    return f"answered in {duration_text(response_s)} (SLA {duration_text(sla_s)}: {'met' if met else 'missed'})"


def clock_text(m: dict) -> str:
    """The current response clock in words: time left or overdue only while it runs."""
    prefix = "next response " if next_clock(m) else ""
    left = m.get("sla_left_s")
    if left is not None:
        due = f"{prefix}due {shown(m['sla_due_at'])}, "
        return due + (f"{duration_text(left)} left" if left >= 0 else f"overdue by {duration_text(-left)}")
    if m.get("responded_at") or m.get("state") != "ignored":
        at = f" at {shown(m['responded_at'])}" if m.get("responded_at") else ""
        return prefix + answered_text(m.get("response_s"), m["sla_s"], m.get("sla_met")) + at
    return f"{prefix}no answer needed (ignored)"


def first_response_text(m: dict) -> str:
    if not m.get("first_response_at"):
        return "none"
    return (answered_text(m.get("first_response_s"), m["sla_s"], m.get("first_response_met"))
            + f" at {shown(m['first_response_at'])}")


def event_text(e: dict, esc=lambda x: x or "") -> str:
    who = esc(e.get("who")) or "?"
    kind = e.get("kind") or "state"
    if kind == "state":
        text = f"{e['from_state']} → {e['to_state']}"
    elif kind == "assign":
        text = f"assigned to {esc(e['to_state']) or 'nobody'}" + (f" (was {esc(e['from_state'])})" if e["from_state"] else "")
    elif kind == "followup":
        text = f"follow-up set for {shown(e['to_state'])}"
    elif kind == "urgency":
        text = f"urgency {e['from_state']} → {e['to_state']}" + (" (by hand)" if e["to_state"] != "rules" else "")
    elif kind == "link":
        text = f"linked to {esc(e['to_state'])}"
    elif kind == "reply":
        text = "reply drafted"
    else:
        text = kind
    note = f": {esc(e['note'])}" if e.get("note") else ""
    return f"{shown(e['at'])} {who}: {text}{note}"
