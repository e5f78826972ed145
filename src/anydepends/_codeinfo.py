"""What a ``yield`` dependency's bytecode says about its teardown, read once.

Two facts decide how the engine sets up an async generator, and both can be read from
its code before it runs:

- :attr:`GenInfo.teardown_waits`: the code after its ``yield`` can suspend (an
  ``await``, ``async with`` or ``async for`` there). Only such a teardown can be
  interrupted by cancellation, so only such a generator is set up inside a cancel scope
  of ours, which its teardown then shields. A teardown that cannot wait costs nothing.
- :attr:`GenInfo.may_hold_scope`: it has a ``with``/``async with`` block, or calls an
  ``__enter__``-like method itself, so it may keep a cancel scope open across its
  ``yield``. This one is only an optimisation hint (the engine checks the cancel-scope
  stack where it matters); it may be wrong only towards "yes".
- :attr:`GenInfo.setup_waits`: the code before its first ``yield`` can suspend. One
  that cannot, set up in place, runs to its ``yield`` on its first step, so nothing
  else can happen meanwhile (a held scope's memo writes can wait, see ``_codegen``).

The analysis is conservative: anything it cannot read counts as "waits" and "holds".

For a sync generator run in place (``sync_to_thread=False``) only the second fact is
read (:func:`sync_gen_may_hold_scope`): one that may hold a cancel scope is stepped as
an async generator, so it is placed and hosted as async generators are.

One fact about plain ``async def`` dependencies is read the same way:
:func:`may_suspend` is false for a coroutine function whose own code has no
suspension point (no ``await``, ``async with`` or ``async for``): its coroutine runs to
the end on its first step, so nothing can happen while it runs, and the generated code
needs no position store or hand-over check around it.
"""

from __future__ import annotations

import dis
import functools
import inspect
from types import CodeType
from typing import Any, Final

__all__ = [
    "GEN_INFO_ATTR",
    "GenInfo",
    "gen_info",
    "gen_info_of_code",
    "may_suspend",
    "sync_gen_may_hold_scope",
]

#: A wrapper that delegates to another generator (a trace's, say) can carry that
#: generator's :class:`GenInfo` under this attribute.
GEN_INFO_ATTR: Final = "__anydepends_gen_info__"

_AWAITS: Final = frozenset({"GET_AWAITABLE", "GET_ANEXT", "BEFORE_ASYNC_WITH", "SEND"})
_JUMPS: Final = frozenset({*dis.hasjrel, *dis.hasjabs, *getattr(dis, "hasjump", ())})
_ENDS: Final = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE"})
_WITHS: Final = frozenset({"BEFORE_WITH", "BEFORE_ASYNC_WITH", "SETUP_WITH"})
_ENTER_NAMES: Final = frozenset(
    {
        "__enter__",
        "__aenter__",
        "enter_context",
        "enter_async_context",
        "push",
        "push_async_exit",
        "callback",
        "push_async_callback",
    }
)


class GenInfo:
    """What the engine needs to know about one generator function's code."""

    __slots__ = ("may_hold_scope", "setup_waits", "teardown_waits")

    def __init__(
        self, teardown_waits: bool, may_hold_scope: bool, setup_waits: bool = True
    ) -> None:
        self.teardown_waits = teardown_waits
        self.may_hold_scope = may_hold_scope
        self.setup_waits = setup_waits

    def __repr__(self) -> str:
        return (
            f"GenInfo(teardown_waits={self.teardown_waits},"
            f" may_hold_scope={self.may_hold_scope},"
            f" setup_waits={self.setup_waits})"
        )


UNKNOWN: Final = GenInfo(teardown_waits=True, may_hold_scope=True, setup_waits=True)


@functools.lru_cache(maxsize=4096)
def gen_info_of_code(code: CodeType) -> GenInfo:
    """Analyse one async generator's code object (cached per code object)."""
    try:
        instructions = list(dis.get_instructions(code))
    except Exception:  # pragma: no cover - a code object dis cannot read
        return UNKNOWN
    first_yield = -1
    previous = ""
    previous_arg = ""
    for ins in instructions:
        if ins.opname == "YIELD_VALUE" and (
            previous == "ASYNC_GEN_WRAP"
            or (previous == "CALL_INTRINSIC_1" and "ASYNC_GEN_WRAP" in previous_arg)
        ):
            first_yield = ins.offset
            break
        previous, previous_arg = ins.opname, str(ins.argrepr)
    if first_yield < 0:
        return UNKNOWN  # not the async generator we expect: assume the worst
    # Code that runs after the yield: everything after it, and any loop around it.
    after_start = first_yield
    for ins in instructions:
        if (
            ins.opname.startswith("JUMP_BACKWARD")
            and ins.offset > first_yield
            and isinstance(ins.argval, int)
            and ins.argval <= first_yield
        ):
            after_start = min(after_start, ins.argval)
    waits = any(
        ins.opname in _AWAITS and ins.offset >= after_start for ins in instructions
    )
    return GenInfo(
        teardown_waits=waits,
        may_hold_scope=_holds(code, instructions),
        setup_waits=_setup_waits(code, instructions),
    )


