"""Reports: what the stored mentions, events and polls say about the team's service, coverage and
rules (stats, charts, rule quality, back-tests)."""
