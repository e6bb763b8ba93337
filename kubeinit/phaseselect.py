"""Selection of a phase tree's leaves by path (`--only`, `--skip-phases`, `init phase <path>`),
as kubeadm's --skip-phases does; kubeinit.workflow re-exports these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kubeinit.errors import UserError

if TYPE_CHECKING:
    from kubeinit.workflow import Phase


def find(tree: list[Phase], path: str) -> Phase:
    parts = [p for p in path.strip("/").split("/") if p]
    nodes, found = tree, None
    for part in parts:
        found = next((n for n in nodes if n.name == part), None)
        if found is None:
            raise UserError(f"{path!r} is not a phase; known phases: {', '.join(all_paths(tree))}")
        nodes = found.children
    if found is None:
        raise UserError("an empty phase name was given")
    return found


def all_paths(tree: list[Phase]) -> list[str]:
    out: list[str] = []

    def walk(ps: list[Phase]):
        for p in ps:
            out.append(p.path)
            walk(p.children)

    walk(tree)
    return out


def _split(values: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def select(tree: list[Phase], only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[Phase]:
    """The leaves to run, in tree order: within `only` (if given), minus `skip`.

    Paths name a phase or a whole sub-tree (`certs`, `certs/apiserver`), as
    kubeadm's --skip-phases does; an unknown name is an error, never ignored.
    """
    leaves = [leaf for p in tree for leaf in p.leaves()]
    only_l, skip_l = _split(only), _split(skip)
    chosen = leaves
    if only_l:
        keep = {leaf.path for name in only_l for leaf in find(tree, name).leaves()}
        chosen = [leaf for leaf in leaves if leaf.path in keep]
    drop = {leaf.path for name in skip_l for leaf in find(tree, name).leaves()}
    return [leaf for leaf in chosen if leaf.path not in drop]
