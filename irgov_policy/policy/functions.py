"""The project's CEL functions, in plain Python, shared by both CEL engines.

The whole-token tokenizer is the heart of the production and bulk rules: matching substrings
made `product-catalog` production and `bulky` bulk, while `" PROD"` slipped through. A token is a
run of letters or a run of digits after NFKC normalisation and removal of format characters
(Unicode category Cf: zero-width spaces, joiners, direction marks) and combining marks (`pród`
is `prod`); a run is also split where camelCase changes case (`productionEU` is `production`,
`eu`; `BulkUpdate` is `bulk`, `update`), then lower-cased.

Matching (`hasToken`, `hasAnyToken`, `hasAnyPhrase`, the native `match` primitive) compares the
Unicode TR39 skeletons of tokens, computed by ICU's spoof checker, so letters that look alike
across scripts match (`рrod` with a Cyrillic `р` is `prod`). `tokens()` itself returns readable
tokens, not skeletons. A skeleton depends on case (capital `I` is `l`, `m` is `rn` but `M` is
`M`), so a token has two keys, the skeletons of its lower-case and of its upper-case form, and a
wanted token matches when the two share a key: `LIVE` is `live`, `MODULE` is `module`, and a
confusable of either case (Cyrillic `Н` for `H`, `һ` for `h`) still matches.

Functions take and return plain Python values (str, int, float, bool, None, list, dict); each
engine adapts its own value types at the boundary.
"""

from __future__ import annotations

import contextlib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import icu

__all__ = [
    "PROJECT_FUNCTIONS",
    "STRING_FUNCTIONS",
    "TOKEN_CACHE",
    "TokenCache",
    "family",
    "has_any_phrase",
    "has_any_token",
    "has_token",
    "is_integer",
    "match_keys",
    "normalize_text",
    "string_tokens",
    "token_set",
    "tokens",
]

_TOKEN = re.compile(r"[^\W_]+")
# Nested params deeper than this are refused by the input model long before; the bound keeps
# the walk safe for values built by other callers.
_MAX_WALK_DEPTH = 128


def normalize_text(text: str) -> str:
    """NFKC, without format characters (category Cf), lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.lower()


_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me"})
# ICU's TR39 implementation; its skeleton tables follow the Unicode version ICU ships with.
_SPOOF_CHECKER = icu.SpoofChecker()


def _word_text(text: str) -> str:
    """NFKC, without format characters and combining marks; case kept (camelCase needs it)."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed
                                                if unicodedata.category(c) not in _DROPPED_CATEGORIES))


def _split_run(run: str) -> list[str]:
    """Split a run of letters and digits where letters meet digits and where camelCase changes
    case: `productionEU` -> `production`, `EU`; `HTTPServer` -> `HTTP`, `Server`; `v17` -> `v`, `17`."""
    # Most runs are one word: letters all in one case or capitalised, or digits only. None of the
    # splitting conditions below can hold in them, and these tests run in C.
    if run.isalpha():
        if run.islower() or run.isupper() or (run[0].isupper() and run[1:].islower()):
            return [run]
    elif run.isdigit():
        return [run]
    parts: list[str] = []
    start = 0
    for i in range(1, len(run)):
        before, here = run[i - 1], run[i]
        if (before.isdigit() != here.isdigit()
                or (before.islower() and here.isupper())
                or (before.isupper() and here.isupper() and i + 1 < len(run) and run[i + 1].islower())):
            parts.append(run[start:i])
            start = i
    parts.append(run[start:])
    return parts


def _words(text: str) -> list[str]:
    """The tokens of one string, case as written."""
    return [part for run in _TOKEN.findall(_word_text(text)) for part in _split_run(run)]


_MAX_CACHED_WORD = 64


@lru_cache(maxsize=16384)
def _cached_skeleton(word: str) -> str:
    return str(_SPOOF_CHECKER.getSkeleton(0, word)).lower()


def _ascii_skeletons() -> dict[int, str] | None:
    """Each ASCII character's skeleton, from ICU. A skeleton maps characters one by one (then
    decomposes), so when no ASCII character maps to a combining mark, the skeleton of an ASCII
    word is its characters' skeletons put together: a `str.translate` in C. None otherwise (an
    ICU whose tables would make that untrue), and every word asks ICU."""
    table = {code: str(_SPOOF_CHECKER.getSkeleton(0, chr(code))) for code in range(128)}
    if any(unicodedata.normalize("NFD", skeleton) != skeleton or any(unicodedata.combining(c) for c in skeleton)
           for skeleton in table.values()):
        return None
    if any(len(table[code].lower().split()) != 1 for code in range(128) if chr(code).isalnum()):
        return None
    return table


