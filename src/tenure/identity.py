"""Identity resolution: which account does a contact, lead or event with an email belong to?

First by email domain (free-mail domains never match), then by fuzzy company name with a confidence.
Below the threshold nothing is guessed: the caller holds the record for review (`tenure matches`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

FREE_MAIL = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "naver.com",
        "hanmail.net",
        "daum.net",
        "zoho.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "btinternet.com",
        "rediffmail.com",
        "seznam.cz",
    ]
)

_LEGAL_SUFFIX = re.compile(
    r"((^|[\s,]+)(inc|incorporated|llc|l\.l\.c|ltd|limited|gmbh|ag|sa|sas|bv|nv|plc|corp|"
    r"corporation|co|company|pty|oy|ab|as|kk|srl|spa)\.?)+$",
    re.IGNORECASE,
)


DEFAULT_THRESHOLD = 0.9  # TENURE_MATCH_THRESHOLD's default (tenure.settings)


def normalise_company(name: str) -> str:
    """``"ACME Robotics, Inc."`` -> ``"acme robotics"``: what fuzzy matching compares."""
    text = _LEGAL_SUFFIX.sub("", name.strip().lower())
    return re.sub(r"[^\w]+", " ", text).strip()


def email_domain(email: str) -> str | None:
    """The domain part of an email address, lower-cased."""
    _, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return None
    return domain or None


@dataclass(frozen=True)
class Match:
    """The outcome of resolving one record: an account or none, and how sure we are."""

    account_id: str | None
    confidence: float
    method: str
    candidates: tuple[tuple[str, float], ...] = ()

    @property
    def matched(self) -> bool:
        return self.account_id is not None


@dataclass
class AccountDirectory:
    """What matching needs to know about the accounts: their names and domains."""

    threshold: float = DEFAULT_THRESHOLD
    by_domain: dict[str, set[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def add(self, account_id: str, name: str | None, domains: Iterable[str] | None) -> None:
        for domain in domains or ():
            domain = domain.strip().lower().removeprefix("www.")
            if domain and domain not in FREE_MAIL:
                self.by_domain.setdefault(domain, set()).add(account_id)
        if name:
            normalised = normalise_company(name)
            if normalised:
                self.names[account_id] = normalised

    def match(self, email: str | None, company: str | None) -> Match:
        """Resolve by email domain, then by company name; ``account_id`` is None when unsure."""
        by_domain = self._by_domain(email) if email else None
        if by_domain is not None and by_domain.matched:
            return by_domain
        by_name = self._by_name(company) if company else None
        if by_name is not None and by_name.confidence >= self.threshold:
            return by_name
        return by_name or by_domain or Match(None, 0.0, "none")

    def _by_domain(self, email: str) -> Match | None:
        domain = email_domain(email)
        if domain is None:
            return None
        if domain in FREE_MAIL:
            return Match(None, 0.0, "free-mail")
        parts = domain.split(".")
        for start in range(len(parts) - 1):
            owners = self.by_domain.get(".".join(parts[start:]))
            if owners and len(owners) == 1:
                return Match(next(iter(owners)), 1.0, "domain")
            if owners:
                candidates = tuple((owner, 0.5) for owner in sorted(owners))
                return Match(None, 0.5, "domain-ambiguous", candidates)
        return None

    def _by_name(self, company: str) -> Match:
        wanted = normalise_company(company)
        if not wanted or not self.names:
            return Match(None, 0.0, "name")
        found = process.extract(wanted, self.names, scorer=fuzz.token_sort_ratio, limit=3)
        candidates = tuple((key, round(score / 100.0, 3)) for _, score, key in found)
        best_id, best = candidates[0]
        if best >= self.threshold:
            return Match(best_id, best, "name", candidates)
        return Match(None, best, "name", candidates)
