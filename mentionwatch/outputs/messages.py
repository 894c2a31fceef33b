"""Alert messages: what a channel receives about mentions, digests, escalations and spikes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """One message, in every form a channel may want. Text from posts is inert in all of them."""
    title: str
    markdown: str  # for channels that render Markdown (Slack, Discord, Teams, Matrix, Telegram, ...)
    text: str  # plain text (mail, webhooks, SMS-like channels)
    data: dict = field(default_factory=dict)  # the JSON object a `command` channel gets on stdin
