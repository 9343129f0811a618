"""Plain data across the sandbox boundary: values <-> JSON text, rebuilt from exact builtin types.

A candidate program hands back only what this codec can spell: None, bool, int, float
(nan/inf included), str, bytes, complex, list, tuple, dict (any hashable keys), set,
frozenset, deque, the instances of classes the trusted side names (LeetCode's `ListNode`,
`TreeNode`, by class name, attribute by attribute), and iterators (read into a list).
Decoding builds new objects of exactly those types, so no subclass, custom `__eq__`,
`__hash__` or `__bool__` of the candidate's survives the trip: `decode(...) == expected`
compares trusted builtins only.

Objects are sent as a flat table (one entry per object, attributes referring to others by
number), so a 10,000-node linked list needs no deep recursion and shared or cyclic
references survive. This file is also read inside the sandbox (it imports only the
standard library); it must stay self-contained.
"""

from __future__ import annotations

import base64
import json
import math
from collections import deque
from collections.abc import Iterator

# Containers nested deeper than this are refused (a hostile value must not exhaust the stack).
MAX_DEPTH = 200
# Keys sharing one hash value: more than this in a set or dict is refused. Keys built to collide
# (k * (2**61 - 1) all hash to 0) would make building it quadratic on the trusted side.
MAX_SAME_HASH = 64


class PlainDataError(ValueError):
    """A value cannot cross the boundary (unknown type, too deep, malformed message)."""


def encode(value, max_items: int = 10_000_000) -> str:
    """`value` as JSON text of the tagged form `decode` reads."""
    table: list = []
    seen: dict[int, int] = {}
    pending: list = []
    budget = [max_items]

    def enc(v, depth: int):
        budget[0] -= 1
        if budget[0] < 0:
            raise PlainDataError("value too large")
        if depth > MAX_DEPTH:
            raise PlainDataError(f"value nested deeper than {MAX_DEPTH}")
        kind = type(v)
        if v is None or kind is bool or kind is str:
            return v
        if kind is int:
            return v if -(2**53) < v < 2**53 else {"$int": str(v)}
        if kind is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return enc(int(v), depth)
        if isinstance(v, float):
            return enc(float(v), depth)
        if isinstance(v, str):
            return str(v)
        if isinstance(v, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(v)).decode()}
        if isinstance(v, complex):
            return {"$complex": [enc(v.real, depth + 1), enc(v.imag, depth + 1)]}
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in v]
        if isinstance(v, tuple):
            return {"$tuple": [enc(x, depth + 1) for x in v]}
        if isinstance(v, deque):
            return {"$deque": [enc(x, depth + 1) for x in v]}
        if isinstance(v, frozenset):
            return {"$frozenset": [enc(x, depth + 1) for x in v]}
        if isinstance(v, set):
            return {"$set": [enc(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            return {"$dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, Iterator):
            return {"$iter": [enc(x, depth + 1) for x in v]}
        if hasattr(v, "__dict__") and not callable(v):
            if id(v) not in seen:
                seen[id(v)] = len(table)
                table.append(None)
                pending.append(v)
            return {"$ref": seen[id(v)]}
        raise PlainDataError(f"a value of type {kind.__name__} cannot be returned")

    top = enc(value, 0)
    while pending:  # objects: one flat entry each, attributes encoded at depth 1
        obj = pending.pop()
        attrs = {str(k): enc(x, 1) for k, x in vars(obj).items()}
        table[seen[id(obj)]] = [type(obj).__name__, attrs]
    return json.dumps({"v": top, "objects": table}, allow_nan=False, separators=(",", ":"))


def decode(text: str | bytes, classes: dict[str, type] | None = None):
    """The value `encode` spelled, rebuilt from exact builtin types (and the named `classes`).

    Raises:
        PlainDataError: malformed text, an unknown tag or class, or too deep a value.
    """
    classes = classes or {}
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PlainDataError(f"not plain data: {str(err)[:100]}") from None
    if type(message) is not dict or set(message) != {"v", "objects"} or type(message["objects"]) is not list:
        raise PlainDataError("not a plain-data message")
    entries = message["objects"]
    objects = []
    for entry in entries:
        if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or type(entry[1]) is not dict:
            raise PlainDataError("malformed object entry")
        cls = classes.get(entry[0])
        if cls is None:
            raise PlainDataError(f"objects of class {entry[0][:40]!r} cannot be returned")
        objects.append(cls.__new__(cls))

    def dec(v, depth: int):
        if depth > MAX_DEPTH:
            raise PlainDataError(f"value nested deeper than {MAX_DEPTH}")
        kind = type(v)
        if v is None or kind in (bool, int, float, str):
            return v
        if kind is list:
            return [dec(x, depth + 1) for x in v]
        if kind is not dict or len(v) != 1:
            raise PlainDataError("malformed value")
        ((tag, body),) = v.items()
        if tag == "$int" and type(body) is str:
            return int(body)
        if tag == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "$bytes" and type(body) is str:
            return base64.b64decode(body)
        if tag == "$ref" and type(body) is int and 0 <= body < len(objects):
            return objects[body]
        if type(body) is not list:
            raise PlainDataError(f"malformed {tag[:20]!r} value")
        items = [dec(x, depth + 1) for x in body]
        if tag == "$complex" and len(items) == 2 and all(type(x) in (int, float) for x in items):
            return complex(items[0], items[1])
        if tag == "$dict":
            if not all(type(x) is list and len(x) == 2 for x in items):
                raise PlainDataError("malformed dict")
            _check_hashes([k for k, _ in items])
            return {k: x for k, x in items}
        if tag in ("$set", "$frozenset"):
            _check_hashes(items)
            return (set if tag == "$set" else frozenset)(items)
        build = {"$tuple": tuple, "$deque": deque, "$iter": lambda xs: iter(list(xs))}.get(tag)
        if build is None:
            raise PlainDataError(f"unknown tag {tag[:20]!r}")
        return build(items)

    value = dec(message["v"], 0)
    for obj, (_, attrs) in zip(objects, entries):
        for name, raw in attrs.items():
            if not name.isidentifier() or name.startswith("__"):
                raise PlainDataError(f"attribute name {name[:40]!r} cannot be set")
            try:
                object.__setattr__(obj, name, dec(raw, 1))
            except (AttributeError, TypeError) as err:  # slots, read-only attributes
                raise PlainDataError(f"attribute {name!r}: {err}") from None
    return value


def _check_hashes(keys: list) -> None:
    """Refuse unhashable keys, and keys built to share a hash value."""
    seen: dict[int, int] = {}
    for key in keys:
        try:
            value = hash(key)
        except TypeError:
            raise PlainDataError("an unhashable dict key or set item") from None
        seen[value] = seen.get(value, 0) + 1
        if seen[value] > MAX_SAME_HASH:
            raise PlainDataError("too many keys with one hash value")
