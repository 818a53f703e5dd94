"""Named options resolved once to callables (criteria, pooling weightings, encoders).

A :class:`Registry` maps an option name (what a user writes in a config, e.g.
``criterion='aicc'``) to the one function that implements it. Configs validate names
against it when they are built, and the pipeline looks each name up once per call instead
of repeating ``if name == ...`` chains. Adding an option is registering one function::

    from dhtgraph.selection.select import CRITERION_FUNCTIONS

    @CRITERION_FUNCTIONS.register("mdl")
    def mdl(var, size, num_pixels, iota):
        ...  # returns the IC of every block (K,), higher is better

This module is foundation (no imports from the pipeline): every stage may use it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Generic, Iterator, Optional, TypeVar

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """A mapping ``name -> function`` with errors that name the option.

    Parameters
    ----------
    option : str
        The option (argument) name its values are given as, e.g. ``'criterion'``; used
        in error messages.
    """

    def __init__(self, option: str):
        self.option = option
        self._items: dict[str, F] = {}

    def register(self, name: str, function: Optional[F] = None):
        """Register ``function`` under ``name`` (usable as a decorator).

        Raises
        ------
        ValueError
            If ``name`` is already registered (names are never silently replaced).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"Expected a non-empty str name for a '{self.option}' option "
                            f"(got {name!r})")

        def add(fn: F) -> F:
            if name in self._items and self._items[name] is not fn:
                raise ValueError(f"A '{self.option}' option named {name!r} is already registered")
            self._items[name] = fn
            return fn

        return add if function is None else add(function)

    def unregister(self, name: str) -> F:
        """Remove the option ``name`` and return its function.

        Raises
        ------
        ValueError
            If ``name`` is not registered.
        """
        self.check(name, self.option)
        return self._items.pop(name)

    @contextmanager
    def registered(self, name: str, function: F) -> Iterator[F]:
        """Register ``function`` under ``name`` inside a ``with`` block only (e.g. in a
        test: the registries are process-wide).

        Parameters
        ----------
        name : str
            The option name; a name already registered (to this function or another) is
            refused, so the block never removes an option it did not add.
        function : callable
            The option's function, yielded to the block.

        Raises
        ------
        ValueError
            If ``name`` is already registered.
        """
        if name in self:
            raise ValueError(f"A '{self.option}' option named {name!r} is already registered")
        self.register(name, function)
        try:
            yield function
        finally:
            if self._items.get(name) is function:
                del self._items[name]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._items)

    def check(self, name, argument: Optional[str] = None) -> str:
        """Return ``name`` if registered; raise ValueError naming the argument otherwise."""
        if not isinstance(name, str) or name not in self._items:
            raise ValueError(f"Expected '{argument or self.option}' to be one of {self.names()} "
                             f"(got {name!r})")
        return name

    def resolve(self, name, argument: Optional[str] = None) -> F:
        """The function registered under ``name`` (ValueError naming the argument if none)."""
        return self._items[self.check(name, argument)]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.option!r}, {list(self._items)})"
