"""Ingest: from what sources return to stored, tagged mentions.

  run.py       poll orchestration: every (query, source) pair that is due, concurrently
  tagging.py   the query check and tagging (rules.py: the rule engine), with the worker pool
  save.py      the one save path, used by poll and by everything that stores mentions
  repeats.py   repeat contacts found as mentions are stored
  lock.py      one poll at a time per database
  retag.py     the current rules applied again to every stored mention
"""

from mentionwatch.ingest.lock import PollLock
from mentionwatch.ingest.retag import retag
from mentionwatch.ingest.run import PollResult, SourceRun, credentials, pairs, poll, poll_async
from mentionwatch.ingest.save import save_found

__all__ = ["PollLock", "PollResult", "SourceRun", "credentials", "pairs", "poll", "poll_async", "retag", "save_found"]
