"""The social-support workflow on top of the store.

  triage.py   what needs an answer first
  clocks.py   response clocks in staffed time; the team's zone for times people type
  story.py    what `show` adds to a mention, and the conversation a handover carries
  drafts.py   reply drafts
"""

from mentionwatch.workflow.clocks import local_zone, parse_when, staffing_note, with_clock
from mentionwatch.workflow.drafts import fix_followup_text, reply_draft
from mentionwatch.workflow.story import details, story
from mentionwatch.workflow.triage import triage_rows

__all__ = ["details", "fix_followup_text", "local_zone", "parse_when", "reply_draft", "staffing_note", "story",
           "triage_rows", "with_clock"]
