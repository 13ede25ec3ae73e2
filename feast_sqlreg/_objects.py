"""Cached get_* answers as fresh Feast objects, without from_proto per call.

Feast's cached ``get_feature_service``, ``get_feature_view``,
``get_entity`` and the like (``proto_registry_utils.get_*``) look the name
up in the cached registry proto and build a new object with ``from_proto``
on every call: about 1 ms for a feature service of 10 views (3 ms with
typeguard's checks). Each caller owns what it gets and may change it
(``with_projection``, tags, feature lists) without touching anyone else's.

Here each (kind, project, name) of a cached registry proto gets a
*template*: the object ``from_proto`` builds from the stored message, made
once and never handed out, and a *plan* compiled from it that makes a new
object graph equal to it: new instances of Feast's classes, new lists,
dicts and sets, new functions (a UDF and its globals), sharing only
immutable values (str, int, float, bytes, None, datetimes, enum members
such as ValueType and PrimitiveFeastType), modules, classes and functions
a module holds by name, as ``from_proto`` itself shares them (a UDF that
dill loads by reference is the module's function for every caller). Inside one graph an object reached twice
(a view's features and its projection's hold the same Field objects) is
made once, as in the template. What the plan does not know (a value of a
class from outside Feast) it deep-copies.

A template lives as long as its message is unchanged: a new cached proto
(after any write) keeps the templates of the objects whose serialized
message is the same, and builds the others again when first asked.
"""

import builtins
import copy
import logging
import datetime
import decimal
import enum
import threading
import types
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

from feast_sqlreg import _internals, _kinds

logger = logging.getLogger(__name__)

# Values shared between copies: of an immutable type, or singletons that
# from_proto shares too.
_SHARED_TYPES = frozenset(
    {
        str, int, float, bool, bytes, complex, type(None), type(Ellipsis), range,
        datetime.datetime, datetime.date, datetime.time, datetime.timedelta,
        datetime.timezone, decimal.Decimal, uuid.UUID,
        types.CodeType, types.BuiltinFunctionType, types.ModuleType,
    }
)
_SHARED_BASES = (enum.Enum, type, types.ModuleType)


def _shared(value) -> bool:
    t = type(value)
    if t in _SHARED_TYPES or isinstance(value, _SHARED_BASES):
        return True
    if t is tuple or t is frozenset:
        return all(_shared(v) for v in value)
    if t is types.FunctionType:
        return _internals.module_function(value)
    return value is builtins.__dict__


class Unclonable(Exception):
    """The template's graph has a cycle through a value the plan cannot
    make before its contents (a tuple, a function's defaults)."""


Builder = Callable[[dict], Any]


