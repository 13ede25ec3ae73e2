"""Cached get_* answers (feast_sqlreg._objects): Feast's objects, each
caller its own.

Feast's cached get_entity, get_data_source, get_feature_view,
get_stream_feature_view, get_on_demand_feature_view, get_label_view and
get_feature_service build a new object from the cached proto on every call;
NativeSqlRegistry hands out copies of a template instead. Each answer here
is compared with what Feast's own cached getter (CachingRegistry's method,
run on the same registry and cached proto) returns: equal, the same
to_proto() bytes, and no mutable object shared with another answer.
"""

import threading
import types
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum

import pytest
from feast import Entity, FeatureService, Field
from feast.aggregation import Aggregation
from feast.errors import (
    DataSourceObjectNotFoundException,
    EntityNotFoundException,
    FeatureServiceNotFoundException,
    FeatureViewNotFoundException,
)
from feast.infra.registry.caching_registry import CachingRegistry
from feast.on_demand_feature_view import on_demand_feature_view as odfv_decorator
from feast.types import Array, ComplexFeastType, Float32, Float64, Int64
from feast.value_type import ValueType

import objects as O
from feast_sqlreg import _typechecks
from feast_sqlreg._objects import plan

PROJECT = "proj"


# ---- the objects: several variants of every kind ---------------------------


def _python_odfv(fv):
    @odfv_decorator(
        sources=[fv, O.request_source()],
        schema=[Field(name="doubled", dtype=Float64)],
        mode="python",
        tags={"mode": "python"},
    )
    def doubled_rate(inputs: dict) -> dict:
        return {"doubled": [2.0 * c + v for c, v in zip(inputs["conv_rate"], inputs["val"])]}

    return doubled_rate


def _stream_udf():
    def add_window(df):
        return df

    return add_window


def _views():
    driver = O.entity()
    rider = O.entity("rider", join_keys=["rider_key"], value_type=ValueType.STRING, tags={})
    fv = O.feature_view()
    wide = O.feature_view(
        "wide_stats",
        entities=[driver, rider],
        schema=[Field(name=f"f{i}", dtype=Float32, tags={"i": str(i)}) for i in range(4)]
        + [Field(name="history", dtype=Array(Int64), description="recent")],
        source=O.file_source("wide_source", path="data/wide.parquet", tags={}),
        tags={},
        online=False,
    )
    return driver, rider, fv, wide


def apply_all(reg, project=PROJECT):
    """Every variant in project; returns {getter: [names]}."""
    driver, rider, fv, wide = _views()
    reg.apply_entity(driver, project)
    reg.apply_entity(rider, project)
    reg.apply_entity(Entity(name="plain", join_keys=["plain_id"]), project)
    reg.apply_data_source(O.file_source(), project)
    reg.apply_data_source(O.kafka_source(), project)
    reg.apply_data_source(O.push_source(), project)
    reg.apply_data_source(O.request_source(), project)
    for view in (fv, wide):
        reg.apply_feature_view(view, project)
    reg.apply_materialization(fv, project, O.T0, O.T1)
    reg.apply_feature_view(O.stream_feature_view(), project)
    reg.apply_feature_view(
        O.stream_feature_view(
            "windowed_stream",
            aggregations=[
                Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)),
                Aggregation(column="trips", function="max", time_window=timedelta(days=1)),
            ],
            timestamp_field="event_timestamp",
            udf=_stream_udf(),
            udf_string="def add_window(df):\n    return df\n",
        ),
        project,
    )
    reg.apply_feature_view(O.on_demand_feature_view(fv), project)
    reg.apply_feature_view(_python_odfv(fv), project)
    reg.apply_feature_view(O.label_view(), project)
    reg.apply_feature_service(O.feature_service(views=[fv]), project)
    reg.apply_feature_service(
        FeatureService(
            name="projected",
            features=[
                fv[["conv_rate", "acc_rate"]],
                wide.with_name("wide_alias").with_join_key_map({"rider_key": "rider_id"}),
                O.on_demand_feature_view(fv),
            ],
            tags={"team": "ml", "tier": "2"},
            description="projections",
            owner="ml@example.com",
        ),
        project,
    )
    reg.apply_feature_service(FeatureService(name="bare", features=[wide]), project)
    return {
        "get_entity": ["driver", "rider", "plain"],
        "get_data_source": ["driver_stats_source", "driver_stream", "label_push", "vals_to_add"],
        "get_feature_view": ["driver_hourly_stats", "wide_stats"],
        "get_stream_feature_view": ["driver_stream_stats", "windowed_stream"],
        "get_on_demand_feature_view": ["conv_rate_plus_val", "doubled_rate"],
        "get_label_view": ["driver_labels"],
        "get_feature_service": ["driver_activity", "projected", "bare"],
    }


