"""Bounds on what jobs store: user text can be huge or hostile, and the tables must not bloat.

Postgres refuses NUL characters and unpaired UTF-16 surrogates in text and JSONB, so those
two are replaced by U+FFFD; everything else is stored as given, up to the limits below.
"""

import json
import reprlib
from collections import Counter
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder

MAX_PARAMETERS_BYTES = 256 * 1024  # a job's parameters: refused above this at submit
MAX_JSON_DEPTH = 32  # nesting of parameters: refused deeper than this at submit
MAX_JSON_BYTES = 64 * 1024  # a result or an event's details: summarised above this
MAX_MESSAGE_CHARS = 2_000  # an event's or a job's message: clipped


class PayloadError(ValueError):
    pass


class RepeatedJsonKey(ValueError):
    """A JSON object sent by a client naming a key more than once; `path` names it from the top
    ("parameters.seconds", "items.0.id")."""

    def __init__(self, path: str, count: int):
        self.path = path
        self.message = f"given {count} times; give it once"
        super().__init__(f"{path}: {self.message}")


class _RepeatedKeys(dict):
    repeated: tuple[str, int]  # (the first key given more than once, how many times)


def loads_refusing_repeated_keys(text: str | bytes):
    """json.loads, refusing an object that names a key twice (RepeatedJsonKey), where json.loads
    keeps the last value and would run what the client did not mean (API bodies, the
    dashboard's job parameters)."""
    marked = []

    def mark(pairs):
        obj = dict(pairs)
        if len(obj) < len(pairs):
            counts = Counter(key for key, _ in pairs)
            obj = _RepeatedKeys(obj)
            obj.repeated = next((key, n) for key, n in counts.items() if n > 1)  # the first given twice
            marked.append(obj)
        return obj

    value = json.loads(text, object_pairs_hook=mark)
    if marked:
        key, count = marked[0].repeated
        raise RepeatedJsonKey(".".join([*_path_to(value, marked[0]), key]), count)
    return value


def _path_to(root, target) -> list[str]:
    """The keys and indexes leading from `root` to the object `target` (iteratively: any depth)."""
    stack = [(root, [])]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((child, [*path, str(name)]) for name, child in children if isinstance(child, (dict, list)))
    return []


def url_origin(url: str) -> str:
    """scheme://host[:port] of `url`, as written: its path, query and user:password stay out
    (webhook and API URLs carry their secrets there). ValueError for no URL at all ("http://[")."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def printable(text: str) -> str:
    """`text` unchanged, or ValueError if it has control characters (names and filters: a
    newline or NUL in one is a mistake or an attack, and Postgres refuses NUL)."""
    if any(ord(ch) < 32 for ch in text):
        raise ValueError("must not contain control characters")
    return text


def clip(text, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = clean_text("" if text is None else str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(value, depth: int):
    if depth > MAX_JSON_DEPTH:
        raise PayloadError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def _encode(value) -> str:
    try:
        # NaN and Infinity are not JSON: Postgres' jsonb refuses them.
        return json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    except RecursionError:
        raise PayloadError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (TypeError, ValueError) as e:
        raise PayloadError(f"not JSON: {e}") from None


def checked_json(value, max_bytes: int):
    """`value` as plain JSON data that Postgres accepts; PayloadError when it is too big or deep."""
    encoded = _encode(value)
    if len(encoded) > max_bytes:  # ASCII-escaped, so characters are bytes
        raise PayloadError(f"{len(encoded)} bytes of JSON, more than the {max_bytes} allowed")
    return _clean(json.loads(encoded), 0)


_SHALLOW = reprlib.Repr()
_SHALLOW.maxlevel, _SHALLOW.maxdict, _SHALLOW.maxlist, _SHALLOW.maxstring, _SHALLOW.maxother = 8, 12, 12, 200, 200


def to_json_value(value, max_bytes: int = MAX_JSON_BYTES):
    """Like checked_json, but a summary replaces what does not fit (results, event details)."""
    if value is None:
        return None
    try:
        return checked_json(value, max_bytes)
    except PayloadError as e:
        try:
            preview = json.dumps(value, cls=DjangoJSONEncoder)
        except (TypeError, ValueError, RecursionError):
            # Python's repr, a few levels and items deep: a drill's result nested 2,000 deep
            # (a RecursionError for json and for repr) was previewed as just "dict".
            preview = _SHALLOW.repr(value)
        return {"truncated": True, "reason": str(e), "preview": clip(preview, 1_000)}
