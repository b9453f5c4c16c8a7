"""Routing as code: a versioned YAML file saying where alerts, digests and play steps are sent.

The file names *channels* (transports: a Slack incoming webhook, an SMTP server, a signed
webhook), *routes* (which alerts go to which channel, and to whom), the *owners* (account owner
name to email address and Slack member id), the daily *digest* and the channels automated *plays*
use. The format is in docs/routing.md.

Two kinds of mistake are told apart. A file Tenure cannot read as a routing file (not YAML, an
unknown key at the top or under ``digest`` or ``plays``, no ``version``, ``routes`` not a list,
a route without a valid unique name) raises :class:`RoutingError` (``file:line: field: message``, like the trigger file). Any
other mistake is a :class:`Problem` kept on the route or channel it touches: a route with a
problem, or whose channel has one, *sends nothing and says why* (:func:`check_routes`), while the
other routes keep working. Secrets given as ``*_env`` names are read when sending, so a variable
that is not set is a problem of the moment (:func:`check_routes` reads the environment).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from tenure.configfile import ConfigError, Reader, document, join, kind_of, locate, suggest
from tenure.triggers.definitions import DIRECTIONS, SEVERITIES

TYPES = ("slack", "email", "webhook")
PLAY_TYPES = ("email", "slack")  # the channels an automated play step can use
OWNER = "owner"  # ``to: owner``: the account owner's address (from ``owners``)
DIGEST, PLAYS, FILE = "digest", "plays", "(file)"  # route names of digests, play steps, the rest
MATCH_KEYS = ("severity", "direction", "trigger", "segment", "owner", "account")
ROUTE_NAME = 100  # the longest route name (the deliveries table keeps it in 200 characters)
LOOPBACK = ("localhost", "127.0.0.1", "::1")  # an SMTP login to these may go in clear text
_NAME = re.compile(r"[a-z0-9_-]+\Z")
_ADDRESS = re.compile(r"[^@\s<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOP_KEYS = ("version", "description", "channels", "routes", "owners", "digest", "plays")
_COMMON = ("type", "description", "max_attempts", "backoff_seconds", "timeout_seconds")
_CHANNEL_KEYS = {
    "slack": (*_COMMON, "webhook_url", "webhook_url_env"),
    "email": (*_COMMON, "host", "port", "sender", "starttls", "ssl", "username", "username_env",
              "password", "password_env"),
    "webhook": (*_COMMON, "url", "url_env", "secret", "secret_env"),
}  # fmt: skip
_ROUTE_KEYS = ("name", "description", "match", "channel", "to")
_DIGEST_KEYS = ("channel", "to")
_OWNER_KEYS = ("email", "slack")


class RoutingError(ConfigError):
    """A routing file Tenure cannot read; ``str()`` is ``file:line: field: message``."""


@dataclass(frozen=True)
class Problem:
    """Why a route or channel sends nothing: ``file:line: field: message``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    @property
    def why(self) -> str:
        """The problem without its file and line: ``field: message``."""
        return f"{self.field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field,
                "message": self.message}  # fmt: skip


@dataclass(frozen=True)
class Secret:
    """A value given inline (``url: ...``) or by naming an environment variable (``url_env:
    NAME``), which is read when sending (so the secret is never in the file or the store)."""

    path: str  # the field as written, e.g. channels.crm.secret_env
    line: int
    value: str | None = None
    env: str | None = None
    url: bool = False  # a URL (checked when read from the environment, too)

    def read(self, environ: Mapping[str, str]) -> str | None:
        """The value, or None when its environment variable is not set (or empty)."""
        return self.value if self.env is None else (environ.get(self.env) or None)


@dataclass(frozen=True)
class Channel:
    """A transport: ``slack`` (incoming webhook), ``email`` (SMTP) or ``webhook`` (signed POST)."""

    name: str
    type: str
    path: str
    url: Secret | None = None  # slack: webhook_url; webhook: url
    secret: Secret | None = None  # webhook: the signing secret
    username: Secret | None = None  # email: SMTP login (with password)
    password: Secret | None = None
    host: str = "localhost"
    port: int = 25
    sender: str = ""
    starttls: bool = False
    ssl: bool = False
    max_attempts: int = 5
    backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0
    problems: tuple[Problem, ...] = ()

    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for s in (self.url, self.secret, self.username, self.password) if s)


