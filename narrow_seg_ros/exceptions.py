"""Reading exceptions that libraries wrap in their own."""

from __future__ import annotations


def found_in_chain(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in ``exc``'s chain (itself, then its causes and contexts):
    a library that raises its own error from ours hides ours one link down."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