class _Compiler:
    """Compiles a template into a builder: builder(memo) makes a new graph.

    Nodes reached more than once in the template (aliases, cycles) get a
    slot in memo: made once per copy, registered before their contents are
    made, so a cycle back to them finds them. The runtime visits nodes in
    the order compile() did, so a cycle through a node that cannot be
    registered first (``_pending``) is found here, not at run time."""

    def __init__(self, root):
        self._refs: Dict[int, int] = {}
        self._keep = []  # ids stay valid while counting
        self._count(root)
        self._builders: Dict[int, Builder] = {}
        self._pending: set = set()
        self.slots = 0

    # -- reference counting -------------------------------------------------

    def _count(self, root) -> None:
        stack = [root]
        while stack:
            value = stack.pop()
            if _shared(value):
                continue
            key = id(value)
            seen = self._refs.get(key, 0)
            self._refs[key] = seen + 1
            if seen:
                continue
            self._keep.append(value)
            stack.extend(_children(value))

    # -- compiling ------------------------------------------------------------

    def compile(self, value) -> Optional[Builder]:
        """A builder for value, or None when value is shared as it is."""
        if _shared(value):
            return None
        key = id(value)
        built = self._builders.get(key)
        if built is not None:
            if key in self._pending:
                raise Unclonable(type(value).__name__)
            return built
        slot = None
        if self._refs.get(key, 1) > 1:
            slot = self.slots
            self.slots += 1
        t = type(value)
        if t is list:
            return self._list(value, slot)
        if t is dict:
            return self._dict(value, slot)
        if t is set and all(_shared(v) for v in value):
            return self._done(value, _memoized(slot, lambda memo: set(value)))
        if t is tuple or t is frozenset:
            return self._immutable_container(value, slot)
        if t is types.FunctionType:
            return self._function(value, slot)
        if _internals.plain_feast_object(value):
            return self._object(value, slot)
        return self._done(value, _memoized(slot, lambda memo: copy.deepcopy(value)))

    def _done(self, value, builder: Builder) -> Builder:
        self._builders[id(value)] = builder
        return builder

    def _fixes(self, items):
        """[(key, builder)] for the items whose values are not shared."""
        fixes = []
        for k, v in items:
            b = self.compile(v)
            if b is not None:
                fixes.append((k, b))
        return tuple(fixes)

    def _list(self, value: list, slot):
        if slot is None:
            self._builders[id(value)] = _placeholder
            parts = tuple((self.compile(v), v) for v in value)
            if all(b is None for b, _ in parts):
                return self._done(value, lambda memo: value.copy())
            return self._done(
                value, lambda memo: [v if b is None else b(memo) for b, v in parts]
            )

        def make(memo):
            new = memo.get(slot)
            if new is None:
                new = memo[slot] = []
                new.extend(v if b is None else b(memo) for b, v in parts)
            return new

        self._builders[id(value)] = make
        parts = tuple((self.compile(v), v) for v in value)
        return make

    def _dict(self, value: dict, slot):
        if not all(_shared(k) for k in value):
            return self._done(value, _memoized(slot, lambda memo: copy.deepcopy(value)))
        if slot is None:
            self._builders[id(value)] = _placeholder
            fixes = self._fixes(value.items())
            if not fixes:
                return self._done(value, lambda memo: value.copy())

            def make_once(memo):
                new = value.copy()
                for k, b in fixes:
                    new[k] = b(memo)
                return new

            return self._done(value, make_once)

        def make(memo):
            new = memo.get(slot)
            if new is None:
                new = memo[slot] = value.copy()
                for k, b in fixes:
                    new[k] = b(memo)
            return new

        self._builders[id(value)] = make
        fixes = self._fixes(value.items())
        return make

    def _immutable_container(self, value, slot):
        t = type(value)
        self._pending.add(id(value))
        self._builders[id(value)] = _placeholder
        parts = tuple((self.compile(v), v) for v in value)
        self._pending.discard(id(value))
        return self._done(
            value, _memoized(slot, lambda memo: t(v if b is None else b(memo) for b, v in parts))
        )

    def _object(self, value, slot):
        cls = type(value)
        state = vars(value)
        new_instance = object.__new__

        def make(memo):
            if slot is not None:
                new = memo.get(slot)
                if new is not None:
                    return new
            new = new_instance(cls)
            if slot is not None:
                memo[slot] = new
            d = new.__dict__
            d.update(state)
            for k, b in fixes:
                d[k] = b(memo)
            return new

        self._builders[id(value)] = make
        fixes = self._fixes(state.items())
        return make

    def _function(self, value: types.FunctionType, slot):
        """A new function: the same code, new defaults, closure cells,
        attributes and (unless they are a module's namespace) globals; the
        globals of a function rehydrated from source hold it under its name,
        so the copy's hold the copy."""
        fn_globals = value.__globals__
        own_globals = not _internals.module_namespace(value)
        self._pending.add(id(value))
        self._builders[id(value)] = _placeholder
        defaults = self.compile(value.__defaults__)
        cells = tuple(c.cell_contents for c in value.__closure__ or ())
        self._pending.discard(id(value))

        def make(memo):
            if slot is not None:
                new = memo.get(slot)
                if new is not None:
                    return new
            g = fn_globals.copy() if own_globals else fn_globals
            closure = tuple(types.CellType() for _ in cells) if value.__closure__ else None
            new = types.FunctionType(
                value.__code__,
                g,
                value.__name__,
                value.__defaults__ if defaults is None else defaults(memo),
                closure,
            )
            if slot is not None:
                memo[slot] = new
            for k, b in global_fixes:
                g[k] = b(memo)
            for cell, (b, v) in zip(closure or (), cell_parts):
                cell.cell_contents = v if b is None else b(memo)
            new.__qualname__ = value.__qualname__
            new.__module__ = value.__module__
            new.__doc__ = value.__doc__
            new.__kwdefaults__ = None if kwdefaults is None else kwdefaults(memo)
            new.__annotations__ = annotations(memo) if annotations else {}
            if attrs:
                new.__dict__.update(attrs(memo))
            return new

        self._builders[id(value)] = make
        global_fixes = self._fixes(fn_globals.items()) if own_globals else ()
        cell_parts = tuple((self.compile(v), v) for v in cells)
        kw = value.__kwdefaults__
        kwdefaults = None if kw is None else self.compile(kw)
        ann = value.__annotations__
        annotations = self.compile(ann) if ann else None
        attrs = self.compile(value.__dict__) if value.__dict__ else None
        return make


def _placeholder(memo):  # a node being compiled; never called
    raise AssertionError("feast_sqlreg._objects: placeholder builder called")


def _memoized(slot, make: Builder) -> Builder:
    if slot is None:
        return make

    def memoized(memo):
        new = memo.get(slot)
        if new is None:
            new = memo[slot] = make(memo)
        return new

    return memoized


def _children(value):
    t = type(value)
    if t is list or t is tuple or t is set or t is frozenset:
        return list(value)
    if t is dict:
        return list(value.keys()) + list(value.values())
    if t is types.FunctionType:
        out = [value.__defaults__, value.__kwdefaults__, value.__dict__]
        out += [c.cell_contents for c in value.__closure__ or ()]
        if value.__annotations__:
            out.append(value.__annotations__)
        if not _internals.module_namespace(value):
            out += list(value.__globals__.values())
        return out
    if _internals.plain_feast_object(value):
        return list(vars(value).values())
    return []