@dataclass(frozen=True)
class Route:
    """Alerts that match go to ``channel``, addressed to ``to``. The digest is a route too (it
    matches nothing; :mod:`tenure.routing.digest` gives it its messages)."""

    name: str
    path: str
    channel: str
    to: tuple[str, ...] = ()
    match: Mapping[str, frozenset[str]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def matches(self, facts: Mapping[str, object]) -> bool:
        """AND across the ``match`` keys, OR within each key's list; no keys: every alert."""
        return all(facts.get(key) in allowed for key, allowed in self.match.items())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, "to": list(self.to),
                "match": {k: sorted(v) for k, v in self.match.items()}}  # fmt: skip


@dataclass(frozen=True)
class Owner:
    """Where an account owner is reached: an email address and a Slack member id (U0123...)."""

    email: str | None = None
    slack: str | None = None


@dataclass(frozen=True)
class Plays:
    """The channels automated play steps use, by step channel (``email``, ``slack``)."""

    channels: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    path: str = PLAYS


@dataclass(frozen=True)
class RoutingFile:
    """A routing file, read: channels, routes, owners, the digest and the plays' channels."""

    version: str
    origin: str
    channels: Mapping[str, Channel]
    routes: tuple[Route, ...]
    owners: Mapping[str, Owner] = field(default_factory=dict)
    digest: Route | None = None
    plays: Plays = field(default_factory=Plays)
    problems: tuple[Problem, ...] = ()  # not tied to one route: owners, unused channels
    description: str = ""
    sha256: str = ""

    def route(self, name: str) -> Route | None:
        """The route called ``name`` (``digest``: the digest's)."""
        if name == DIGEST:
            return self.digest
        return next((r for r in self.routes if r.name == name), None)

    def play_channel(self, kind: str) -> Channel | None:
        """The channel for play steps sent by ``kind`` (email, slack): the one named under
        ``plays``, else the first channel of that type in the file."""
        named = self.plays.channels.get(kind)
        if named is not None:
            channel = self.channels.get(named)
            return channel if channel is not None and channel.type == kind else None
        return next((c for c in self.channels.values() if c.type == kind), None)


def routes_in_force(setting: str) -> RoutingFile | None:
    """The routing file named by the TENURE_ROUTES setting; None when it is empty (the in-app
    inbox only). :class:`RoutingError` when the file cannot be read as a routing file."""
    return load_routes(Path(setting)) if setting else None


def load_routes(path: Path | str) -> RoutingFile:
    """Read and validate a routing file; :class:`RoutingError` when it cannot be read as one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RoutingError(str(path), 1, "(document)", f"cannot read the file ({err})") from None
    return parse_routes(text, str(path))


def parse_routes(text: str, origin: str = "<routes>") -> RoutingFile:
    data, lines = document(text, origin, RoutingError)
    return _Reader(origin, lines).read(data, text)


def check_routes(
    routing: RoutingFile, environ: Mapping[str, str] | None = None
) -> dict[str, list[Problem]]:
    """The problems of every route (an empty list: it works), of the digest (``digest``), of the
    ``plays`` section and its channels (``plays``, when the file has one) and of the rest of the
    file (``(file)``: owners, channels nothing names), reading the secrets' environment
    variables from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    found = {r.name: route_problems(routing, r, env) for r in routing.routes}
    if routing.digest is not None:
        found[DIGEST] = route_problems(routing, routing.digest, env)
    if routing.plays.channels:
        found[PLAYS] = play_problems(routing, env)
    rest = [*routing.problems, *_unused(routing, env)]
    if rest:
        found[FILE] = rest
    return found


