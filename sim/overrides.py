"""Parameter overrides applied to a resolved config, as if set before interpolation.

A PSA or DSA arm changes a few numeric config values (e.g. ``therapies.sunitinib.pfs.median``)
and rebuilds the model. Setting them on the unresolved ``DictConfig`` and resolving again is
exact -- every node that interpolates a changed value (the rechallenge's
``pfs: ${therapies.sunitinib.pfs}``) follows it -- but costs a deep copy and a resolution of
the whole config per arm (tens of milliseconds). :class:`Overrider` resolves once and works
out, for each parameter path, every resolved path that carries its value through pure
references ``${a.b.c}``; an arm then copies only the dicts along those paths (the rest of the
config is shared, never mutated) and sets the value at each. A parameter that reaches a node
through any other kind of interpolation (string templates, resolvers, relative references)
makes the overrider fall back to the exact path for every arm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from omegaconf import DictConfig, OmegaConf

from sim.config import to_container
from sim.uncertainty.params import apply_overrides, get_path

_PURE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")
_ANY = re.compile(r"\$\{([^${}]*)\}")
_NAME = re.compile(r"[A-Za-z_.][\w.]*")


def _walk(node, prefix=""):
    """``(path, value)`` of every leaf of a nested container (dict keys and list indices)."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}{k}.")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], node


def _under(path: str, node: str) -> bool:
    return path == node or path.startswith(node + ".")


def _overlaps(path: str, template: str) -> bool:
    """Whether a non-pure interpolation ``template`` may read ``path``: any dotted name inside
    its ``${...}`` (resolver arguments included) above or below ``path``; a relative
    reference (leading dot) always may."""
    for body in _ANY.findall(template):
        for name in _NAME.findall(body):
            if name.startswith(".") or _under(path, name) or _under(name, path):
                return True
    return False


class Overrider:
    """Build per-arm plain configs from one resolved base config (see the module docstring).

    Parameters
    ----------
    cfg : DictConfig or mapping
        The composed, unresolved config.
    paths : iterable of str
        Every parameter path an arm may set.
    """

    def __init__(self, cfg, paths: Iterable[str]):
        self.cfg = cfg
        self.base = to_container(cfg)
        raw = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else self.base
        links, other = [], []
        for q, v in _walk(raw):
            if isinstance(v, str) and "${" in v:
                m = _PURE.match(v)
                (links.append((q, m.group(1))) if m else other.append(v))
        self.aliases: dict[str, list[str]] = {}
        self.exact = False
        for p in paths:
            found, todo = [p], [p]
            while todo:
                a = todo.pop()
                for q, t in links:
                    if _under(a, t) and (alias := q + a[len(t):]) not in found:
                        found.append(alias)
                        todo.append(alias)
                    elif _under(t, a):        # a reference into a node below the parameter
                        self.exact = True
            if any(_overlaps(a, s) for s in other for a in found):
                self.exact = True
            self.aliases[p] = found

    def apply(self, overrides: Mapping[str, float]) -> dict:
        """The plain resolved config of one arm: ``overrides`` set at every path carrying them.

        Equal to ``to_container(apply_overrides(cfg, overrides))``; shares unchanged sub-dicts
        with the base config (treat the result as read-only).
        """
        if self.exact:
            return to_container(apply_overrides(self.cfg, overrides))
        root = dict(self.base)
        copied = {"": root}
        for p, v in overrides.items():
            for path in self.aliases.get(p) or [p]:
                old = get_path(self.base, path)      # the path must exist (UserError naming it)
                parts = path.split(".")
                node, at = root, ""
                for part in parts[:-1]:
                    at = f"{at}.{part}" if at else part
                    if at not in copied:
                        child = node[int(part)] if isinstance(node, list) else node[part]
                        child = list(child) if isinstance(child, list) else dict(child)
                        if isinstance(node, list):
                            node[int(part)] = child
                        else:
                            node[part] = child
                        copied[at] = child
                    node = copied[at]
                if isinstance(old, int) and not isinstance(old, bool) and float(v).is_integer():
                    v = int(v)
                if isinstance(node, list):
                    node[int(parts[-1])] = v
                else:
                    node[parts[-1]] = v
        return root