def feast_get(reg, getter, name, project=PROJECT):
    """What Feast's own cached getter returns on this registry (as stock
    reads: typeguard's checks off in this thread, as the native getters)."""
    with _typechecks.thread_suppressed():
        return getattr(CachingRegistry, getter)(reg, name, project, True)


def _source_times_cleared(message) -> bytes:
    """message's bytes without the created/updated times of the data
    sources in it: a RequestSource's from_proto stamps them with the time
    of the call, so two of Feast's own answers differ there."""
    message = type(message).FromString(message.SerializeToString())
    stack = [message]
    while stack:
        m = stack.pop()
        if m.DESCRIPTOR.full_name == "feast.core.DataSource":
            m.meta.ClearField("created_timestamp")
            m.meta.ClearField("last_updated_timestamp")
        for field, value in m.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                values = list(value.values())
                stack += [v for v in values if hasattr(v, "ListFields")]
            elif hasattr(value, "ListFields"):
                stack.append(value)
            else:
                stack += list(value)
    return message.SerializeToString(deterministic=True)


def same_bytes(a, b) -> bool:
    return a.to_proto().SerializeToString() == b.to_proto().SerializeToString()


def assert_feast_equal(mine, reg, getter, name):
    theirs = feast_get(reg, getter, name)
    again = feast_get(reg, getter, name)
    assert type(mine) is type(theirs)
    assert mine == theirs and theirs == mine
    if same_bytes(theirs, again):
        assert same_bytes(mine, theirs), f"{getter}({name!r}): to_proto() differs"
    else:  # Feast's own answers differ in their sources' times (RequestSource)
        assert _source_times_cleared(theirs.to_proto()) == _source_times_cleared(again.to_proto())
        assert _source_times_cleared(mine.to_proto()) == _source_times_cleared(theirs.to_proto())


# ---- object graphs -----------------------------------------------------------

_IMMUTABLE = (str, int, float, bool, bytes, type(None), datetime, date, time, timedelta, timezone)


def _immutable(value) -> bool:
    """What any two answers may share: immutable values, enum members,
    classes, modules, code, builtins, and functions a module holds by name."""
    if isinstance(value, _IMMUTABLE) or isinstance(value, (Enum, type, types.ModuleType)):
        return True
    if isinstance(value, (types.CodeType, types.BuiltinFunctionType)):
        return True
    if isinstance(value, tuple) and all(_immutable(v) for v in value):
        return True
    if isinstance(value, types.FunctionType) and "<locals>" not in value.__qualname__:
        import sys

        module = sys.modules.get(value.__module__)
        return module is not None and getattr(module, value.__name__, None) is value
    import builtins

    return value is builtins.__dict__