_ASCII_SKELETONS = _ascii_skeletons()
# ASCII text: the runs of `_TOKEN` are the runs of letters and digits; every other character
# becomes a space, so `split()` finds them in C.
# (Every ASCII character is in the table: a missing one makes `translate` take a slow path.)
_ASCII_SEPARATORS = {code: chr(code) if chr(code).isalnum() else " " for code in range(128)}


def _token_keys(text: str) -> frozenset[str]:
    """The match keys (`_word_keys`) of the tokens of one string."""
    if _ASCII_SKELETONS is None or not text.isascii():
        return frozenset(key for word in _words(text) for key in _word_keys(word))
    parts: list[str] = []
    for run in text.translate(_ASCII_SEPARATORS).split():
        parts.extend(_split_run(run))
    # No ASCII letter or digit has a skeleton holding a space (checked at import), so the words
    # can be translated together and cut apart again.
    words = " ".join(parts)
    lower = words.lower().translate(_ASCII_SKELETONS).lower().split()
    upper = words.upper().translate(_ASCII_SKELETONS).lower().split()
    return frozenset(lower).union(upper)


def _word_keys(word: str) -> tuple[str, str]:
    """What a token is compared by: the skeletons of its lower-case and upper-case forms, each
    lower-cased (`LIVE`, `live`, `lIVE` -> `live` and `llve`; `РROD`, `рrod` -> `prod`)."""
    return _skeleton(word.lower()), _skeleton(word.upper())


def _skeleton(word: str) -> str:
    """The TR39 skeleton of `word`, lower-cased. Only short words are cached: an IR chooses its
    words, and a long one must not stay resident."""
    if _ASCII_SKELETONS is not None and word.isascii():
        return word.translate(_ASCII_SKELETONS).lower()
    if len(word) > _MAX_CACHED_WORD:
        return str(_SPOOF_CHECKER.getSkeleton(0, word)).lower()
    return _cached_skeleton(word)


@lru_cache(maxsize=1024)
def match_keys(token: str) -> frozenset[str]:
    """The keys of a wanted token (a constant's element), normalised like text: it matches a
    token of the text that has one of them."""
    return frozenset(_word_keys(_word_text(token).strip()))


def string_tokens(text: str) -> tuple[str, ...]:
    """The whole tokens of one string, in order, lower-cased."""
    return tuple(word.lower() for word in _words(text))


