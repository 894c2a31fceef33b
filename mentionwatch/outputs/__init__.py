"""What mentionwatch shows: data for tools, tables and text for people.

  funnel.py    the one output funnel every listing command ends in (JSON Lines or a table)
  jsonl.py     JSON Lines: the documented fields, inert on a terminal
  render.py    rich tables and the `show` view
  markdown.py  the handover, and the wording of history events
  health.py    completeness per query and source (what `health` reports)
"""
