"""OpenMP's execution order, recorded while the task-creating code is unrolled at compile time.

The result is a happens-before DAG over the work items (tasks, worksharing loops, sequential
steps) and synchronisation points: an item is ordered after the code its thread ran before it,
an explicit task after its creation point and after the sibling tasks its depend clauses match,
and everything before a barrier, a taskwait (for the waiting thread's child tasks) or the end of
a region before everything after it. Items with no path between them may run concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx


@dataclass(eq=False)
class Thread:
    """One thread of a team; compared and hashed by identity (each is its own thread)."""

    pos: str  # the node this thread's implicit task has reached
    children: list[str] = field(default_factory=list)  # explicit tasks not yet waited for


@dataclass
class Team:
    threads: list[Thread]
    pending: list[str] = field(default_factory=list)  # explicit tasks created in this team


@dataclass
class Order:
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    syncs: int = 0

    def __post_init__(self) -> None:
        self.graph.add_node("start")

    def sync(self, preds: list[str]) -> str:
        self.syncs += 1
        node = f"sync{self.syncs}"
        self.graph.add_node(node)
        for p in preds:
            self.graph.add_edge(p, node)
        return node

    def team(self, size: int, parent: Thread) -> Team:
        return Team([Thread(parent.pos) for _ in range(size)])

    def step(self, thread: Thread, item: str) -> None:
        """Code run by the thread itself: after everything the thread did before."""
        self.graph.add_edge(thread.pos, item)
        thread.pos = item

    def collective(self, team: Team, item: str) -> None:
        """A worksharing loop: after every thread's earlier code, then an implicit barrier."""
        for t in team.threads:
            self.graph.add_edge(t.pos, item)
        for t in team.threads:
            t.pos = item
        self.barrier(team)

    def league(self, thread: Thread, items: list[str]) -> None:
        """The tasks of a league of teams: concurrent with each other, all done after."""
        for item in items:
            self.graph.add_edge(thread.pos, item)
        thread.pos = self.sync(items)

    def task(self, team: Team, thread: Thread, item: str, after: list[str]) -> None:
        """An explicit task: after its creation point and the sibling tasks it depends on."""
        self.graph.add_edge(thread.pos, item)
        for a in after:
            self.graph.add_edge(a, item)
        thread.children.append(item)
        team.pending.append(item)

    def taskwait(self, thread: Thread) -> None:
        thread.pos = self.sync([thread.pos, *thread.children])
        thread.children.clear()

    def barrier(self, team: Team) -> None:
        node = self.sync([t.pos for t in team.threads] + team.pending)
        for t in team.threads:
            t.pos = node
            t.children.clear()
        team.pending.clear()

    def join(self, team: Team, parent: Thread) -> None:
        """The end of a parallel region: an implicit barrier, then the parent goes on."""
        self.barrier(team)
        parent.pos = team.threads[0].pos

    def ordered_pairs(self, items: list[str]) -> set[tuple[str, str]]:
        """Every (a, b) with a happening before b."""
        closure = nx.transitive_closure_dag(self.graph)
        wanted = set(items)
        return {(a, b) for a, b in closure.edges if a in wanted and b in wanted}