class TokenCache:
    """Token sets of strings, bounded by the bytes they hold, least recently used evicted first.

    Strings repeat across steps and IRs (`prod`, `staging`, module names), so their token sets are
    kept; but untrusted IRs choose the strings, so the cache is bounded by size, not by count
    (eight distinct 7 MB strings used to stay resident for good), strings longer than
    `max_string` are tokenised without being kept, and a string with more than `max_tokens`
    distinct tokens is refused (`ValueError`, which fails the rule like any function error)
    rather than expanded into a huge set."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024, max_string: int = 4096,
                 max_tokens: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_string = max_string
        self.max_tokens = max_tokens
        self.size = 0
        self._entries: OrderedDict[str, tuple[frozenset[str], int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def token_set(self, text: str) -> frozenset[str]:
        found = self._entries.get(text)
        if found is not None:
            # One C call, atomic under the GIL: a hit needs no lock (another thread may have
            # evicted the entry since, which only makes the touch a miss).
            with contextlib.suppress(KeyError):
                self._entries.move_to_end(text)
            return found[0]
        tokens = _token_keys(text)
        if len(tokens) > self.max_tokens:
            raise ValueError(f"a string of {len(text)} characters has more than {self.max_tokens} "
                                  "distinct tokens")
        if len(text) <= self.max_string:
            # Characters of the key and of each token, plus a fixed overhead per entry and token.
            cost = len(text) + sum(map(len, tokens)) + 64 * (len(tokens) + 1)
            with self._lock:
                if text not in self._entries:
                    self._entries[text] = (tokens, cost)
                    self.size += cost
                    while self.size > self.max_bytes and self._entries:
                        _, (_, freed) = self._entries.popitem(last=False)
                        self.size -= freed
        return tokens

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0


TOKEN_CACHE = TokenCache()


def _walk_strings(value: Any, depth: int = 0) -> Iterable[str]:
    """Every string of `value`: itself, or map keys and values and list items, nested."""
    if isinstance(value, str):
        yield value
    elif depth > _MAX_WALK_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_WALK_DEPTH} levels")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _walk_strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_strings(item, depth + 1)


def tokens(value: Any) -> list[str]:
    """`tokens(value) -> list(string)`: whole tokens of a string, or of every key and string value
    of a map or list, nested. Numbers, booleans and null have no tokens."""
    out: list[str] = []
    for text in _walk_strings(value):
        out.extend(string_tokens(text))
    return out


def has_token(value: Any, token: str) -> bool:
    """`hasToken(value, token) -> bool`: `token` (normalised like the text) is a whole token of `value`."""
    if not isinstance(token, str):
        raise TypeError("hasToken expects a string token")
    return not match_keys(token).isdisjoint(token_set(value))


def has_any_phrase(value: Any, phrases: list[str] | tuple[str, ...]) -> bool:
    """`hasAnyPhrase(value, list) -> bool`: the tokens of some element of `list` occur one after
    the other in a string of `value` (`odoo:account.move/7` holds the phrase `account.move`)."""
    wanted = _phrase_keys(tuple(phrases))
    for text in _walk_strings(value):
        keys = [frozenset(_word_keys(word)) for word in _words(text)]
        for phrase in wanted:
            size = len(phrase)
            if any(all(not want.isdisjoint(have) for want, have in zip(phrase, keys[i:i + size], strict=True))
                   for i in range(len(keys) - size + 1)):
                return True
    return False


@lru_cache(maxsize=256)
def _phrase_keys(phrases: tuple[Any, ...]) -> tuple[tuple[frozenset[str], ...], ...]:
    if not all(isinstance(p, str) for p in phrases):
        raise TypeError("hasAnyPhrase expects a list of strings")
    return tuple(keys for keys in (tuple(frozenset(_word_keys(w)) for w in _words(p)) for p in phrases) if keys)


def has_any_token(value: Any, wanted: list[str] | tuple[str, ...] | frozenset[str]) -> bool:
    """`hasAnyToken(value, list) -> bool`: some whole token of `value` is in `list` (normalised)."""
    targets = _normalized_set(tuple(wanted)) if not isinstance(wanted, frozenset) else wanted
    return not targets.isdisjoint(token_set(value))


def token_set(value: Any, depth: int = 0) -> frozenset[str]:
    """Every whole token of `value` (a string, or map keys, string values and list items, nested)."""
    if type(value) is str:
        return TOKEN_CACHE.token_set(value)
    found: set[str] = set()
    _add_tokens(found, value, depth)
    return frozenset(found)


# Exact types JSON produces, tested before the abstract (and much slower) `Mapping` check.
_NO_TOKENS = frozenset({int, float, bool, type(None)})


def _add_tokens(found: set[str], value: Any, depth: int) -> None:
    if depth > _MAX_WALK_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_WALK_DEPTH} levels")
    lookup = TOKEN_CACHE.token_set
    kind = type(value)
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        for key, item in value.items():
            if type(key) is str or isinstance(key, str):
                found.update(lookup(key))
            inner = type(item)
            if inner is str:
                found.update(lookup(item))
            elif inner not in _NO_TOKENS:
                _add_tokens(found, item, depth + 1)
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        for item in value:
            inner = type(item)
            if inner is str:
                found.update(lookup(item))
            elif inner not in _NO_TOKENS:
                _add_tokens(found, item, depth + 1)
    elif isinstance(value, str):
        found.update(lookup(value))


@lru_cache(maxsize=256)
def _normalized_set(wanted: tuple[Any, ...]) -> frozenset[str]:
    if not all(isinstance(w, str) for w in wanted):
        raise TypeError("hasAnyToken expects a list of strings")
    return frozenset(key for w in wanted for key in match_keys(w))


def family(name: str) -> str:
    """`family(name) -> string`: the text before the first dot (`dns.update_records` -> `dns`)."""
    if not isinstance(name, str):
        raise TypeError(f"family expects a string, got {type(name).__name__}")
    return name.split(".", 1)[0]


def is_integer(value: Any) -> bool:
    """`isInteger(value) -> bool`: an integral number. Booleans are not numbers; `5.0` is an
    integer, as in JSON Schema and in the canonical form that hashes `5.0` and `5` alike."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def _text_arg(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} expects a string, got {type(value).__name__}")
    return value


def _lower_ascii(value: str) -> str:
    text = _text_arg(value, "lowerAscii")
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _upper_ascii(value: str) -> str:
    text = _text_arg(value, "upperAscii")
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def _trim(value: str) -> str:
    return _text_arg(value, "trim").strip()


def _normalize(value: str) -> str:
    """`normalize(string) -> string`: NFKC, format characters removed, lower-cased, trimmed."""
    return normalize_text(_text_arg(value, "normalize")).strip()


# Project functions: name -> (implementation, arity). Both engines register exactly these.
PROJECT_FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "tokens": (tokens, 1),
    "hasToken": (has_token, 2),
    "hasAnyToken": (has_any_token, 2),
    "hasAnyPhrase": (has_any_phrase, 2),
    "family": (family, 1),
    "isInteger": (is_integer, 1),
    "normalize": (_normalize, 1),
}

# String extension functions (receiver-style, `s.lowerAscii()`) the packs use. cel-cpp provides
# them natively through its strings extension; celpy gets these implementations.
STRING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "trim": _trim,
}