def _setup_waits(code: CodeType, instructions: list[dis.Instruction]) -> bool:
    """Whether a suspension point is reachable from the start of *code* without
    passing a ``yield``: control flow, exception handlers included (an ``await`` in
    an ``except`` block before the ``yield`` may sit after it in the bytecode)."""
    at = {ins.offset: k for k, ins in enumerate(instructions)}
    entries: Any = getattr(dis.Bytecode(code), "exception_entries", None)
    if entries is None:  # pragma: no cover - no exception table to read
        return True
    handlers: list[tuple[int, int, int]] = [(e.start, e.end, e.target) for e in entries]
    seen: set[int] = set()
    todo = [0]
    while todo:
        k = todo.pop()
        while k < len(instructions) and k not in seen:
            seen.add(k)
            ins = instructions[k]
            if ins.opname in _AWAITS:
                return True
            if ins.opname == "YIELD_VALUE":
                break  # not an await's (one was seen first): the generator's yield
            targets = [t for start, end, t in handlers if start <= ins.offset < end]
            if ins.opcode in _JUMPS:
                targets.append(int(ins.argval))
            for target in targets:
                found = at.get(target)
                if found is None:
                    return True  # a jump this reading does not follow: assume it waits
                todo.append(found)
            if ins.opname in _ENDS or (
                ins.opname.startswith("JUMP") and "IF" not in ins.opname
            ):
                break
            k += 1
    return False


def gen_info(call: object) -> GenInfo:
    """The :class:`GenInfo` of the async generator function behind *call*.

    *call* may be the function itself, a ``functools.partial`` of it, or an instance
    whose class's ``__call__`` is one; anything else (a wrapper that returns another
    function's generator, say) is :data:`UNKNOWN`, and the engine reads the generator
    object's own code instead once it exists.
    """
    carried = getattr(call, GEN_INFO_ATTR, None)
    if isinstance(carried, GenInfo):
        return carried
    func, code = _function_of(call)
    if code is None or not inspect.isasyncgenfunction(func):
        return UNKNOWN
    return gen_info_of_code(code)


def sync_gen_may_hold_scope(call: object) -> bool:
    """Whether the sync generator function behind *call* may keep a cancel scope
    open across its ``yield`` (a ``with`` block, or an ``__enter__``-like call of
    its own); ``True`` for anything it cannot read (conservative)."""
    func, code = _function_of(call)
    if code is None or not inspect.isgeneratorfunction(func):
        return True
    return _sync_holds(code)


@functools.lru_cache(maxsize=4096)
def _sync_holds(code: CodeType) -> bool:
    """:func:`sync_gen_may_hold_scope` of one code object (read once: a
    ``max_concurrency`` sync generator asks on every call)."""
    try:
        return _holds(code, list(dis.get_instructions(code)))
    except Exception:  # pragma: no cover - a code object dis cannot read
        return True


def _holds(code: CodeType, instructions: list[dis.Instruction]) -> bool:
    return any(ins.opname in _WITHS for ins in instructions) or bool(
        _ENTER_NAMES.intersection(code.co_names)
    )


def _function_of(call: object) -> tuple[object, CodeType | None]:
    """The Python function whose frame runs when *call* is called (through partials,
    bound methods and a callable instance's ``__call__``), and its code, if any."""
    for _ in range(100):
        if isinstance(call, functools.partial):
            call = call.func
            continue
        break
    func: object = call
    if not inspect.isfunction(func) and not inspect.ismethod(func):
        func = getattr(type(call), "__call__", None)  # noqa: B004 - the attribute
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    return func, code if isinstance(code, CodeType) else None


def may_suspend(call: object) -> bool:
    """Whether calling *call* and awaiting the result may suspend.

    ``False`` only for a plain coroutine function (or a bound method, a
    ``functools.partial`` of one, or an instance whose class's ``__call__`` is one)
    whose code has no ``YIELD_VALUE``: a coroutine suspends only there, in its own
    frame. Anything else (wrappers, awaitables returned by sync callables) may.
    """
    _, code = _function_of(call)
    if code is None or not code.co_flags & inspect.CO_COROUTINE:
        return True
    return _code_may_suspend(code)


def _code_may_suspend(code: CodeType) -> bool:
    # Wordcode: every even byte is an opcode (inline caches are CACHE opcodes), every
    # odd byte an argument; one C-level scan, no instruction objects.
    return _YIELD_VALUE in code.co_code[::2]


_YIELD_VALUE: Final = bytes([dis.opmap["YIELD_VALUE"]])
