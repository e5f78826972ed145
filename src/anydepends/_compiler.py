"""The compiler: a root callable and its declarations -> an immutable, indexed Plan.

Compilation walks the declared graph once, depth first in declaration order (FastAPI's
order), memoised per cache key so shared subgraphs are visited once. It validates
everything that can be known before a call (cycles, lifetimes, declarations, which
values and context types are needed; the rules and their messages are in ``_rules``)
and produces plain data (``_plan``). The scheduler never introspects.

The walk is iterative (an explicit stack of frames, one per dependable being compiled),
so any depth compiles without touching the recursion limit, and it is linear in the
size of the graph: nodes keep a parent *site* instead of a path, paths are built only
for messages, fan-in is deduplicated with sets, and what each callable declares is
read once (``_shapes.shape_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final

from . import _collector as collector
from . import _rules as rules
from ._errors import DependencyError
from ._introspect import EMPTY, CallKind, Param, ParamKind, Shape, qualname
from ._lifetime import Lifetime, declared, may_depend_on
from ._markers import Dependency, is_security_scheme
from ._plan import Node, Plan, Site
from ._shapes import LocalShapes, shape_of

__all__ = ["compile_plan"]

_DEPENDENCY: Final = ParamKind.DEPENDENCY
_SECURITY_SCOPES: Final = ParamKind.SECURITY_SCOPES
_THREADED: Final = (CallKind.SYNC, CallKind.SYNC_GEN)
_APP: Final = Lifetime.APP
_REQUEST: Final = Lifetime.REQUEST
_GENERATORS: Final = frozenset({CallKind.ASYNC_GEN, CallKind.SYNC_GEN})
_SCAN_LIMIT: Final = 16  # past this many deps, deduplicate with a set


def compile_plan(
    root: Callable[..., Any],
    *,
    overrides: Mapping[Any, Callable[..., Any]],
    context_types: tuple[type, ...],
    sync_to_thread: bool,
    introspected: LocalShapes | None = None,
    dependencies: tuple[Dependency, ...] = (),
    app_context_types: tuple[type, ...] = (),
    sequential: bool | None = None,
) -> Plan[Any]:
    """Compile *root* into a :class:`Plan`; raise a ``DependencyError`` if broken.

    *context_types* are injected by type; of those, *app_context_types* may also be
    injected into app-scoped dependables (the container itself). *introspected* is the
    caller's cache for what is not cached per process (see ``_shapes``): closures,
    partials, callable objects. *sequential* fixes the plan's mode (None: the
    container's).
    """
    compiler = _Compiler(
        overrides, context_types, app_context_types, sync_to_thread, introspected
    )
    try:
        compiler.run(root, dependencies)
        nodes = tuple(compiler.nodes)
        rules.check_permits(nodes, qualname(root))
        rules.check_indirect_lifetimes(nodes)
        dependents: list[list[int]] = [[] for _ in nodes]
        for node in nodes:
            index = node.index
            for dep in node.deps:
                dependents[dep].append(index)
        return Plan(
            root=root,
            nodes=nodes,
            dependents=tuple(map(tuple, dependents)),
            required_values={k: tuple(v) for k, v in compiler.required.items()},
            context_types=frozenset(compiler.contexts),
            has_app_nodes=any(n.lifetime is _APP for n in nodes),
            dependencies=dependencies,
            sequential=sequential,
        )
    finally:
        collector.resume(compiler.paused_collector)


def _key_part(call: object) -> Hashable:
    """The cache-key element for a callable: itself if hashable, else its identity."""
    try:
        hash(call)
    except TypeError:
        return ("unhashable", id(call))
    return call


class _Frame:
    """A dependable being compiled: its parameters are walked one at a time.

    ``declaring`` is the parameter whose declaration is being compiled (an error met
    there names it); ``declared_as`` is the parent's parameter that declared this one.
    Frames live on a stack: a chain is as many frames deep as it is long.
    """

    __slots__ = (
        "args_from",
        "call",
        "contexts",
        "declared_as",
        "declaring",
        "deps_from",
        "effect",
        "items",
        "key",
        "lifetime",
        "marker",
        "original",
        "part",
        "position",
        "restricted",
        "scope_args",
        "seen",
        "shape",
        "site",
        "text",
        "values",
        "visible",
    )

    def __init__(
        self,
        shape: Shape,
        call: Callable[..., Any],
        original: Callable[..., Any],
        marker: Dependency,
        visible: tuple[str, ...],
        key: Hashable,
        lifetime: Lifetime,
        site: Site,
        part: Hashable,
        declared_as: str | None,
        items: tuple[Param, ...],
        args_from: int,
        deps_from: int,
        effect: int = 0,
    ) -> None:
        self.shape = shape
        self.call = call
        self.original = original
        self.marker = marker
        self.visible = visible
        self.key = key
        self.lifetime = lifetime
        # Only app-scoped and request-scoped yield dependencies restrict what they
        # may depend on (see _lifetime.may_depend_on).
        self.restricted = lifetime is _APP or (
            lifetime is _REQUEST and shape.kind in _GENERATORS
        )
        self.site = site
        self.part = part
        self.declared_as = declared_as
        self.items = items
        self.effect = effect  # the first `effect` items are extra dependencies
        self.position = 0
        self.declaring: str | None = None
        # This frame's arguments and deps are the top of the compiler's two stacks,
        # from these offsets (children push theirs above, and take them before
        # this frame continues): no lists per frame.
        self.args_from = args_from
        self.deps_from = deps_from
        self.seen: set[int] | None = None  # deps as a set, once there are many
        # Made on first use: most dependables take no values, contexts or scopes.
        self.values: list[tuple[str, Any]] | None = None
        self.contexts: list[tuple[str, type]] | None = None
        self.scope_args: list[tuple[str, type]] | None = None
        self.text: str | None = None  # " -> ".join(path), once needed


class _Compiler:
    """One compilation: an iterative depth-first walk with a memo per cache key."""

    def __init__(
        self,
        overrides: Mapping[Any, Callable[..., Any]],
        context_types: tuple[type, ...],
        app_context_types: tuple[type, ...],
        sync_to_thread: bool,
        fallback: LocalShapes | None,
    ) -> None:
        self.overrides = overrides
        self.context_types = context_types
        self.app_context_types = app_context_types
        self.sync_to_thread = sync_to_thread
        self.fallback = fallback
        self.nodes: list[Node] = []
        self.cached: dict[Hashable, int] = {}  # cache key -> cached node index
        self.nocache_first: dict[Hashable, int] = {}  # key -> first use_cache=False
        self.shapes: dict[Hashable, Shape] = {}  # key part -> shape, this compile
        self.uses_memo: dict[Hashable, bool] = {}
        self.on_path: set[Hashable] = set()  # key parts of the frames on the stack
        # The arguments and deps of the frames on the stack, each frame's on top of
        # its parent's (see _Frame).
        self.args: list[tuple[str, int]] = []
        self.deps: list[int] = []
        self.required: dict[str, list[str]] = {}
        self.contexts: set[type] = set()
        self.paused_collector = False  # see _collector

    # -- introspection, memoised per callable --------------------------------------
    def shape(
        self, call: Callable[..., Any], part: Hashable, site: Site | None
    ) -> Shape:
        """*call*'s shape; *site* is where it is met (its parent), for messages."""
        found = self.shapes.get(part)
        if found is None:
            where = site.path if site is not None else tuple
            found = self.shapes[part] = shape_of(call, where, self.fallback)
        return found

    def uses_scopes(self, call: Callable[..., Any], part: Hashable, site: Site) -> bool:
        """Whether *call* or anything it declares uses security scopes (as declared).

        FastAPI computes this on the declared graph, before overrides; cycles are
        reported by the main walk, so a back edge here simply counts as "no". A
        depth-first walk in declaration order that stops at the first use, with an
        explicit stack of ``[part, shape, its site (made when a child needs it),
        next parameter, uses, parent site]`` per callable.
        """
        memo = self.uses_memo
        known = memo.get(part)
        if known is not None:
            return known
        memo[part] = False  # provisional: breaks cycles
        shape = self.shape(call, part, site)
        uses = shape.declares_scopes or is_security_scheme(call)
        stack: list[list[Any]] = [[part, shape, None, 0, uses, site]]
        result = uses
        while stack:
            frame = stack[-1]
            params: tuple[Param, ...] = frame[1].params
            position: int = frame[3]
            uses = frame[4]
            child: list[Any] | None = None
            while not uses and position < len(params):
                p = params[position]
                position += 1
                if p.kind is not _DEPENDENCY:
                    continue
                marker = p.marker
                assert marker is not None and marker.dependency is not None
                if marker.own_scopes:
                    uses = True
                    break
                dependency = marker.dependency
                child_part = _key_part(dependency)
                known = memo.get(child_part)
                if known is not None:
                    uses = known
                    continue
                memo[child_part] = False
                here = frame[2]
                if here is None:
                    here = frame[2] = Site(frame[1].name, frame[5])
                try:
                    child_shape = self.shape(dependency, child_part, here)
                except DependencyError as exc:
                    raise exc.located(p.name) from exc.__cause__
                child_uses = child_shape.declares_scopes or is_security_scheme(
                    dependency
                )
                child = [child_part, child_shape, None, 0, child_uses, here]
                break
            frame[3] = position
            frame[4] = uses
            if child is not None:
                stack.append(child)
                continue
            memo[frame[0]] = uses
            stack.pop()
            result = uses
            if stack:
                stack[-1][4] = uses
        return result

    # -- the walk -------------------------------------------------------------------
    def run(self, call: Callable[..., Any], extra: tuple[Dependency, ...]) -> int:
        """Compile *call* as the root (after its extra dependencies); its index."""
        part = _key_part(call)
        shape = self.shape(call, part, None)
        if shape.kind.is_generator:
            raise rules.root_generator(shape.name)
        items = shape.params
        if extra:
            effect = tuple(
                Param("<dependencies>", _DEPENDENCY, EMPTY, EMPTY, marker)
                for marker in extra
            )
            items = (*effect, *items)
        frame = _Frame(
            shape,
            call,
            call,
            Dependency(call, use_cache=False),
            (),
            None,
            Lifetime.FUNCTION,
            Site(shape.name, None),
            part,
            None,
            items,
            0,
            0,
            len(extra),
        )
        self.on_path.add(part)
        stack = [frame]
        index = -1
        frames = 1
        try:
            while stack:
                frame = stack[-1]
                child = self.advance(frame)
                if child is not None:
                    stack.append(child)
                    frames += 1
                    if frames == collector.LARGE:
                        # compile_plan resumes it, whatever happens.
                        self.paused_collector = collector.pause()
                    continue
                index = self.finish(frame, root=len(stack) == 1)
                stack.pop()
                if stack:
                    self.record(stack[-1], index)
        except DependencyError as exc:
            top = stack[-1]
            param = top.declaring if top.declaring is not None else top.declared_as
            if param is None:
                raise
            raise exc.located(param) from exc.__cause__
        return index

    def advance(self, frame: _Frame) -> _Frame | None:
        """Walk *frame*'s parameters until one needs a new frame (returned) or none
        is left (``None``)."""
        items = frame.items
        count = len(items)
        while frame.position < count:
            p = items[frame.position]
            frame.position += 1
            kind = p.kind
            if kind is _DEPENDENCY:
                marker = p.marker
                assert marker is not None
                frame.declaring = p.name
                found = self.declare(frame, marker, p.name)
                if isinstance(found, _Frame):
                    return found
                self.record(frame, found)
            elif kind is _SECURITY_SCOPES:
                if frame.scope_args is None:
                    frame.scope_args = []
                frame.scope_args.append((p.name, p.annotation))
            else:
                frame.declaring = None
                self.value(frame, p)
        frame.declaring = None
        return None

    def record(self, frame: _Frame, index: int) -> None:
        """The declaration *frame* was compiling resolved to node *index*."""
        name = frame.declaring
        assert name is not None
        if frame.position > frame.effect:
            self.args.append((name, index))
        deps = self.deps
        seen = frame.seen
        if seen is None:
            # A few deps: scanning them is cheapest; fan-in: a set keeps it linear.
            start = frame.deps_from
            if index not in deps[start:]:
                deps.append(index)
                if len(deps) - start == _SCAN_LIMIT:
                    frame.seen = set(deps[start:])
        elif index not in seen:
            seen.add(index)
            deps.append(index)
        frame.declaring = None

    def value(self, frame: _Frame, p: Param) -> None:
        """A parameter that is neither a dependency nor the security scopes."""
        ctx = self.context_type(p.annotation)
        if ctx is not None:
            if frame.lifetime is _APP and ctx not in self.app_context_types:
                raise rules.app_context(frame.site, ctx, p.name)
            if frame.contexts is None:
                frame.contexts = []
            frame.contexts.append((p.name, ctx))
            self.contexts.add(ctx)
        elif frame.lifetime is _APP:
            if p.default is EMPTY:
                raise rules.app_value(frame.site, p.name)
            # App-scoped dependables never see per-call values: defaults only.
        else:
            if frame.values is None:
                frame.values = []
            frame.values.append((p.name, p.default))
            if p.default is EMPTY:
                if frame.text is None:
                    frame.text = " -> ".join(frame.site.path())
                self.required.setdefault(p.name, []).append(frame.text)

    def context_type(self, annotation: Any) -> type | None:
        if not isinstance(annotation, type):
            return None
        for ctx in self.context_types:
            if issubclass(annotation, ctx):
                return ctx
        return None

    def declare(self, parent: _Frame, marker: Dependency, param: str) -> int | _Frame:
        """Compile one ``Depends`` declaration of *parent*: the node index if it is
        already compiled (a cache hit), else the frame that will compile it."""
        original = marker.dependency
        assert original is not None
        site = parent.site
        part = _key_part(original)
        # The key counts scopes if the declared graph uses them (FastAPI computes it
        # from the original); what runs sees them if the replacement's graph does too.
        own_scopes = marker.own_scopes
        visible = parent.visible
        replacement = self.override(original) if self.overrides else original
        if replacement is original:
            replacement_part = part
            if not visible and not own_scopes:
                # No scope can be visible below: whether the subgraph uses scopes
                # changes neither the key nor what it sees, so it is not computed
                # (the walk itself reads the same subgraph next).
                uses = sees = False
            else:
                uses = sees = bool(own_scopes) or self.uses_scopes(original, part, site)
        else:
            # Overridden: the declared graph still keys the cache (and is checked).
            replacement_part = _key_part(replacement)
            uses = bool(own_scopes) or self.uses_scopes(original, part, site)
            sees = uses or self.uses_scopes(replacement, replacement_part, site)
        if sees:
            own = tuple(s for s in own_scopes if s not in visible)
            node_visible = (*visible, *own)
        else:
            node_visible = ()
        scope = marker.scope
        original_shape = self.shapes.get(part) or self.shape(original, part, site)
        if scope is None and original_shape.kind in _GENERATORS:
            lifetime_key = "request"
        else:
            lifetime_key = scope or ""
        key_scopes = tuple(sorted(set(node_visible))) if uses else ()
        key = (part, key_scopes, lifetime_key)
        lifetime = declared(scope)
        if parent.restricted and not may_depend_on(
            parent.lifetime, lifetime, parent.shape.kind in _GENERATORS
        ):
            raise rules.direct_lifetime(
                site, parent.lifetime, qualname(original), scope, param
            )
        use_cache = marker.use_cache
        if use_cache:
            found = self.cached.get(key)
            if found is not None:
                return found
            twin = self.nocache_first.get(key)
            if twin is not None:
                # FastAPI's order: an earlier use_cache=False twin seeded the memo, so
                # this declaration is a cache hit and never runs its own subtree.
                index = self.alias(twin, key)
                self.cached[key] = index
                return index
            if part is not original:
                raise rules.unhashable(site, qualname(original), param)
        if part in self.on_path:
            raise rules.cycle(site, qualname(original), param)
        shape = self.shapes.get(replacement_part) or self.shape(
            replacement, replacement_part, site
        )
        self.on_path.add(part)
        return _Frame(
            shape,
            replacement,
            original,
            marker,
            node_visible,
            key,
            lifetime,
            Site(shape.name, site),
            part,
            param,
            shape.params,
            len(self.args),
            len(self.deps),
        )

    def finish(self, frame: _Frame, root: bool) -> int:
        """Append *frame*'s node (after its children); its index."""
        marker = frame.marker
        shape = frame.shape
        kind = shape.kind
        key = frame.key
        index = len(self.nodes)
        use_cache = marker.use_cache and not root
        seeds = True
        if not root:
            if use_cache:
                self.cached[key] = index
            elif key in self.nocache_first:
                seeds = False
            else:
                self.nocache_first[key] = index
        args = tuple(self.args[frame.args_from :])
        del self.args[frame.args_from :]
        deps = tuple(self.deps[frame.deps_from :])
        del self.deps[frame.deps_from :]
        thread = kind in _THREADED and (
            self.sync_to_thread
            if marker.sync_to_thread is None
            else marker.sync_to_thread
        )
        limit = (
            (marker._limit_token, marker.max_concurrency)
            if marker.max_concurrency is not None
            else None
        )
        self.nodes.append(
            Node(
                index=index,
                call=frame.call,
                original=frame.original,
                kind=kind,
                name=shape.name,
                key=key,
                use_cache=use_cache,
                lifetime=frame.lifetime,
                deps=deps,
                args=args,
                values=() if frame.values is None else tuple(frame.values),
                contexts=() if frame.contexts is None else tuple(frame.contexts),
                scope_args=() if frame.scope_args is None else tuple(frame.scope_args),
                scopes=frame.visible,
                thread=thread,
                limit=limit,
                site=frame.site,
                seeds=seeds,
            )
        )
        self.on_path.discard(frame.part)
        return index

    def alias(self, twin: int, key: Hashable) -> int:
        """A node that reads the memo *twin* seeds (or, failing that, its value)."""
        source = self.nodes[twin]
        node = Node(
            index=len(self.nodes),
            call=source.call,
            original=source.original,
            kind=source.kind,
            name=source.name,
            key=key,
            use_cache=True,
            lifetime=source.lifetime,
            deps=(twin,),
            args=(),
            values=(),
            contexts=(),
            scope_args=(),
            scopes=source.scopes,
            thread=source.thread,
            limit=None,
            site=source.site,
            alias=True,
        )
        self.nodes.append(node)
        return node.index

    def override(self, original: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self.overrides.get(original, original)
        except TypeError:  # an unhashable callable cannot have been overridden
            return original
