"""YAML from files a user (or a stranger) hands over, read with bounds on size, nesting and aliases.

PyYAML's ``safe_load`` runs no code, but it keeps an alias as a reference to its anchor's node, so
that a 618-byte file of eight levels of ten aliases ("billion laughs") loads as a small object graph
that any walk of it (``str()`` of a class name, an error message printing the value) expands to
10^8 items: 10 s and 1 GB in ``load_spec`` before this guard, ten times that per level added.
Nesting is limited as well: PyYAML's and ruamel's composers recurse, and a file of 10^5 ``[``
ended in RecursionError.

:func:`check_yaml` runs over the parser's events (no recursion, no objects built) and refuses a
document nested deeper than ``max_depth`` or holding more than ``max_nodes`` nodes once every alias
is expanded; :func:`load_yaml_file` adds the file size and turns every failure into ValueError.
Torch-free on purpose: the node (label groups) and the recording reader use it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_BYTES = 1 << 20  # a class table or a groups file is a few KB
MAX_DEPTH = 64
MAX_NODES = 100_000  # scalars and collections with every alias expanded; 255 classes take ~1,300
_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's events where PyYAML has it: 10x faster


def shown(value, limit: int = 60) -> str:
    """A value read from a file (YAML, an .onnx's JSON metadata) as an error message shows it: its
    repr, cut short, so that a 3000-character name or a nested list keeps the message to one line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


def check_yaml(text: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """ValueError if ``text`` nests deeper than ``max_depth``, or expands (aliases, merge keys) to
    more than ``max_nodes`` nodes, or has an alias inside its own anchor; a YAML syntax error is
    left to the loader, which reports it with its position."""
    anchors: dict[str, int] = {}  # anchor -> expanded node count of its node
    stack: list[list] = [[None, 0]]  # open collections: [anchor, expanded node count so far]
    total = 0  # expanded nodes so far
    try:
        for event in yaml.parse(text, Loader=_Parser):
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 0])
                if len(stack) - 1 > max_depth:
                    raise ValueError(f"nested deeper than {max_depth} levels")
                size = 1
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, inner = stack.pop()
                if anchor is not None:
                    anchors[anchor] = 1 + inner
                stack[-1][1] += 1 + inner
                continue
            elif isinstance(event, yaml.AliasEvent):
                if any(frame[0] == event.anchor for frame in stack):
                    raise ValueError(f"the alias *{event.anchor} refers to a node that contains it (recursive)")
                size = anchors.get(event.anchor, 1)  # an undefined alias: the loader reports it
            elif isinstance(event, yaml.ScalarEvent):
                size = 1
                if event.anchor is not None:
                    anchors[event.anchor] = 1
            else:  # stream and document events
                continue
            total += size
            if total > max_nodes:
                raise ValueError(f"expands to more than {max_nodes} nodes (aliases repeating aliases?)")
            if not isinstance(event, yaml.CollectionStartEvent):
                stack[-1][1] += size
    except yaml.YAMLError:
        return


def load_yaml_file(path: str | Path, what: str = "YAML file", *, max_bytes: int = MAX_BYTES, **limits):
    """The document in the file at ``path``, read with :func:`check_yaml`'s bounds and ``safe_load``;
    ValueError naming ``path`` for a missing, oversized, non-UTF-8, invalid or unbounded file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{path}: {size} bytes, over the {max_bytes} a {what} may have")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc}") from exc
    try:
        return load_yaml_text(text, **limits)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_yaml_text(text: str, **limits):
    """The document in ``text``, read with :func:`check_yaml`'s bounds by libyaml where PyYAML has
    it; ValueError of one line ("refusing this YAML: ..." or "not valid YAML: ...")."""
    try:
        check_yaml(text, **limits)
    except ValueError as exc:
        raise ValueError(f"refusing this YAML: {exc}") from exc
    try:
        # the same (libyaml) loader as the check: PyYAML's pure-Python one recurses per nesting level,
        # where libyaml (PyYAML 6.0.4's) refuses past 1000 levels before the check could count 64
        return yaml.load(text, Loader=_Parser)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {' '.join(str(exc).split())}") from exc
    except Exception as exc:  # a constructor's own error, e.g. ValueError of a timestamp like 2024-13-01
        raise ValueError(f"not valid YAML: {type(exc).__name__}: {exc}") from exc
