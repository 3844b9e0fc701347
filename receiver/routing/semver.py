"""Semantic versions and ranges exactly as Flux reads `spec.ref.semver` (Masterminds/semver v3).

Pure: no I/O. Routing asks "does this pushed tag satisfy the range?"; the poller asks "which
tag is the highest that does?". Both must agree with source-controller, which parses the range
with Masterminds' `NewConstraint`, reads tags with fluxcd/pkg `version.ParseVersion` (strict
semver, optional leading `v`) and keeps those for which `Constraints.Check` holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from receiver.errors import ConstraintError

MAX_CONSTRAINT_CHARS = 1024
_MAX_SEGMENT = 2**64 - 1  # Masterminds parses segments with ParseUint(.., 64)

_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_LOOSE = re.compile(rf"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
_NUMBER = r"(?:0|[1-9][0-9]*)"
_STRICT = re.compile(rf"^({_NUMBER})\.({_NUMBER})\.({_NUMBER})(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
_NUMERIC = re.compile(r"^[0-9]+$")

# Constraint grammar, transcribed from Masterminds' constraints.go. `[0-9xX*]` stands for Go's
# `[0-9|x|X|\*]` (the `|` there is a literal, never meant). The empty operator means `=`.
_WILD = r"[0-9xX*]+"
_CV = rf"v?{_WILD}(?:\.{_WILD})?(?:\.{_WILD})?(?:-{_IDENT})?(?:\+{_IDENT})?"
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^|"
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*", re.ASCII)
_VALID_AND = re.compile(
    rf"^\s*(?:{_OPS})\s*{_CV}\s*(?:(?:\s+|,\s*)(?:{_OPS})\s*{_CV}\s*)*$", re.ASCII
)
_FIND = re.compile(rf"(?:{_OPS})\s*{_CV}", re.ASCII)
_SINGLE = re.compile(
    rf"^\s*(?P<op>{_OPS})\s*(?P<ver>v?(?P<major>{_WILD})(?:\.(?P<minor>{_WILD}))?"
    rf"(?:\.(?P<patch>{_WILD}))?(?P<pre>-{_IDENT})?(?:\+{_IDENT})?)\s*$",
    re.ASCII,
)
_SPACES = re.compile(r"\s+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version; `original` is the text it came from (the tag name, `v` included)."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""
    original: str = ""

    def sort_key(self) -> tuple[int, int, int, tuple[object, ...]]:
        """Semver precedence as a key: build metadata ignored, a prerelease below its release,
        numeric identifiers numerically and below alphanumeric ones, a longer list above its
        prefix (what Masterminds' `Compare` does)."""
        if not self.prerelease:
            return (self.major, self.minor, self.patch, (1,))
        parts = tuple(
            (0, int(part), "") if _NUMERIC.match(part) else (1, 0, part)
            for part in self.prerelease.split(".")
        )
        return (self.major, self.minor, self.patch, (0, parts))

    def compare(self, other: Version) -> int:
        mine, theirs = self.sort_key(), other.sort_key()
        return (mine > theirs) - (mine < theirs)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


def parse_version(text: str) -> Version | None:
    """Masterminds' lenient `NewVersion`: optional `v`, and `1.2` / `1` read as 1.2.0 / 1.0.0.

    None when `text` is not a version (including numeric prerelease identifiers with leading
    zeros, which the spec forbids).
    """
    match = _LOOSE.match(text)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    return _version(text, major, minor or "0", patch or "0", pre, build)


def parse_tag_version(tag: str) -> Version | None:
    """A tag name read the way Flux reads tags for `spec.ref.semver` (fluxcd/pkg `ParseVersion`).

    Strict semver after one optional leading `v`: `v1.2.3`, `1.2.3-rc.1+build.5` are versions;
    `1.2`, `v01.2.3`, `V1.2.3` and `release-1.2.3` are not, so they never satisfy a range.
    """
    match = _STRICT.match(tag[1:] if tag.startswith("v") else tag)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    return _version(tag, major, minor, patch, pre, build)


def _version(
    original: str, major: str, minor: str, patch: str, pre: str | None, build: str | None
) -> Version | None:
    numbers = (int(major), int(minor), int(patch))
    if any(number > _MAX_SEGMENT for number in numbers):
        return None
    if pre and any(
        len(part) > 1 and part.startswith("0") and _NUMERIC.match(part) for part in pre.split(".")
    ):
        return None
    return Version(*numbers, prerelease=pre or "", build=build or "", original=original)


@dataclass(frozen=True, slots=True)
class _Comparator:
    op: str
    version: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool
    text: str

    def check(self, version: Version) -> bool:
        return _CHECKS[self.op](version, self)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed range: OR of groups, each an AND of comparators (Masterminds `Constraints`)."""

    text: str
    groups: tuple[tuple[_Comparator, ...], ...]

    def matches(self, version: Version | str) -> bool:
        """Masterminds `Check`: a prerelease version only passes a comparator whose own
        version carries a prerelease (any one: `>=1.2.0-0` admits `1.5.0-rc.1`; unlike npm it
        need not share major.minor.patch). `>=1.2.0` alone never admits a prerelease.

        A str is read as a tag (parse_tag_version); one that is no version matches nothing.
        """
        parsed = parse_tag_version(version) if isinstance(version, str) else version
        if parsed is None:
            return False
        return any(all(c.check(parsed) for c in group) for group in self.groups)

    def __str__(self) -> str:
        return self.text


def parse_constraint(text: str) -> Constraint:
    """Parse a range such as `>=1.2.0 <2.0.0`, `^1.2`, `~1.3.0`, `1.2.x`, `1.2 - 1.4.5`,
    `>=1.0, <2 || >=3`. Raises ConstraintError when Masterminds would refuse it
    (Flux then fails the GitRepository with "semver parse error")."""
    if len(text) > MAX_CONSTRAINT_CHARS:
        raise ConstraintError(f"semver range is {len(text)} characters; at most 1024 allowed")
    # Runs of whitespace mean the same as one space everywhere in the grammar; folding them
    # keeps the validating regular expression linear.
    rewritten = _RANGE.sub(lambda m: f">= {m[1]}, <= {m[2]} ", _SPACES.sub(" ", text))
    groups: list[tuple[_Comparator, ...]] = []
    for segment in rewritten.split("||"):
        if not _VALID_AND.match(segment):
            raise ConstraintError(
                f"improper semver range {segment.strip()!r} in {text!r}: expected comparisons "
                "like '>=1.2.0 <2.0.0', '^1.2', '~1.3.0' or '1.2.x', joined by spaces, commas "
                "or '||'"
            )
        groups.append(tuple(_comparator(m.group(0), whole=text) for m in _FIND.finditer(segment)))
    return Constraint(text=text, groups=tuple(groups))


@lru_cache(maxsize=4096)
def cached_constraint(text: str) -> Constraint | ConstraintError:
    """parse_constraint, memoised (routing checks the same few ranges on every push); the
    error is returned, not raised, so a bad range is reported without being parsed again."""
    try:
        return parse_constraint(text)
    except ConstraintError as exc:
        return exc


def latest_matching(constraint: Constraint, tags: Iterable[str]) -> str | None:
    """The tag with the highest version satisfying `constraint`, or None.

    Tags are read with parse_tag_version, as Flux does. Flux breaks ties between equal
    versions (`v1.2.3` and `1.2.3+build`) by the tagged commit's time, which a list of names
    does not carry: here the greater tag name wins, so the answer never depends on order.
    """
    best: tuple[tuple[int, int, int, tuple[object, ...]], str] | None = None
    for tag in tags:
        version = parse_tag_version(tag)
        if version is None or not constraint.matches(version):
            continue
        key = (version.sort_key(), tag)
        if best is None or key > best:
            best = key
    return None if best is None else best[1]


def _comparator(token: str, *, whole: str) -> _Comparator:
    match = _SINGLE.match(token)
    if match is None:
        raise ConstraintError(f"improper semver constraint {token.strip()!r} in {whole!r}")
    major, minor, patch = match["major"], match["minor"], match["patch"]
    pre = match["pre"] or ""
    dirty = minor_dirty = patch_dirty = False
    text = match["ver"]
    if _is_x(major):
        text, dirty = f"0.0.0{pre}", True
    elif minor is None or _is_x(minor):
        text, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif patch is None or _is_x(patch):
        text, dirty, patch_dirty = f"{major}.{minor}.0{pre}", True, True
    version = parse_version(text)
    if version is None:
        raise ConstraintError(f"improper semver version {match['ver']!r} in {whole!r}")
    return _Comparator(
        op=match["op"],
        version=version,
        dirty=dirty,
        minor_dirty=minor_dirty,
        patch_dirty=patch_dirty,
        text=token.strip(),
    )


def _is_x(part: str) -> bool:
    return part in {"x", "X", "*"}


def _skips_prerelease(v: Version, c: _Comparator) -> bool:
    """Masterminds' issue-21 rule: a prerelease only meets comparators that name one."""
    return bool(v.prerelease) and not c.version.prerelease


def _not_equal(v: Version, c: _Comparator) -> bool:
    if c.dirty:
        if _skips_prerelease(v, c):
            return False
        con = c.version
        if con.major != v.major:
            return True
        if con.minor != v.minor and not c.minor_dirty:
            return True
        if c.minor_dirty:
            return False
        if con.patch != v.patch and not c.patch_dirty:
            return True
        if c.patch_dirty:
            if v.prerelease or con.prerelease:
                return _compare_prerelease(v.prerelease, con.prerelease) != 0
            return False
    return v.compare(c.version) != 0


def _compare_prerelease(left: str, right: str) -> int:
    a = Version(0, 0, 0, prerelease=left).sort_key()
    b = Version(0, 0, 0, prerelease=right).sort_key()
    return (a > b) - (a < b)


def _greater_than(v: Version, c: _Comparator) -> bool:
    if _skips_prerelease(v, c):
        return False
    con = c.version
    if not c.dirty:
        return v.compare(con) > 0
    if v.major != con.major:
        return v.major > con.major
    if c.minor_dirty:
        return False  # >11 needs 12 or above
    if c.patch_dirty:
        return v.minor > con.minor  # >11.1 needs 11.2 or above
    return v.compare(con) > 0


def _less_than(v: Version, c: _Comparator) -> bool:
    return not _skips_prerelease(v, c) and v.compare(c.version) < 0


def _greater_equal(v: Version, c: _Comparator) -> bool:
    return not _skips_prerelease(v, c) and v.compare(c.version) >= 0


def _less_equal(v: Version, c: _Comparator) -> bool:
    if _skips_prerelease(v, c):
        return False
    con = c.version
    if not c.dirty:
        return v.compare(con) <= 0
    if v.major > con.major:
        return False
    return not (v.major == con.major and v.minor > con.minor and not c.minor_dirty)


def _tilde(v: Version, c: _Comparator) -> bool:
    """~1.2.3 is >=1.2.3 <1.3.0; ~1 and ~1.x are >=1.0.0 <2.0.0; ~* is anything."""
    if _skips_prerelease(v, c):
        return False
    con = c.version
    if v.compare(con) < 0:
        return False
    if (con.major, con.minor, con.patch) == (0, 0, 0) and not c.minor_dirty and not c.patch_dirty:
        return True
    if v.major != con.major:
        return False
    return v.minor == con.minor or c.minor_dirty


def _tilde_or_equal(v: Version, c: _Comparator) -> bool:
    """A bare or `=` version: with a wildcard or missing part it acts as `~`, else as `==`."""
    if _skips_prerelease(v, c):
        return False
    if c.dirty:
        return _tilde(v, c)
    return v.compare(c.version) == 0


def _caret(v: Version, c: _Comparator) -> bool:
    """^1.2.3 is >=1.2.3 <2.0.0; ^0.2.3 is >=0.2.3 <0.3.0; ^0.0.3 is =0.0.3; ^0.0 <0.1.0."""
    if _skips_prerelease(v, c):
        return False
    con = c.version
    if v.compare(con) < 0:
        return False
    if con.major > 0 or c.minor_dirty:
        return v.major == con.major
    if v.major > 0:
        return False
    if con.minor > 0 or c.patch_dirty:
        return v.minor == con.minor
    if v.minor > 0:
        return False
    return v.patch == con.patch


_CHECKS: dict[str, Callable[[Version, _Comparator], bool]] = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater_than,
    "<": _less_than,
    ">=": _greater_equal,
    "=>": _greater_equal,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}
