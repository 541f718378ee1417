"""Tier 1: synchronous, rule-based spam checks (links, repetition, blocklists, spam phrases).

Each rule that fires adds its weight to the score (capped at 1) and its name to the reasons.
The rules are precompiled once; a check is a handful of regex scans over at most a few
thousand characters, well under a millisecond.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

_URL = re.compile(r"(?:https?://|www\.)([^\s/?#]+)\S*", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#])#\w+")
_CHAR_RUN = re.compile(r"(.)\1{9,}", re.DOTALL)

DEFAULT_SPAM_PHRASES = (
    "buy now",
    "click here",
    "free money",
    "work from home",
    "limited time offer",
    "act now",
    "100% free",
    "earn $",
    "double your",
    "risk-free",
    "miracle cure",
    "crypto giveaway",
    "send me your password",
    "verify your account",
)


@dataclass(frozen=True)
class Verdict:
    score: float
    reasons: tuple[str, ...]
    reject: bool


@dataclass(frozen=True)
class RuleWeights:
    link_density: float = 0.5
    blocked_domain: float = 0.9
    blocked_term: float = 0.9
    char_repetition: float = 0.3
    word_repetition: float = 0.4
    excessive_mentions: float = 0.4
    excessive_hashtags: float = 0.3
    spam_phrase: float = 0.35


@dataclass(frozen=True)
class RuleSet:
    blocked_terms: frozenset[str] = frozenset()
    blocked_domains: frozenset[str] = frozenset()
    spam_phrases: tuple[str, ...] = DEFAULT_SPAM_PHRASES
    # More than this share of words being links is spam-like.
    max_link_ratio: float = 0.3
    max_mentions: int = 10
    max_hashtags: int = 15
    # A word making up more than this share of a text of 8+ words.
    max_word_share: float = 0.5
    reject_at: float = 0.9
    weights: RuleWeights = field(default_factory=RuleWeights)

    @cached_property
    def _phrases(self) -> re.Pattern[str]:
        phrases = sorted({p.casefold() for p in self.spam_phrases}, key=len, reverse=True)
        # An empty list matches nothing.
        return re.compile("|".join(re.escape(p) for p in phrases) or r"(?!x)x")

    def check(self, text: str) -> Verdict:
        folded = text.casefold()
        domains = [_domain(m) for m in _URL.findall(folded)]
        words = _WORD.findall(_URL.sub(" ", folded))
        fired: list[tuple[str, float]] = []
        w = self.weights

        # One link in a short post is normal; several links with little text are not.
        if len(domains) >= 2 and len(domains) / (len(words) + len(domains)) > self.max_link_ratio:
            fired.append(("link-density", w.link_density))
        if any(_blocked(domain, self.blocked_domains) for domain in domains):
            fired.append(("blocked-domain", w.blocked_domain))
        if self.blocked_terms and self.blocked_terms.intersection(words):
            fired.append(("blocked-term", w.blocked_term))
        if _CHAR_RUN.search(folded):
            fired.append(("repeated-characters", w.char_repetition))
        if len(words) >= 8:
            _, top = Counter(words).most_common(1)[0]
            if top / len(words) > self.max_word_share:
                fired.append(("repeated-words", w.word_repetition))
        if len(_MENTION.findall(folded)) > self.max_mentions:
            fired.append(("excessive-mentions", w.excessive_mentions))
        if len(_HASHTAG.findall(folded)) > self.max_hashtags:
            fired.append(("excessive-hashtags", w.excessive_hashtags))
        phrases = {m.group(0) for m in self._phrases.finditer(folded)}
        if phrases:
            fired.append(("spam-phrase", min(1.0, w.spam_phrase * len(phrases))))

        score = min(1.0, sum(weight for _, weight in fired))
        return Verdict(
            score=round(score, 4),
            reasons=tuple(name for name, _ in fired),
            reject=score >= self.reject_at,
        )


def _domain(host: str) -> str:
    return host.split("@")[-1].split(":")[0].removeprefix("www.")


def _blocked(domain: str, blocked: Iterable[str]) -> bool:
    return any(domain == b or domain.endswith("." + b) for b in blocked)
