"""The plain-data codec: what crosses the sandbox boundary comes back as exact builtin types."""

from __future__ import annotations

import json
import math
from collections import deque

import pytest

from archer.verifiers.boundary.plain import MAX_DEPTH, PlainDataError, decode, encode


class ListNode:
    def __init__(self, val=0, next=None):
        self.val, self.next = val, next


def test_round_trip_keeps_types_and_values():
    value = [1, -2**70, 2.5, True, None, "s", b"\x00b", 1 + 2j, (1, (2, 3)), {4, 5}, frozenset({6}),
             {(1, 2): "t", 3: [1.5]}, deque([7]), {"k": {"n": []}}]
    back = decode(encode(value))
    assert back == value and [type(x) for x in back] == [type(x) for x in value]
    specials = decode(encode([math.inf, -math.inf, math.nan]))
    assert specials[:2] == [math.inf, -math.inf] and math.isnan(specials[2])
    assert list(decode(encode(iter([1, 2])))) == [1, 2]


def test_subclasses_and_custom_equality_do_not_survive():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Words(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    back = decode(encode([Liar(3), Words("a"), [Liar(1)]]))
    assert type(back[0]) is int and back[0] != 4 and type(back[1]) is str and back[1] != "b"
    assert type(back[2][0]) is int


def test_objects_need_a_trusted_class_and_keep_shared_and_cyclic_references():
    head = None
    for i in range(50_000):  # far deeper than the recursion limit: objects travel as a flat table
        head = ListNode(i, head)
    back = decode(encode(head), {"ListNode": ListNode})
    assert type(back) is ListNode and back.val == 49_999 and back.next.val == 49_998
    ring = ListNode(1)
    ring.next = ring
    back = decode(encode(ring), {"ListNode": ListNode})
    assert back.next is back

    class ListNodeWithEq(ListNode):
        def __eq__(self, other):
            return True

    with pytest.raises(PlainDataError, match="class"):
        decode(encode(ListNodeWithEq()))  # a class the trusted side does not name


def test_hostile_messages_are_refused():
    nested = []
    for _ in range(MAX_DEPTH + 5):
        nested = [nested]
    with pytest.raises(PlainDataError):
        encode(nested)
    for text in ['{"v": 1}', '[1]', '{"v": {"$dict": [[[1], 2]]}, "objects": []}',
                 '{"v": {"$ref": 3}, "objects": []}', '{"v": {"$eval": "1"}, "objects": []}',
                 '{"v": {"$float": "1e999999"}, "objects": []}', "not json",
                 '{"v": 1, "objects": [["ListNode", {}]]}']:
        with pytest.raises(PlainDataError):
            decode(text)
    with pytest.raises(PlainDataError):
        encode([lambda: 0])


def test_keys_built_to_collide_and_dunder_attributes_are_refused_fast():
    import time

    colliding = {"$set": [k * (2**61 - 1) for k in range(1, 30_000)]}
    started = time.perf_counter()
    with pytest.raises(PlainDataError, match="hash"):
        decode('{"v": ' + __import__("json").dumps(colliding) + ', "objects": []}')
    assert time.perf_counter() - started < 1.0
    assert decode(encode({k: k for k in range(10_000)})) == {k: k for k in range(10_000)}  # ordinary keys pass
    for name in ("__weakref__", "__class__", "not an identifier"):
        text = json.dumps({"v": {"$ref": 0}, "objects": [["ListNode", {name: 1}]]})
        with pytest.raises(PlainDataError, match="attribute"):
            decode(text, {"ListNode": ListNode})
