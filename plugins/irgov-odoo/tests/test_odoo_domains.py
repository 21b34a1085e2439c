"""Odoo domain analysis: which domains select every record."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irgov_odoo.domains import MAX_DOMAIN_VARIABLES, analyse_domain, domain_matches_all

MATCH_ALL = [
    [],
    (),
    None,
    "[]",
    [[1, "=", 1]],
    [(1, "=", 1)],
    "[(1, '=', 1)]",
    ["!", [0, "=", 1]],
    ["|", ["state", "=", "draft"], ["state", "!=", "draft"]],
    ["|", ["name", "ilike", "x"], ["name", "not ilike", "x"]],
    ["|", ["tag_ids", "in", [1, 2]], ["tag_ids", "not in", [1, 2]]],
    [["id", "!=", False]],
    [["id", ">", 0]],
    [["id", ">=", 1]],
    [["partner_id", "not in", []]],
    [["partner_id", "=?", False]],
    ["&", [1, "=", 1], ["id", "!=", None]],
    # De Morgan: !(a & !a) is a tautology.
    ["!", "&", ["a", "=", 1], "!", ["a", "=", 1]],
    ["|", ["a", "=", 1], "|", ["b", "=", 2], "&", ["a", "!=", 1], ["b", "!=", 2]],
    ["|", ["state", "=", "draft"], ["state", "<>", "draft"]],
    [[1, "=", 1], [1, "=", 1]],
]

BOUNDED = [
    [["id", "=", 7]],
    [["id", "in", [1, 2, 3]]],
    [["state", "=", "draft"]],
    "[('partner_id', '=', 42)]",
    ["|", ["a", "=", 1], ["b", "=", 2]],
    # `<` and `>=` are not complements in Odoo (NULL rows match neither).
    ["|", ["amount", "<", 5], ["amount", ">=", 5]],
    [[0, "=", 1]],
    [["partner_id", "in", []]],
    ["|", [1, "=", 1], ["x", "=", 1], ["y", "=", 2]],
    [["id", ">", 1]],
    [["id", ">=", 1.5]],
]

INVALID = [
    {"field": "x"},
    42,
    [["a", "=="]],
    [["a", "equals", 1]],
    ["x"],
    ["&", ["a", "=", 1]],
    ["!"],
    [[None, "=", 1]],
    [["", "=", 1]],
    [[True, "=", True]],
    "{'a': 1}",
]


@pytest.mark.parametrize("domain", MATCH_ALL, ids=repr)
def test_domains_selecting_every_record(domain: Any) -> None:
    assert analyse_domain(domain).verdict == "all"
    assert domain_matches_all(domain) is True


@pytest.mark.parametrize("domain", BOUNDED, ids=repr)
def test_domains_selecting_a_subset(domain: Any) -> None:
    assert analyse_domain(domain).verdict == "bounded"
    assert domain_matches_all(domain) is False


@pytest.mark.parametrize("domain", INVALID, ids=repr)
def test_invalid_domains_are_reported_not_raised(domain: Any) -> None:
    analysis = analyse_domain(domain)
    assert analysis.verdict == "invalid", analysis
    assert analysis.message.startswith("invalid odoo domain: ")
    assert domain_matches_all(domain) is False


def test_operator_case_and_spacing_is_odoo_s() -> None:
    assert analyse_domain(["|", ["a", "=", 1], ["a", " NOT IN ", 1]]).verdict == "bounded"
    assert analyse_domain(["|", ["a", "in", [1]], ["a", " NOT IN ", [1]]]).verdict == "all"


def test_unanalysable_domains_are_unbounded() -> None:
    dynamic = analyse_domain("[('user_id', '=', uid)]")
    assert dynamic.verdict == "complex" and dynamic.unbounded
    wide = [[f"f{i}", "=", i] for i in range(MAX_DOMAIN_VARIABLES + 1)]
    assert analyse_domain(wide).verdict == "complex"
    assert analyse_domain(["|"] * MAX_DOMAIN_VARIABLES + wide[:MAX_DOMAIN_VARIABLES + 1]).unbounded
    assert not analyse_domain([["id", "=", 1]]).unbounded


def test_sixteen_conditions_are_decided() -> None:
    fields = [[f"f{i}", "=", i] for i in range(MAX_DOMAIN_VARIABLES)]
    # f0 | f1 | ... | f15 | !f0  is a tautology over the maximum number of variables.
    domain = ["|"] * MAX_DOMAIN_VARIABLES + fields + ["!", fields[0]]
    assert analyse_domain(domain).verdict == "all"
    assert analyse_domain(["|"] * (MAX_DOMAIN_VARIABLES - 1) + fields).verdict == "bounded"


def test_deep_negation_chains_do_not_recurse() -> None:
    assert analyse_domain(["!"] * 999 + [[0, "=", 1]]).verdict == "all"
    assert analyse_domain(["!"] * 998 + [[0, "=", 1]]).verdict == "bounded"


# -- differential: the bit-set evaluation against a direct recursive one ------------------------

LEAVES = [["a", "=", 1], ["a", "!=", 1], ["b", "in", [2]], ["b", "not in", [2]], ["c", "like", "x"],
          [1, "=", 1], [0, "=", 1]]


def _tree(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf
    sub = _tree(depth - 1)
    return st.one_of(leaf, st.tuples(st.just("!"), sub),
                     st.tuples(st.sampled_from(["&", "|"]), sub, sub))


def _flatten(tree: Any) -> list[Any]:
    if isinstance(tree, tuple):
        return [tree[0], *itertools.chain.from_iterable(_flatten(t) for t in tree[1:])]
    return [tree]


def _truth(tree: Any, env: dict[str, bool]) -> bool:
    if isinstance(tree, tuple):
        if tree[0] == "!":
            return not _truth(tree[1], env)
        left, right = _truth(tree[1], env), _truth(tree[2], env)
        return left and right if tree[0] == "&" else left or right
    field, operator, _ = tree
    if field in (0, 1):
        return field == 1
    value = env[field]
    return not value if operator in ("!=", "not in") else value


@settings(max_examples=300, deadline=None)
@given(st.lists(_tree(4), min_size=1, max_size=3))
def test_verdict_matches_a_truth_table(trees: list[Any]) -> None:
    domain = list(itertools.chain.from_iterable(_flatten(t) for t in trees))
    everything = all(
        all(_truth(t, dict(zip("abc", values, strict=True))) for t in trees)
        for values in itertools.product([False, True], repeat=3)
    )
    assert analyse_domain(domain).verdict == ("all" if everything else "bounded")
