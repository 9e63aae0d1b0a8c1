"""The one LRU (explorer.lru) and the one common_prefix (explorer.prefix) that every
cache uses: eviction order, a get refreshes and a peek does not, the bound (a count or a
weight budget), and neither pulls in torch."""

import subprocess
import sys

from explorer.lru import LRU
from explorer.prefix import common_prefix, longest_shared


def test_put_past_the_bound_drops_the_least_recently_used_first():
    lru = LRU(3)
    for k in "abcd":
        lru.put(k, k.upper())
    assert lru.keys() == ["b", "c", "d"] and len(lru) == 3 and "a" not in lru
    lru.put("e", "E")
    assert lru.keys() == ["c", "d", "e"]


def test_get_refreshes_peek_does_not():
    lru = LRU(3)
    for k in "abc":
        lru.put(k, k)
    assert lru.get("a") == "a"  # a use: "b" is now the oldest
    assert lru.peek("b") == "b"  # not a use: "b" stays the oldest
    lru.put("d", "d")
    assert lru.keys() == ["c", "a", "d"]
    assert lru.get("b", "gone") == "gone" and lru.peek("b", 0) == 0


def test_put_of_a_present_key_is_a_use_and_replace_keeps_the_order():
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.replace("a", 10)  # new value, same place: "a" is still the oldest
    assert lru.keys() == ["a", "b"] and lru.peek("a") == 10
    lru.put("a", 11)  # a put is a use
    lru.put("c", 3)
    assert lru.keys() == ["a", "c"] and lru.values() == [11, 3]


def test_pop_clear_and_items_snapshot():
    lru = LRU(4)
    for k in "abcd":
        lru.put(k, ord(k))
    for k, _ in lru.items():  # a snapshot: popping while iterating is fine
        if k in "bd":
            lru.pop(k)
    assert lru.keys() == ["a", "c"] and lru.pop("zz", "none") == "none"
    lru.clear()
    assert len(lru) == 0 and lru.used == 0


def test_a_count_bound_keeps_at_least_one_entry():
    lru = LRU(0)
    lru.put("a", 1)
    assert lru.bound == 1 and lru.keys() == ["a"]


def test_a_weight_budget_evicts_until_the_total_fits():
    lru = LRU(10, weigh=len)
    lru.put("a", "xxxx")  # 4
    lru.put("b", "xxxx")  # 8
    lru.get("a")  # "b" is now the oldest
    lru.put("c", "xxx")  # 11 > 10: "b" goes
    assert lru.keys() == ["a", "c"] and lru.used == 7
    lru.put("a", "x")  # re-put counts the new weight only
    assert lru.used == 4
    lru.put("big", "x" * 11)  # heavier than the budget: everything goes, itself too
    assert len(lru) == 0 and lru.used == 0
    zero = LRU(0, weigh=len)
    zero.put("a", "x")
    assert len(zero) == 0


def test_common_prefix_and_longest_shared():
    assert common_prefix((), (1,)) == 0
    assert common_prefix((1, 2, 3), (1, 2, 4, 5)) == 2
    assert common_prefix([1, 2], (1, 2, 3)) == 2  # lists and tuples alike
    assert common_prefix((1, 2, 3), (1, 2, 3)) == 3
    named = [("x", (1, 9)), ("y", (1, 2, 3)), ("z", (1, 2, 7))]
    assert longest_shared(named, (1, 2, 3, 4)) == ("y", 3)
    assert longest_shared(named, (5,)) == (None, 0)
    assert longest_shared(named, (1, 2, 7), "own", 3) == ("own", 3)  # ties keep the one to beat


def test_the_lru_and_the_remote_and_session_caches_do_not_import_torch():
    code = ("import sys, explorer.lru, explorer.prefix, explorer.remote.vllm, "
            "explorer.remote.llama_cpp, explorer.session.lane; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
