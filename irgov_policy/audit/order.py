"""The ordering rule: no node may run before a node whose IR step precedes its own.

An IR is a sequence. A step whose `constraints` hold `"independent": true` may run concurrently
with the step just before it; consecutive steps linked that way form one *group*, and groups run
in IR order: every step of a group must run after every step of the group before it.

What "after" means depends on the DAG:
- when any node carries `depends_on`, the DAG runs by its dependencies, and node B runs after
  node A only when A is among B's (transitive) dependencies;
- otherwise the executor runs the node list in order, and B runs after A when it comes later.

Only steps matched by exactly one node are checked; missing and duplicated nodes already fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..model import Step
from .nodes import JudgedNode
from .result import MalformedNode, OrderViolation

__all__ = ["check_order", "step_groups"]


def step_groups(steps: Sequence[Step]) -> list[int]:
    """The group number of each step (see the module's rule)."""
    groups: list[int] = []
    for index, step in enumerate(steps):
        independent = index > 0 and step.constraints.get("independent") is True
        groups.append(groups[-1] if independent else (groups[-1] + 1 if groups else 0))
    return groups


def check_order(steps: Sequence[Step], step_ids: Sequence[str], placed: Mapping[int, JudgedNode],
                nodes: Sequence[JudgedNode]) -> tuple[list[OrderViolation], list[MalformedNode]]:
    """`placed` maps an IR step index to its one node; `nodes` are all well-formed nodes."""
    by_dependencies = any(n.depends_on is not None for n in nodes)
    if by_dependencies:
        ancestors, malformed = _ancestors(nodes)
        if malformed:
            return [], malformed

        def runs_after(later: JudgedNode, earlier: JudgedNode) -> bool:
            return bool(ancestors[later.index] >> earlier.index & 1)
    else:
        def runs_after(later: JudgedNode, earlier: JudgedNode) -> bool:
            return later.index > earlier.index

    groups = step_groups(steps)
    members: dict[int, list[int]] = {}
    for step_index in sorted(placed):
        members.setdefault(groups[step_index], []).append(step_index)
    ordered = [members[g] for g in sorted(members)]
    violations: list[OrderViolation] = []
    # Adjacent groups suffice: "runs after" is transitive in both readings of the DAG.
    for before, after in zip(ordered, ordered[1:], strict=False):
        for later_index in after:
            later = placed[later_index]
            for earlier_index in before:
                if not runs_after(later, placed[earlier_index]):
                    violations.append(OrderViolation(later_index, step_ids[later_index], later.index,
                                                     earlier_index, step_ids[earlier_index]))
                    break
    return violations, []


def _ancestors(nodes: Sequence[JudgedNode]) -> tuple[dict[int, int], list[MalformedNode]]:
    """Each node's transitive dependencies as a bit set of node indices; cycles and unknown ids
    are malformed nodes."""
    index_of: dict[str, int] = {}
    for node in nodes:
        index_of.setdefault(node.node_id, node.index)
    malformed: list[MalformedNode] = []
    deps: dict[int, list[int]] = {}
    for node in nodes:
        resolved: list[int] = []
        for dep in node.depends_on or ():
            if dep not in index_of:
                malformed.append(MalformedNode(node.index, "bad_depends_on",
                                               f"node `{node.node_id}` depends on unknown node `{dep}`"))
            else:
                resolved.append(index_of[dep])
        deps[node.index] = resolved
    if malformed:
        return {}, malformed
    ancestors: dict[int, int] = {}
    state: dict[int, int] = {}  # 1 visiting, 2 done
    for start in deps:
        if state.get(start) == 2:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            current, position = stack[-1]
            children = deps[current]
            if position < len(children):
                stack[-1] = (current, position + 1)
                child = children[position]
                if state.get(child) == 1:
                    name = next(n.node_id for n in nodes if n.index == child)
                    return {}, [MalformedNode(child, "dependency_cycle",
                                              f"node `{name}` depends on itself through `depends_on`")]
                if state.get(child) != 2:
                    state[child] = 1
                    stack.append((child, 0))
                continue
            mask = 0
            for child in children:
                mask |= (1 << child) | ancestors[child]
            ancestors[current] = mask
            state[current] = 2
            stack.pop()
    return ancestors, []
