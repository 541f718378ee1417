"""Tier-1 rules on real texts: what passes, what is flagged, what is refused."""

from __future__ import annotations

import pytest

from services.moderation.tier1.rules import RuleSet

RULES = RuleSet(
    blocked_terms=frozenset({"scamcoin"}), blocked_domains=frozenset({"malware.example"})
)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, ZAP.",
        "Morning run by the river, 10k in 52 minutes. Coffee next! #running",
        "Our write-up is here: https://example.com/blog/feed-ranking?ref=zap",
        "@ada @grace @linus thanks for the review!",
        "Sooo good",
    ],
)
def test_ordinary_posts_pass_clean(text: str) -> None:
    verdict = RULES.check(text)
    assert verdict.reasons == ()
    assert verdict.score == 0
    assert not verdict.reject


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "BUY NOW, click here for free money: http://a.test http://b.test http://c.test",
            "spam-phrase",
        ),
        ("get it at https://www.malware.example/install now", "blocked-domain"),
        ("get it at https://cdn.malware.example/x", "blocked-domain"),
        ("invest in ScamCoin today", "blocked-term"),
    ],
)
def test_clear_spam_is_refused_with_its_reason(text: str, reason: str) -> None:
    verdict = RULES.check(text)
    assert verdict.reject
    assert reason in verdict.reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("wooooooooooooooooow", "repeated-characters"),
        ("buy buy buy buy buy buy buy buy this", "repeated-words"),
        ("links http://a.test http://b.test http://c.test", "link-density"),
        (" ".join(f"@user{i}" for i in range(12)), "excessive-mentions"),
        (" ".join(f"#tag{i}" for i in range(16)), "excessive-hashtags"),
    ],
)
def test_suspicious_patterns_score_but_are_not_refused_alone(text: str, reason: str) -> None:
    verdict = RULES.check(text)
    assert reason in verdict.reasons
    assert 0 < verdict.score < 0.9
    assert not verdict.reject


def test_the_score_is_capped_at_one() -> None:
    text = "BUY NOW click here free money act now http://malware.example scamcoin " * 3
    assert RULES.check(text).score == 1.0