def plan(template) -> Builder:
    """A function of no arguments returning a new copy of template (see the
    module); Unclonable when its graph cannot be copied this way."""
    compiler = _Compiler(template)
    build = compiler.compile(template)
    if build is None:
        return lambda: template
    if compiler.slots:
        return lambda: build({})
    empty: dict = {}  # never written: no node has a slot
    return lambda: build(empty)


# ---- per cached registry ---------------------------------------------------

#: The kinds served from templates: those Feast's cached get_<kind> builds
#: anew on every call (proto_registry_utils.get_<kind>).
KINDS = (
    _kinds.ENTITY,
    _kinds.DATA_SOURCE,
    _kinds.FEATURE_VIEW,
    _kinds.STREAM_FEATURE_VIEW,
    _kinds.ON_DEMAND_FEATURE_VIEW,
    _kinds.LABEL_VIEW,
    _kinds.FEATURE_SERVICE,
)
_KIND = {k.id: k for k in _kinds.KINDS}


class _Generation:
    """The templates of one cached registry proto."""

    __slots__ = ("proto", "by_name", "plans", "previous")

    def __init__(self, proto, previous: Dict[Tuple[int, str, str], Any]):
        self.proto = proto
        self.by_name: Dict[int, Dict[Tuple[str, str], Any]] = {}
        #: (kind, project, name) -> (message bytes, plan, or None: from_proto)
        self.plans: Dict[Tuple[int, str, str], Tuple[bytes, Optional[Builder]]] = {}
        self.previous = previous

    def message(self, kind: int, project: str, name: str):
        """The first message of that name in the proto, as Feast's lookup
        finds it; None when there is none."""
        index = self.by_name.get(kind)
        if index is None:
            k = _KIND[kind]
            index = {}
            for message in getattr(self.proto, k.reg_field):
                carrier = message.spec if k.in_spec else message
                index.setdefault((carrier.project, carrier.name), message)
            self.by_name[kind] = index
        return index.get((project, name))


def _carried(generation: _Generation, proto) -> dict:
    """What a new proto's generation inherits: every entry made for an
    older proto not asked for since (checked on the bytes when it is), at
    most about twice as many as proto has objects (deleted objects' entries
    would otherwise pile up)."""
    carried = {**generation.previous, **generation.plans}
    objects = sum(len(getattr(proto, _KIND[k].reg_field)) for k in KINDS)
    if len(carried) > 2 * objects + 64:
        carried = dict(generation.plans)
    return carried


class Templates:
    """The templates of one registry, for its current cached proto."""

    def __init__(self):
        self._generation: Optional[_Generation] = None
        self._lock = threading.Lock()
        #: How answers were made: copies of a template, templates built,
        #: templates kept across a new proto, from_proto (unclonable).
        self.stats = {"copied": 0, "built": 0, "kept": 0, "from_proto": 0}

    def _current(self, proto) -> _Generation:
        generation = self._generation
        if generation is not None and generation.proto is proto:
            return generation
        with self._lock:
            generation = self._generation
            if generation is None or generation.proto is not proto:
                previous = {} if generation is None else _carried(generation, proto)
                generation = self._generation = _Generation(proto, previous)
            return generation

    def get(self, proto, kind: int, project: str, name: str):
        """A new Feast object equal to what from_proto builds from the
        (kind, project, name) message of proto; None when proto has none."""
        generation = self._current(proto)
        key = (kind, project, name)
        entry = generation.plans.get(key)
        if entry is None:
            message = generation.message(kind, project, name)
            if message is None:
                return None
            entry = self._entry(generation, key, kind, message)
        build = entry[1]
        if build is None:
            self.stats["from_proto"] += 1
            return _KIND[kind].py_class.from_proto(generation.message(kind, project, name))
        self.stats["copied"] += 1
        return build()

    def _entry(self, generation: _Generation, key, kind: int, message):
        data = message.SerializeToString(deterministic=True)
        entry = generation.previous.pop(key, None)
        if entry is not None and entry[0] == data:
            self.stats["kept"] += 1
        else:
            entry = (data, _checked_plan(_KIND[kind].py_class.from_proto(message)))
            self.stats["built"] += 1
        generation.plans[key] = entry
        return entry


def _checked_plan(template) -> Optional[Builder]:
    """plan(template) when its first copy equals the template; None (the
    caller builds with from_proto each time) when the graph cannot be
    copied, or a Feast class's equality tells a copy from the original."""
    try:
        build = plan(template)
        if build() == template:
            return build
        logger.debug("feast_sqlreg: a copy of %r is not equal to it", template)
    except Exception:  # an unknown value deepcopy cannot copy, a cycle
        logger.debug("feast_sqlreg: cannot copy %r", template, exc_info=True)
    return None