def describe(routing: RoutingFile, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file as ``tenure routes`` and ``tenure routes check`` report it, as JSON values:
    ``file``, ``version``, ``routes`` (each route and the digest: :meth:`Route.to_dict` with its
    channel's ``type``, whether it ``sends`` and ``why`` not), ``problems`` (each problem once,
    :meth:`Problem.to_dict` with ``text`` and the ``routes`` it touches, ``plays`` and ``(file)``
    among them) and ``sends_nothing`` (route, ``plays``: why). Secrets' environment variables are
    read from ``environ`` (default: the process environment)."""
    checks = check_routes(routing, environ)
    rows = []
    for name, problems in checks.items():
        route = routing.route(name)
        if route is None:
            continue
        channel = routing.channels.get(route.channel)
        rows.append(route.to_dict() | {"type": channel.type if channel else None,
                                       "sends": not problems,
                                       "why": problems[0].why if problems else None})  # fmt: skip
    once: dict[Problem, list[str]] = {}
    for name, problems in checks.items():
        for p in problems:
            once.setdefault(p, []).append(name)
    return {"file": routing.origin, "version": routing.version, "routes": rows,
            "problems": [p.to_dict() | {"routes": names, "text": str(p)}
                         for p, names in once.items()],
            "sends_nothing": {name: found[0].why for name, found in checks.items()
                              if found and name != FILE}}  # fmt: skip


def route_problems(routing: RoutingFile, route: Route, environ: Mapping[str, str]) -> list[Problem]:
    """Why ``route`` sends nothing (empty: it sends): its own problems and its channel's."""
    channel = routing.channels.get(route.channel)
    if channel is None:
        return list(route.problems)  # the unknown channel is among them
    return [*route.problems, *channel_problems(routing, channel, environ)]


def channel_problems(
    routing: RoutingFile, channel: Channel, environ: Mapping[str, str]
) -> list[Problem]:
    """A channel's problems, with the environment variables its secrets name that are not set
    (or, for a URL, do not hold one)."""
    found = []
    for s in channel.secrets():
        value = s.read(environ) if s.env is not None else None
        if s.env is not None and value is None:
            found.append(Problem(routing.origin, s.line, s.path,
                                 f"environment variable {s.env} is not set"))  # fmt: skip
        elif s.url and value is not None and (why := url_problem(value, show=False)):
            found.append(Problem(routing.origin, s.line, s.path,
                                 f"environment variable {s.env}: {why}"))  # fmt: skip
    return [*channel.problems, *found]


def url_problem(value: str, show: bool = True) -> str | None:
    """Why ``value`` is not a URL a webhook can be sent to (an http(s) URL httpx can parse, with
    a host and a valid port), or None. ``show``: quote the value (not when it is a secret read
    from the environment)."""
    import httpx

    got = f", got {value!r}" if show else ""
    if not value.startswith(("https://", "http://")):
        return f"an http(s):// URL{got}"
    try:
        parsed = httpx.URL(value)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as err:
        return f"not a valid URL ({err}){got}"
    if not parsed.host:
        return f"a URL with a host{got}"
    if port is not None and not 0 < port < 65536:
        return f"a port from 1 to 65535, got {port}"
    return None


def play_problems(
    routing: RoutingFile, environ: Mapping[str, str], kind: str | None = None
) -> list[Problem]:
    """The problems of the ``plays`` section and of the channels play steps would use (only those
    of steps sent by ``kind``, email or slack, when given)."""
    kinds = PLAY_TYPES if kind is None else (kind,)
    found = [p for p in routing.plays.problems if p.field.removeprefix(f"{PLAYS}.") in kinds]
    for each in kinds:
        channel = routing.play_channel(each)
        if channel is not None:
            found += channel_problems(routing, channel, environ)
    return found


def sends_nothing(
    routing: RoutingFile, route: Route, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why ``route`` sends nothing (its first problem as ``field: message``), or None."""
    problems = route_problems(routing, route, os.environ if environ is None else environ)
    return problems[0].why if problems else None


def _unused(routing: RoutingFile, environ: Mapping[str, str]) -> list[Problem]:
    """Problems of channels no route, digest or play step uses (still worth fixing)."""
    used = {r.channel for r in routing.routes}
    used |= {routing.digest.channel} if routing.digest else set()
    if routing.plays.channels:  # then check_routes reports the play channels under plays
        used |= {c.name for c in map(routing.play_channel, PLAY_TYPES) if c is not None}
    return [p for c in routing.channels.values() if c.name not in used
            for p in channel_problems(routing, c, environ)]  # fmt: skip


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.1, ::1): a login to it stays on the machine."""
    if host.lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_address(text: str) -> bool:
    """An email address (``ana@example.com``), optionally with a name (``Ana <ana@...>``)."""
    _name, address = parseaddr(text)
    return bool(address) and _ADDRESS.match(address) is not None


class _Reader(Reader):
    """Reads the document: raises for what makes it unreadable, collects every other problem."""

    error = RoutingError

    def problem(self, path: str, message: str) -> Problem:
        error = locate(self.lines, self.origin, path, message)
        return Problem(error.file, error.line, error.field, error.message)

    def read(self, data: object, text: str) -> RoutingFile:
        root = self.strict_table(data, "", _TOP_KEYS, ("version",))
        version = root["version"]
        if not isinstance(version, int | str) or isinstance(version, bool):
            raise self.fail("version", f"a whole number or a version like '2.1', got {kind_of(version)}")  # fmt: skip
        channels = self.channels(root.get("channels") or {})
        owners, problems = self.owners(root.get("owners") or {})
        routes = self.routes(root.get("routes") or [], channels)
        return RoutingFile(
            str(version), self.origin, channels, routes, owners,
            self.digest(root.get("digest"), channels), self.plays(root.get("plays"), channels),
            tuple(problems), str(root.get("description") or ""),
            hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )  # fmt: skip

    # Channels ----------------------------------------------------------------------------------

    def channels(self, value: object) -> dict[str, Channel]:
        if not isinstance(value, dict):
            raise self.fail("channels", f"a mapping of channel names to channels, got {kind_of(value)}")  # fmt: skip
        return {str(name): self.channel(str(name), spec) for name, spec in value.items()}

    def channel(self, name: str, spec: object) -> Channel:
        path = join("channels", name)
        problems: list[Problem] = []
        if not _NAME.match(name):
            problems.append(self.problem(path, "a channel name is lower-case letters, digits, - and _"))  # fmt: skip
        if not isinstance(spec, dict):
            problems.append(self.problem(path, f"a mapping with a type, got {kind_of(spec)}"))
            return Channel(name, "", path, problems=tuple(problems))
        kind = spec.get("type")
        if kind not in TYPES:
            problems.append(self.problem(join(path, "type"), self.type_message(kind)))
            return Channel(name, str(kind or ""), path, problems=tuple(problems))
        problems += self.unknown_keys(spec, path, _CHANNEL_KEYS[str(kind)])
        fields = {**self.retries(spec, path, problems), **self.transport(str(kind), spec, path, problems)}  # fmt: skip
        return Channel(name, str(kind), path, **fields, problems=tuple(problems))

    def type_message(self, kind: object) -> str:
        if kind is None:
            return f"required but missing (one of {', '.join(TYPES)})"
        return f"unknown type {kind!r}{suggest(str(kind), TYPES)}"

    def retries(self, spec: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
        return {
            "max_attempts": self.whole(spec, "max_attempts", path, 5, 1, problems),
            "backoff_seconds": self.number(spec, "backoff_seconds", path, 60.0, 0.0, problems),
            "timeout_seconds": self.number(spec, "timeout_seconds", path, 10.0, 0.001, problems),
        }

    def transport(
        self, kind: str, spec: dict[str, Any], path: str, problems: list[Problem]
    ) -> dict[str, Any]:
        if kind == "slack":
            return {"url": self.secret(spec, "webhook_url", path, problems, url=True)}
        if kind == "webhook":
            return {"url": self.secret(spec, "url", path, problems, url=True),
                    "secret": self.secret(spec, "secret", path, problems)}  # fmt: skip
        return self.smtp(spec, path, problems)

    def smtp(self, spec: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
        sender = spec.get("sender")
        if not isinstance(sender, str) or not is_address(sender):
            what = "required but missing" if sender is None else f"an email address, got {kind_of(sender)}"  # fmt: skip
            problems.append(self.problem(join(path, "sender"), what))
        host = spec.get("host", "localhost")
        if not isinstance(host, str) or not host:
            problems.append(self.problem(join(path, "host"), f"a host name, got {kind_of(host)}"))
        found: dict[str, Any] = {
            "host": str(host), "sender": str(sender or ""),
            "port": self.whole(spec, "port", path, 25, 1, problems),
            "starttls": self.flag(spec, "starttls", path, problems),
            "ssl": self.flag(spec, "ssl", path, problems),
            "username": self.secret(spec, "username", path, problems, required=False),
            "password": self.secret(spec, "password", path, problems, required=False),
        }  # fmt: skip
        if (found["username"] is None) != (found["password"] is None):
            problems.append(self.problem(path, "give both username and password, or neither"))
        if found["ssl"] and found["starttls"]:
            problems.append(self.problem(join(path, "starttls"), "give ssl or starttls, not both"))
        login: Secret | None = found["password"]
        if login and not (found["ssl"] or found["starttls"]) and not is_loopback(found["host"]):
            problems.append(self.problem(login.path, "would send the password in clear text: set "
                                         "starttls or ssl (or send through localhost)"))  # fmt: skip
        return found

    def secret(
        self, spec: dict[str, Any], key: str, path: str, problems: list[Problem],
        required: bool = True, url: bool = False,
    ) -> Secret | None:  # fmt: skip
        inline, named = spec.get(key), spec.get(f"{key}_env")
        if inline is not None and named is not None:
            problems.append(self.problem(join(path, f"{key}_env"), f"give {key} or {key}_env, not both"))  # fmt: skip
        elif named is not None:
            where = join(path, f"{key}_env")
            if isinstance(named, str) and _ENV.match(named):
                return Secret(where, self.line(where), env=named, url=url)
            problems.append(self.problem(where, f"an environment variable name, got {kind_of(named)}"))  # fmt: skip
        elif inline is not None:
            return self.inline(inline, join(path, key), url, problems)
        elif required:
            problems.append(self.problem(join(path, key), f"required but missing (give {key} or {key}_env)"))  # fmt: skip
        return None

    def inline(
        self, value: object, where: str, url: bool, problems: list[Problem]
    ) -> Secret | None:
        if not isinstance(value, str) or not value:
            problems.append(self.problem(where, f"some text, got {kind_of(value)}"))
            return None
        why = url_problem(value) if url else None
        if why:
            problems.append(self.problem(where, why))
            return None
        return Secret(where, self.line(where), value=value, url=url)

    # Routes ------------------------------------------------------------------------------------

    def routes(self, value: object, channels: Mapping[str, Channel]) -> tuple[Route, ...]:
        if not isinstance(value, list):
            raise self.fail("routes", f"a list of routes, got {kind_of(value)}")
        found: list[Route] = []
        for i, item in enumerate(value):
            route = self.route(item, f"routes[{i}]", channels)
            if any(r.name == route.name for r in found):
                raise self.fail(f"routes[{i}].name", f"{route.name!r} is given twice")
            found.append(route)
        return tuple(found)

    def route(self, item: object, path: str, channels: Mapping[str, Channel]) -> Route:
        if not isinstance(item, dict):
            raise self.fail(path, f"a mapping (name, match, channel, to), got {kind_of(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise self.fail(join(path, "name"), "required but missing" if name is None else
                            f"lower-case letters, digits, - and _, got {kind_of(name)}")  # fmt: skip
        if name in (DIGEST, PLAYS, FILE):
            raise self.fail(join(path, "name"), f"{name!r} is reserved; choose another name")
        if len(name) > ROUTE_NAME:
            raise self.fail(join(path, "name"), f"at most {ROUTE_NAME} characters, got {len(name)}")
        problems = self.unknown_keys(item, path, _ROUTE_KEYS)
        match = self.match(item.get("match") or {}, join(path, "match"), problems)
        channel, to = self.target(item, path, channels, problems)
        return Route(name, path, channel, to, match, tuple(problems))

    def target(
        self, item: dict[str, Any], path: str, channels: Mapping[str, Channel],
        problems: list[Problem],
    ) -> tuple[str, tuple[str, ...]]:  # fmt: skip
        """The channel a route (or the digest) names, and its validated ``to``."""
        name = item.get("channel")
        if not isinstance(name, str) or name not in channels:
            message = ("required but missing" if name is None else
                       f"unknown channel {name!r}{suggest(str(name), channels)}" if channels else
                       f"unknown channel {name!r}: the file defines no channels")  # fmt: skip
            problems.append(self.problem(join(path, "channel"), message))
            return str(name or ""), ()
        return name, self.to(item.get("to"), join(path, "to"), channels[name].type, problems)

    def to(self, value: object, path: str, kind: str, problems: list[Problem]) -> tuple[str, ...]:
        items = self.texts(value, path, problems)
        if items is None:
            return ()
        if kind == "email" and not items:
            problems.append(self.problem(path, "required for an email channel: addresses, or owner"))  # fmt: skip
        for i, item in enumerate(items):
            if kind == "email" and item != OWNER and not is_address(item):
                where = path if isinstance(value, str) else f"{path}[{i}]"
                problems.append(self.problem(where, f"an email address or owner, got {item!r}"))
        return items

    def match(self, value: object, path: str, problems: list[Problem]) -> dict[str, frozenset[str]]:
        if not isinstance(value, dict):
            problems.append(self.problem(path, f"a mapping of {', '.join(MATCH_KEYS)}, got {kind_of(value)}"))  # fmt: skip
            return {}
        problems += self.unknown_keys(value, path, MATCH_KEYS)
        found: dict[str, frozenset[str]] = {}
        for key in (k for k in MATCH_KEYS if k in value):
            items = self.texts(value[key], join(path, key), problems, empty=False)
            if items is not None:
                self.choices(key, value[key], items, join(path, key), problems)
                found[key] = frozenset(items)
        return found

    def choices(
        self, key: str, value: object, items: tuple[str, ...], path: str, problems: list[Problem]
    ) -> None:
        allowed = {"severity": SEVERITIES, "direction": DIRECTIONS}.get(key)
        for i, item in enumerate(items):
            if allowed is not None and item not in allowed:
                where = path if isinstance(value, str) else f"{path}[{i}]"
                problems.append(self.problem(where, f"one of {', '.join(allowed)}, got {item!r}"))

    # Owners, digest, plays ---------------------------------------------------------------------

    def owners(self, value: object) -> tuple[dict[str, Owner], list[Problem]]:
        if not isinstance(value, dict):
            raise self.fail("owners", f"a mapping of owner names to addresses, got {kind_of(value)}")  # fmt: skip
        found: dict[str, Owner] = {}
        problems: list[Problem] = []
        for name, spec in value.items():
            path = join("owners", str(name))
            before = len(problems)
            owner = self.owner(spec, path, problems)
            if len(problems) == before:
                found[str(name)] = owner
        return found, problems

    def owner(self, spec: object, path: str, problems: list[Problem]) -> Owner:
        if isinstance(spec, str):
            spec = {"email": spec}
            where = path
        else:
            where = join(path, "email")
        if not isinstance(spec, dict):
            problems.append(self.problem(path, f"an email address, or a mapping of email and slack, got {kind_of(spec)}"))  # fmt: skip
            return Owner()
        problems += self.unknown_keys(spec, path, _OWNER_KEYS)
        email, slack = spec.get("email"), spec.get("slack")
        if email is not None and (not isinstance(email, str) or not is_address(email)):
            problems.append(self.problem(where, f"an email address, got {kind_of(email)}"))
        if slack is not None and not isinstance(slack, str):
            problems.append(self.problem(join(path, "slack"), f"a Slack member id, got {kind_of(slack)}"))  # fmt: skip
        return Owner(None if email is None else str(email), None if slack is None else str(slack))

    def digest(self, value: object, channels: Mapping[str, Channel]) -> Route | None:
        if value is None:
            return None
        table = self.strict_table(value, DIGEST, _DIGEST_KEYS, ())
        problems: list[Problem] = []
        channel, to = self.target(table, DIGEST, channels, problems)
        if not to and channel in channels and channels[channel].type != "email":
            problems.append(self.problem(join(DIGEST, "to"), "required: owner, or addresses"))
        return Route(DIGEST, DIGEST, channel, to, {}, tuple(problems))

    def plays(self, value: object, channels: Mapping[str, Channel]) -> Plays:
        if value is None:
            return Plays()
        table = self.strict_table(value, PLAYS, PLAY_TYPES, ())
        problems: list[Problem] = []
        for kind, name in table.items():
            channel = channels.get(str(name))
            path = join(PLAYS, kind)
            if channel is None:
                problems.append(self.problem(path, f"unknown channel {name!r}{suggest(str(name), channels)}"))  # fmt: skip
            elif channel.type != kind:
                problems.append(self.problem(path, f"channel {name!r} is a {channel.type} channel, not {kind}"))  # fmt: skip
        return Plays({str(k): str(v) for k, v in table.items()}, tuple(problems))

    # Values ------------------------------------------------------------------------------------

    def strict_table(
        self, value: object, path: str, known: Iterable[str], required: Iterable[str]
    ) -> dict[str, Any]:
        """A mapping whose every key must be known: a mistake here makes the file unreadable."""
        if not isinstance(value, dict):
            raise self.fail(path, f"a mapping (key: value lines), got {kind_of(value)}")
        for problem in self.unknown_keys(value, path, known):
            raise self.fail(problem.field, problem.message)
        for key in required:
            if key not in value:
                raise self.fail(join(path, key), "required but missing")
        return value

    def unknown_keys(self, value: dict[Any, Any], path: str, known: Iterable[str]) -> list[Problem]:
        options = tuple(known)
        return [self.problem(join(path, str(k)), f"unknown key{suggest(str(k), options)}")
                for k in value if k not in options]  # fmt: skip

    def texts(
        self, value: object, path: str, problems: list[Problem], empty: bool = True
    ) -> tuple[str, ...] | None:
        """One text or a list of texts, as a tuple (None, with a problem, when neither)."""
        if value is None and empty:
            return ()
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not all(isinstance(i, str) and i for i in items)
            or (not items and not empty)
        ):
            problems.append(self.problem(path, f"a text or a list of texts, got {kind_of(value)}"))
            return None
        return tuple(str(i) for i in items)

    def whole(
        self, spec: dict[str, Any], key: str, path: str, default: int, minimum: int,
        problems: list[Problem],
    ) -> int:  # fmt: skip
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problems.append(self.problem(join(path, key), f"a whole number of at least {minimum}, got {kind_of(value)}"))  # fmt: skip
            return default
        return value

    def number(
        self, spec: dict[str, Any], key: str, path: str, default: float, minimum: float,
        problems: list[Problem],
    ) -> float:  # fmt: skip
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            low = "more than 0" if minimum > 0 else "at least 0"
            problems.append(self.problem(join(path, key), f"a number of seconds, {low}, got {kind_of(value)}"))  # fmt: skip
            return default
        return float(value)

    def flag(self, spec: dict[str, Any], key: str, path: str, problems: list[Problem]) -> bool:
        value = spec.get(key, False)
        if not isinstance(value, bool):
            problems.append(self.problem(join(path, key), f"true or false, got {kind_of(value)}"))
            return False
        return value

    def line(self, path: str) -> int:
        return self.lines.get(path, 1)