def mutable_ids(root) -> dict:
    """id -> object for every mutable object reachable from root: instance
    attributes, container items, a function's defaults, closure, attributes
    and (unless a module's) globals."""
    import sys

    found = {}
    stack = [root]
    while stack:
        value = stack.pop()
        if _immutable(value) or id(value) in found:
            continue
        found[id(value)] = value
        if isinstance(value, dict):
            stack += list(value.keys()) + list(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack += list(value)
        elif isinstance(value, types.FunctionType):
            stack += [value.__defaults__, value.__kwdefaults__, value.__dict__]
            stack += [c.cell_contents for c in value.__closure__ or ()]
            module = sys.modules.get(value.__module__)
            if module is None or module.__dict__ is not value.__globals__:
                stack.append(value.__globals__)
        elif hasattr(value, "__dict__"):
            stack.append(vars(value))
    return found


def shared(a, b) -> list:
    ours, theirs = mutable_ids(a), mutable_ids(b)
    return [ours[i] for i in set(ours) & set(theirs)]


def test_the_graph_walk_finds_what_is_shared():
    """shared() can fail: a tags dict, a Field, a UDF's globals handed to two
    objects are found."""
    fv = O.feature_view()
    a = type(fv).from_proto(fv.to_proto())
    b = type(fv).from_proto(fv.to_proto())
    assert shared(a, b) == []
    b.features[1] = a.features[0]
    found = shared(a, b)
    assert a.features[0] in found and a.features[0].tags in found
    odfv = O.on_demand_feature_view(fv)
    c = type(odfv).from_proto(odfv.to_proto())
    d = type(odfv).from_proto(odfv.to_proto())
    assert shared(c, d) == []
    d.feature_transformation.udf = types.FunctionType(
        d.feature_transformation.udf.__code__, c.feature_transformation.udf.__globals__
    )
    assert any(x is c.feature_transformation.udf.__globals__ for x in shared(c, d))


# ---- the tests ---------------------------------------------------------------


def test_cached_gets_are_feasts_objects(make_registry):
    reg = make_registry("native")
    names = apply_all(reg)
    reg.refresh()
    for getter, found in names.items():
        for name in found:
            mine = getattr(reg, getter)(name, PROJECT, allow_cache=True)
            assert_feast_equal(mine, reg, getter, name)
    stats = reg._templates.stats
    assert stats["from_proto"] == 0, stats  # every kind here is copied
    assert stats["built"] == sum(len(v) for v in names.values())


def test_cached_gets_equal_stock_registry_on_the_same_database(make_registry):
    """The stock SqlRegistry, reading the same rows, answers with equal
    objects."""
    from conftest import urls_of

    reg = make_registry("native")
    names = apply_all(reg)
    stock = make_registry("stock", urls_of(reg))
    stock.refresh()
    reg.refresh()
    for getter, found in names.items():
        for name in found:
            mine = getattr(reg, getter)(name, PROJECT, allow_cache=True)
            theirs = getattr(stock, getter)(name, PROJECT, allow_cache=True)
            assert mine == theirs, (getter, name)


def test_no_two_answers_share_a_mutable_object(make_registry):
    reg = make_registry("native")
    names = apply_all(reg)
    reg.refresh()
    for getter, found in names.items():
        for name in found:
            answers = [getattr(reg, getter)(name, PROJECT, allow_cache=True) for _ in range(3)]
            for i, a in enumerate(answers):
                for b in answers[i + 1 :]:
                    assert shared(a, b) == [], (getter, name, shared(a, b)[:5])
            # Feast itself builds anew for these: its answers share nothing
            # but the type constants of feast.types (Array(Int64) is one
            # object for every Field of that type), which copies do not share.
            theirs = shared(feast_get(reg, getter, name), feast_get(reg, getter, name))
            constants = [x for x in theirs if isinstance(x, ComplexFeastType)]
            assert all(x in constants or any(x is vars(c) for c in constants) for x in theirs)


def test_aliases_inside_one_answer_are_kept(make_registry):
    """Where Feast's object reaches one object twice (a view's features and
    its projection's are the same Field objects), so does the copy."""
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    theirs = feast_get(reg, "get_feature_view", "wide_stats")
    mine = reg.get_feature_view("wide_stats", PROJECT, allow_cache=True)
    assert theirs.projection.features[0] is theirs.features[0]
    assert mine.projection.features[0] is mine.features[0]
    odfv = reg.get_on_demand_feature_view("doubled_rate", PROJECT, allow_cache=True)
    udf = odfv.feature_transformation.udf
    assert udf.__globals__["doubled_rate"] is udf  # the copy's globals hold the copy
    assert udf({"conv_rate": [1.0], "val": [3]}) == {"doubled": [5.0]}


def test_changing_an_answer_changes_no_other(make_registry):
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    get = lambda g, n: getattr(reg, g)(n, PROJECT, allow_cache=True)  # noqa: E731

    fs = get("get_feature_service", "projected")
    fs.tags["team"] = "changed"
    fs.feature_view_projections[0].features.pop()
    fs.feature_view_projections[1].join_key_map["x"] = "y"
    fs.feature_view_projections[1].name_alias = "renamed"
    fs.feature_view_projections.append(fs.feature_view_projections[0])
    assert_feast_equal(get("get_feature_service", "projected"), reg, "get_feature_service", "projected")

    fv = get("get_feature_view", "wide_stats")
    fv.features[0].tags["i"] = "changed"
    fv.features[1].name = "renamed"
    fv.entities.append("someone")
    fv.materialization_intervals.append((O.T0, O.T1))
    fv.batch_source.tags["x"] = "y"
    fv.projection.features.clear()
    assert_feast_equal(get("get_feature_view", "wide_stats"), reg, "get_feature_view", "wide_stats")
    with_projection = get("get_feature_view", "driver_hourly_stats").with_name("other")
    assert with_projection.projection.name_alias == "other"
    assert get("get_feature_view", "driver_hourly_stats").projection.name_alias is None

    ent = get("get_entity", "rider")
    ent.join_key = "changed"
    ent.tags["x"] = "y"
    assert_feast_equal(get("get_entity", "rider"), reg, "get_entity", "rider")

    src = get("get_data_source", "driver_stream")
    src.batch_source.field_mapping["a"] = "b"
    src.tags["x"] = "y"
    assert_feast_equal(get("get_data_source", "driver_stream"), reg, "get_data_source", "driver_stream")

    odfv = get("get_on_demand_feature_view", "doubled_rate")
    udf = odfv.feature_transformation.udf
    udf.__globals__["extra"] = 1
    udf.marker = True
    odfv.source_request_sources["vals_to_add"].schema.clear()
    fresh = get("get_on_demand_feature_view", "doubled_rate")
    assert "extra" not in fresh.feature_transformation.udf.__globals__
    assert not hasattr(fresh.feature_transformation.udf, "marker")
    assert_feast_equal(fresh, reg, "get_on_demand_feature_view", "doubled_rate")

    sfv = get("get_stream_feature_view", "windowed_stream")
    sfv.aggregations[0].function = "min"
    sfv.aggregations.pop()
    assert_feast_equal(
        get("get_stream_feature_view", "windowed_stream"), reg, "get_stream_feature_view", "windowed_stream"
    )


def test_a_write_and_refresh_give_the_new_definition(make_registry):
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    before = reg.get_feature_service("bare", PROJECT, allow_cache=True)
    assert [p.name for p in before.feature_view_projections] == ["wide_stats"]
    ent_before = reg.get_entity("driver", PROJECT, allow_cache=True)

    _, _, fv, wide = _views()
    reg.apply_feature_service(
        FeatureService(name="bare", features=[wide, fv], tags={"new": "yes"}), PROJECT
    )
    reg.apply_entity(O.entity(description="changed"), PROJECT)
    reg.refresh()
    after = reg.get_feature_service("bare", PROJECT, allow_cache=True)
    assert [p.name for p in after.feature_view_projections] == ["wide_stats", "driver_hourly_stats"]
    assert after.tags == {"new": "yes"}
    assert_feast_equal(after, reg, "get_feature_service", "bare")
    assert reg.get_entity("driver", PROJECT, allow_cache=True).description == "changed"
    assert ent_before.description == "a driver"  # an answer given is the caller's

    # Unchanged objects keep their templates across the new proto.
    stats = dict(reg._templates.stats)
    reg.get_feature_view("wide_stats", PROJECT, allow_cache=True)
    assert reg._templates.stats["built"] == stats["built"] + 1  # first ask
    reg.apply_entity(Entity(name="new_one", join_keys=["k"]), PROJECT)
    reg.refresh()
    reg.get_feature_view("wide_stats", PROJECT, allow_cache=True)
    assert reg._templates.stats["kept"] == stats["kept"] + 1
    assert reg._templates.stats["built"] == stats["built"] + 1

    reg.delete_feature_service("bare", PROJECT)
    reg.refresh()
    with pytest.raises(FeatureServiceNotFoundException):
        reg.get_feature_service("bare", PROJECT, allow_cache=True)


def test_another_writer_reaches_the_cache(make_registry):
    """A write by another process's registry (here: another registry on the
    same database) reaches cached gets once the cache is renewed."""
    from conftest import urls_of

    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    reg.get_entity("driver", PROJECT, allow_cache=True)
    other = make_registry("native", urls_of(reg))
    other.apply_entity(O.entity(description="from elsewhere"), PROJECT)
    reg.refresh()
    assert reg.get_entity("driver", PROJECT, allow_cache=True).description == "from elsewhere"


MISSING = [
    ("get_entity", EntityNotFoundException),
    ("get_data_source", DataSourceObjectNotFoundException),
    ("get_feature_view", FeatureViewNotFoundException),
    ("get_stream_feature_view", FeatureViewNotFoundException),
    ("get_on_demand_feature_view", FeatureViewNotFoundException),
    ("get_label_view", FeatureViewNotFoundException),
    ("get_feature_service", FeatureServiceNotFoundException),
]


def test_missing_objects_raise_as_feast(make_registry):
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    for getter, exc in MISSING:
        # No such name; a name of this project asked in another; a feature
        # view's name asked of every other kind.
        cases = [("nope", PROJECT), ("driver", "other_project")]
        if getter != "get_feature_view":
            cases.append(("driver_hourly_stats", PROJECT))
        for name, project in cases:
            with pytest.raises(Exception) as theirs:
                with _typechecks.thread_suppressed():
                    getattr(CachingRegistry, getter)(reg, name, project, True)
            with pytest.raises(Exception) as mine:
                getattr(reg, getter)(name, project, allow_cache=True)
            assert type(mine.value) is type(theirs.value) is exc, (getter, name, project)
            assert str(mine.value) == str(theirs.value)
            assert mine.value.args == theirs.value.args
    with pytest.raises(FeatureViewNotFoundException):  # a stream view is not a FeatureView
        reg.get_feature_view("driver_stream_stats", PROJECT, allow_cache=True)


def test_uncached_gets_read_the_database(make_registry):
    """allow_cache=False never answers from the templates: a write the
    cached registry has not seen yet is read."""
    from conftest import urls_of

    reg = make_registry("native", cache_mode="thread", cache_ttl_seconds=3600)
    apply_all(reg)
    reg.refresh()
    cached = reg.get_feature_service("bare", PROJECT, allow_cache=True)
    if reg._poller is not None:
        reg._poller.stop()  # the change feed would renew the cache meanwhile
    other = make_registry("native", urls_of(reg))
    other.apply_feature_service(FeatureService(name="bare", features=[], tags={"v": "2"}), PROJECT)
    stats = dict(reg._templates.stats)
    fresh = reg.get_feature_service("bare", PROJECT, allow_cache=False)
    assert fresh.tags == {"v": "2"} and fresh.feature_view_projections == []
    assert reg._templates.stats == stats
    assert reg.get_feature_service("bare", PROJECT, allow_cache=True) == cached


def test_get_any_feature_view_shares_as_feast_does(make_registry):
    """Feast's get_any_feature_view (registry_proto_cache_name) hands every
    caller one object per cached proto; that contract is Feast's and kept."""
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    a = reg.get_any_feature_view("driver_hourly_stats", PROJECT, allow_cache=True)
    assert a is reg.get_any_feature_view("driver_hourly_stats", PROJECT, allow_cache=True)


def test_threads_get_their_own_objects(make_registry):
    reg = make_registry("native")
    apply_all(reg)
    reg.refresh()
    got, errors = [], []

    def work():
        try:
            for _ in range(50):
                got.append(reg.get_feature_service("projected", PROJECT, allow_cache=True))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({id(fs) for fs in got}) == len(got) == 200
    assert all(fs == got[0] for fs in got)
    assert shared(got[0], got[-1]) == []


def test_plan_copies_unknown_values_and_cycles():
    """The plan on its own: a value of a class from outside Feast is
    deep-copied; a cycle through a list is kept; Feast's shared constants
    (enum members) are shared."""

    class Outside:
        def __init__(self):
            self.items = [1, 2]

    fv = O.feature_view()
    fv.tags = {"a": "b"}
    fv.extra = Outside()
    fv.loop = [fv]
    build = plan(fv)
    a, b = build(), build()
    assert a is not fv and a.loop[0] is a and b.loop[0] is b
    assert a.extra is not fv.extra and a.extra.items == [1, 2] and a.extra.items is not b.extra.items
    assert a.features[0].dtype is fv.features[0].dtype is Float32
