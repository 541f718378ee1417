"""moderation: scores, decisions, the review queue and reports."""
