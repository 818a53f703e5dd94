"""The option registries: register, look up, unregister, register for a block."""

import pytest

from dhtgraph._registry import Registry


def _one():
    return 1


def _two():
    return 2


def test_register_resolve_and_unregister():
    registry = Registry("colour")
    registry.register("one", _one)
    assert registry.resolve("one") is _one and registry.names() == ("one",)
    assert registry.unregister("one") is _one
    assert "one" not in registry and registry.names() == ()


def test_unregister_of_an_unknown_name_names_the_option():
    registry = Registry("colour")
    registry.register("one", _one)
    with pytest.raises(ValueError, match=r"Expected 'colour' to be one of \('one',\) "
                                         r"\(got 'two'\)"):
        registry.unregister("two")
    assert registry.names() == ("one",)


def test_registered_lasts_for_the_block_even_when_it_raises():
    registry = Registry("colour")
    with registry.registered("one", _one) as function:
        assert function is _one and registry.resolve("one") is _one
    assert "one" not in registry
    with pytest.raises(RuntimeError, match="inside"):
        with registry.registered("two", _two):
            raise RuntimeError("inside")
    assert registry.names() == ()


@pytest.mark.parametrize("function", [_two, _one], ids=["another", "the same"])
def test_registered_refuses_a_taken_name_and_never_removes_it(function):
    # Whether the block would register another function or the owner itself, the name
    # is taken: the block is refused and the option stays.
    registry = Registry("colour")
    registry.register("one", _one)
    with pytest.raises(ValueError, match="'colour' option named 'one' is already registered"):
        with registry.registered("one", function):
            pass  # pragma: no cover (never entered)
    assert registry.resolve("one") is _one
