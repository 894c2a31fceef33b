"""mentionwatch: brand-mention monitoring and social-support triage."""

__version__ = "0.1.0"
