"""feast_sqlreg._permissions against Feast's own enforcer.

A generated decision matrix: users x permission sets x objects of every
kind x action lists x filter_only. Each case is decided twice: by
_permissions on stored messages (permission protos from Permission.to_proto,
object protos from to_proto, as the registry stores them), and by
feast.permissions.enforcer.enforce_policy on the Feast objects from_proto
builds from the same protos. The answers must be equal: the same permitted
resources, or the same exception type and message. Multi-resource calls
(as List RPCs make them) are in the matrix too.

The matrix is shown to fail: each of several one-rule mutations of
_permissions makes it report a mismatch. And compile_permissions, resource
and enforce are run with every Feast class's from_proto and __init__
made to raise: they build no Feast object.
"""

import logging
import re
import time
import warnings
from datetime import timedelta

import pytest
from feast import Entity, FeatureService, FeatureView, Field, Project
from feast.batch_feature_view import BatchFeatureView
from feast.data_format import JsonFormat
from feast.data_source import DataSource, KinesisSource, PushSource, RequestSource
from feast.errors import FeastPermissionError
from feast.feast_object import ALL_RESOURCE_TYPES
from feast.infra.infra_object import Infra
from feast.infra.offline_stores.bigquery_source import BigQuerySource
from feast.infra.offline_stores.contrib.athena_offline_store.athena_source import AthenaSource
from feast.infra.offline_stores.contrib.mongodb_offline_store.mongodb import MongoDBSource
from feast.infra.offline_stores.contrib.oracle_offline_store.oracle_source import OracleSource
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.redshift_source import RedshiftSource
from feast.infra.offline_stores.snowflake_source import SnowflakeSource
from feast.labeling.label_view import LabelView
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.permissions.action import ALL_ACTIONS, CRUD, READ, AuthzedAction
from feast.permissions.enforcer import enforce_policy
from feast.permissions.permission import Permission
from feast.permissions.policy import (
    AllowAll,
    CombinedGroupNamespacePolicy,
    GroupBasedPolicy,
    NamespaceBasedPolicy,
    Policy,
    RoleBasedPolicy,
)
from feast.permissions.user import User
from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
from feast.protos.feast.core.ValidationProfile_pb2 import (
    ValidationReference as ValidationReferenceProto,
)
from feast.saved_dataset import SavedDataset, ValidationReference
from feast.stream_feature_view import StreamFeatureView
from feast.types import Float32

import objects
from feast_sqlreg import _internals, _kinds, _permissions
from feast_sqlreg._permissions import compile_permissions, enforce, resource

D = AuthzedAction.DESCRIBE

# ---- users -------------------------------------------------------------------

USERS = {
    "anonymous": User("", []),
    "alice": User("alice"),
    "bob-reader": User("bob", roles=["reader"]),
    "carol-admin-writer": User("carol", roles=["admin", "writer"]),
    "dave-analysts": User("dave", groups=["analysts"]),
    "erin-ns1": User("erin", namespaces=["ns1"]),
    "frank-all": User("frank", roles=["reader"], groups=["g2"], namespaces=["ns2"]),
    "nameless-with-roles": User("", roles=["reader"], groups=["analysts"], namespaces=["ns1"]),
}

# ---- objects -----------------------------------------------------------------


def _batch_feature_view():
    def udf(df):
        return df

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BatchFeatureView(
            name="driver_batch_stats",
            entities=[objects.entity()],
            schema=[Field(name="conv_rate", dtype=Float32)],
            source=objects.file_source(),
            udf=udf,
            mode="pandas",
            tags={"team": "batch"},
        )


def _custom_source(name, class_type):
    return DataSourceProto(name=name, type=DataSourceProto.SourceType.CUSTOM_SOURCE,
                           data_source_class_type=class_type)


def _objects():
    """(id, kind, stored proto) of every kind, with variants."""
    fv = objects.feature_view()
    out = [
        ("project", _kinds.PROJECT, objects.project("driver_project")),
        ("entity", _kinds.ENTITY, objects.entity()),
        ("entity-other-name", _kinds.ENTITY, objects.entity("customer")),
        ("entity-stored-without-name", _kinds.ENTITY, _odd(objects.entity(), lambda s: setattr(
            s, "name", ""))),
        ("file-source", _kinds.DATA_SOURCE, objects.file_source()),
        ("push-source", _kinds.DATA_SOURCE, objects.push_source()),
        ("request-source", _kinds.DATA_SOURCE, objects.request_source()),
        ("kafka-source", _kinds.DATA_SOURCE, objects.kafka_source()),
        ("kinesis-source", _kinds.DATA_SOURCE, KinesisSource(
            name="driver_kinesis", timestamp_field="ts", batch_source=objects.file_source("kb"),
            record_format=JsonFormat(schema_json="{}"), region="r", stream_name="s")),
        ("spark-source", _kinds.DATA_SOURCE, SparkSource(name="spark_src", table="t", timestamp_field="ts")),
        ("bigquery-source", _kinds.DATA_SOURCE, BigQuerySource(name="bq_src", table="p.d.t")),
        ("snowflake-source", _kinds.DATA_SOURCE, SnowflakeSource(
            name="driver_snow", table="t", database="d", schema="s")),
        ("redshift-source", _kinds.DATA_SOURCE, RedshiftSource(name="rs_src", table="t")),
        ("athena-source", _kinds.DATA_SOURCE, AthenaSource(
            name="ath_src", table="t", database="d", data_source="ds")),
        ("oracle-custom-source", _kinds.DATA_SOURCE, OracleSource(name="driver_oracle", table_ref="t")),
        ("mongodb-custom-source", _kinds.DATA_SOURCE, MongoDBSource(name="mongo_src")),
        # Stored sources from_proto refuses: an unknown type, a class that
        # does not import (trino's extra is not installed), bad custom ones.
        ("invalid-type-source", _kinds.DATA_SOURCE, DataSourceProto(name="bad", type=0)),
        ("trino-source", _kinds.DATA_SOURCE, DataSourceProto(
            name="trino_src", type=DataSourceProto.SourceType.BATCH_TRINO)),
        ("custom-not-a-source", _kinds.DATA_SOURCE, _custom_source("c1", "feast.entity.Entity")),
        ("custom-no-module", _kinds.DATA_SOURCE, _custom_source("c2", "no_such_module.Source")),
        ("custom-no-class", _kinds.DATA_SOURCE, _custom_source("c3", "feast.data_source.NoSource")),
        ("custom-empty-class", _kinds.DATA_SOURCE, _custom_source("c4", "")),
        ("feature-view", _kinds.FEATURE_VIEW, fv),
        ("batch-feature-view", _kinds.FEATURE_VIEW, _batch_feature_view()),
        ("stream-feature-view", _kinds.STREAM_FEATURE_VIEW, objects.stream_feature_view()),
        ("on-demand-feature-view", _kinds.ON_DEMAND_FEATURE_VIEW, objects.on_demand_feature_view(fv)),
        ("label-view", _kinds.LABEL_VIEW, objects.label_view()),
        ("feature-service", _kinds.FEATURE_SERVICE, objects.feature_service(views=[fv])),
        ("saved-dataset", _kinds.SAVED_DATASET, objects.saved_dataset()),
        ("validation-reference", _kinds.VALIDATION_REFERENCE, ValidationReferenceProto(
            name="driver_reference", reference_dataset_name="training_set", tags={"team": "dq"})),
        ("permission", _kinds.PERMISSION, objects.permission()),
        ("permission-required-tags", _kinds.PERMISSION, objects.permission(
            "driver_guard", required_tags={"team": "sec"})),
        ("permission-required-tags-spaced", _kinds.PERMISSION, objects.permission(
            "spaced", required_tags={" team ": " sec ", "tier": "gold"})),
        ("permission-allow-all", _kinds.PERMISSION, Permission(name="anything")),
        ("permission-stored-spaced-tags", _kinds.PERMISSION, _odd(
            objects.permission("stored_spaced"), lambda s: s.required_tags.update({" team ": " sec "}))),
        ("infra", _kinds.INFRA, objects.infra()),
    ]
    return [(i, kind, o if hasattr(o, "SerializeToString") else o.to_proto()) for i, kind, o in out]


def feast_object(kind, proto):
    """The Feast object the registry builds from a stored proto. (A
    validation reference's profiler is a dill payload that needs
    great_expectations; the registry server's checks skip it, as here.)"""
    if kind == _kinds.VALIDATION_REFERENCE:
        return ValidationReference.from_proto(proto, skip_udf=True)
    return _kinds.KINDS[kind].py_class.from_proto(proto)


# ---- permission sets ------------------------------------------------------------

ROLE = RoleBasedPolicy(roles=["reader"])
ADMIN = RoleBasedPolicy(roles=["admin"])


def P(name="p", **kw):
    kw.setdefault("policy", ROLE)
    kw.setdefault("actions", [D])
    return Permission(name=name, **kw)


def _odd(obj, edit):
    """obj's proto, its spec edited."""
    proto = obj.to_proto()
    edit(proto.spec)
    return proto


def _ten():
    """Ten permissions, none of them for entities but the last."""
    return [
        P("fv-admin", types=[FeatureView], policy=ADMIN, actions=CRUD),
        P("ds-ns", types=[DataSource], policy=NamespaceBasedPolicy(["ns9"]), name_patterns=["raw_.*"]),
        P("fs-group", types=[FeatureService], policy=GroupBasedPolicy(["g9"])),
        P("sd-combined", types=[SavedDataset], policy=CombinedGroupNamespacePolicy(["g9"], ["ns9"])),
        P("proj", types=[Project], policy=ADMIN, actions=ALL_ACTIONS),
        P("odfv", types=[OnDemandFeatureView], name_patterns=["conv.*"]),
        P("lv", types=[LabelView], policy=GroupBasedPolicy(["labelers"])),
        P("perm", types=[Permission], policy=ADMIN, required_tags={"team": "sec"}),
        P("sfv", types=[StreamFeatureView], actions=READ),
        P("entity-reader", types=[Entity], name_patterns=["driver"], actions=CRUD),
    ]


def _sets():
    """(id, [stored Permission protos])."""
    sets = {
        "empty": [],
        "role-fv-describe": [P(types=[FeatureView])],
        "group-all-types": [P(policy=GroupBasedPolicy(["analysts"]), actions=ALL_ACTIONS)],
        "ns-ds-entity-crud": [P(types=[DataSource, Entity], policy=NamespaceBasedPolicy(["ns1"]),
                                actions=CRUD)],
        "combined": [P(policy=CombinedGroupNamespacePolicy(["g2"], ["ns1"]),
                       actions=[D, AuthzedAction.READ_ONLINE, AuthzedAction.READ_OFFLINE])],
        "combined-empty": [P(policy=CombinedGroupNamespacePolicy([], []))],
        "allow-all": [Permission(name="everything")],
        "allow-all-after-good": [P("good"), Permission(name="everything", policy=AllowAll)],
        "role-empty": [P(policy=RoleBasedPolicy(roles=[]))],
        "role-two": [P(policy=RoleBasedPolicy(roles=["writer", "nobody"]), actions=ALL_ACTIONS)],
        "bfv-only": [P(types=[BatchFeatureView], actions=ALL_ACTIONS)],
        "sfv-only": [P(types=[StreamFeatureView], actions=ALL_ACTIONS)],
        "fv-subclasses-admin": [P(types=[FeatureView], policy=ADMIN, actions=ALL_ACTIONS)],
        "odfv-labelview": [P(types=[OnDemandFeatureView, LabelView],
                             policy=GroupBasedPolicy(["analysts"]))],
        "project-only": [P(types=[Project], policy=NamespaceBasedPolicy(["ns1"]))],
        "permission-only": [P(types=[Permission], actions=CRUD)],
        "exact-name": [P(name_patterns=["driver_hourly_stats"])],
        "regex-name": [P(name_patterns=["driver.*"], actions=CRUD)],
        "partial-name": [P(name_patterns=["driver"])],
        "name-as-string": [P(name_patterns="driver_.*")],
        "spaced-pattern": [P(name_patterns=["  driver.*\t"])],
        "blank-pattern": [P(name_patterns=["   "])],
        "several-patterns": [P(name_patterns=["nomatch", ".*_stats", "conv.*"])],
        "pattern-with-flags": [P(name_patterns=["(?i)DRIVER.*"])],
        "invalid-regex": [P(types=[FeatureView], name_patterns=["driver("])],
        "invalid-regex-after-match": [P(name_patterns=["driver.*", "("])],
        "required-tags": [P(required_tags={"team": "sec"}, actions=ALL_ACTIONS)],
        "required-tags-spaced": [P(required_tags={" team ": " sec "})],
        "required-tags-two": [P(required_tags={"team": "sec", "tier": "gold"})],
        "required-tags-other": [P(required_tags={"team": "core"})],
        "actions-read": [P(actions=READ)],
        "actions-crud": [P(actions=CRUD)],
        "actions-create-update": [P(actions=[AuthzedAction.CREATE, AuthzedAction.UPDATE])],
        "actions-single": [P(actions=AuthzedAction.DELETE)],
        "deny-then-grant": [P("deny", policy=ADMIN, name_patterns=["driver.*"]), P("grant")],
        "grant-then-deny": [P("grant"), P("deny", policy=ADMIN, name_patterns=["driver.*"])],
        "two-deny-last-patterns": [P("a", policy=ADMIN), P("b", policy=GroupBasedPolicy(["g9"]),
                                                           name_patterns=[".*"])],
        "two-deny-last-no-patterns": [P("b", policy=GroupBasedPolicy(["g9"]), name_patterns=[".*"]),
                                      P("a", policy=ADMIN)],
        "fv-patterns-only": [P(types=[FeatureView], name_patterns=["nomatch.*"], actions=ALL_ACTIONS)],
        "mixed-types-patterns": [P("e", types=[Entity], name_patterns=["x"]),
                                 P("f", types=[FeatureView], policy=ADMIN)],
        "same-name-twice": [P("dup", policy=ADMIN), P("dup", policy=NamespaceBasedPolicy(["ns1"]))],
        "ten": _ten(),
    }
    good = P("odd", actions=CRUD)
    out = [
        # What Permission.to_proto never writes, but a stored row may hold.
        ("proto-no-types", [_odd(good, lambda s: s.ClearField("types"))]),
        ("proto-no-actions", [_odd(good, lambda s: s.ClearField("actions"))]),
        ("proto-unknown-type", [_odd(good, lambda s: s.types.append(99))]),
        ("proto-unknown-action", [_odd(good, lambda s: s.actions.append(42))]),
        ("proto-no-policy", [_odd(good, lambda s: s.ClearField("policy"))]),
        ("proto-colliding-required-tags", [_odd(good, lambda s: s.required_tags.update(
            {"team": "core", " team": "sec"}))]),
        ("proto-good-then-broken", [good.to_proto(), _odd(good, lambda s: s.ClearField("actions"))]),
        # Permission() strips what it stores; a row written otherwise may not be.
        ("proto-spaced-pattern", [_odd(good, lambda s: s.name_patterns.append("  driver.*\t"))]),
        ("proto-blank-pattern", [_odd(good, lambda s: s.name_patterns.append(" "))]),
        ("proto-spaced-required-tags", [_odd(good, lambda s: s.required_tags.update(
            {" team ": " sec "}))]),
    ]
    # Several permissions on one resource first: the mutation tests stop sooner.
    several = [i for i, ps in sets.items() if len(ps) > 1]
    out += [(i, [p.to_proto() for p in sets[i]]) for i in several]
    out += [(i, [p.to_proto() for p in ps]) for i, ps in sets.items() if i not in several]
    return out


ACTIONS = {
    "none": [],
    "describe": [D],
    "create": [AuthzedAction.CREATE],
    "delete": [AuthzedAction.DELETE],
    "read-online": [AuthzedAction.READ_ONLINE],
    "crud": CRUD,
    "read": READ,
    "all": ALL_ACTIONS,
}

# ---- the two deciders ----------------------------------------------------------------


def _outcome(call):
    try:
        return ("ok", tuple(call()))
    except Exception as e:  # the comparison is the point
        return ("raise", type(e), str(e))


class Matrix:
    """The generated cases, with what each side built once."""

    def __init__(self):
        self.objects = []  # (id, kind, proto, feast object or exception, resource or exception)
        for i, kind, proto in _objects():
            built = _outcome(lambda: [feast_object(kind, proto)])
            mine = _outcome(lambda: [resource(kind, proto)])
            self.objects.append((i, kind, proto, built, mine))
        self.sets = []  # (id, protos, Feast's Permissions or exception)
        for i, protos in _sets():
            self.sets.append((i, protos, _outcome(lambda: [Permission.from_proto(p) for p in protos])))

    def buildable(self):
        return [o for o in self.objects if o[3][0] == "ok"]

    def resource_lists(self):
        """Multi-resource calls: each kind's objects together (a List RPC),
        everything, everything reversed (infra aside: no RPC lists it, and
        with permissions defined it stops enforce_policy at once)."""
        ok = [o for o in self.buildable() if o[1] != _kinds.INFRA]
        lists = {}
        for i, kind, proto, built, mine in ok:
            lists.setdefault(_kinds.KINDS[kind].name, []).append((built[1][0], mine[1][0]))
        lists = {k: v for k, v in lists.items() if len(v) > 1}
        lists["everything"] = [(b[1][0], m[1][0]) for _, _, _, b, m in ok]
        lists["everything-reversed"] = lists["everything"][::-1]
        return lists


_MATRIX = None


def matrix():
    global _MATRIX
    if _MATRIX is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _MATRIX = Matrix()
    return _MATRIX


def _stock(permissions, user, feast_objects, actions, filter_only):
    if permissions[0] == "raise":
        return permissions
    result = _outcome(lambda: enforce_policy(permissions=list(permissions[1]), user=user,
                                             resources=feast_objects, actions=actions,
                                             filter_only=filter_only))
    if result[0] == "ok":
        ids = [id(r) for r in result[1]]
        return ("ok", tuple(i for i, r in enumerate(feast_objects) if id(r) in ids))
    return result


#: The exits of enforce_policy (and of the builders) the last run reached.
seen = set()


def _exit(outcome):
    if outcome == "builds":
        return "builds"
    if outcome[0] == "ok":
        return "permitted" if outcome[1] else "none permitted"
    return outcome[1].__name__, " ".join(outcome[2].split("\n")[-1].split(" ")[:3])


def run_matrix(limit=None, multi=True):
    """(number of cases, mismatches); stops after ``limit`` mismatches."""
    m = matrix()
    cases = 0
    mismatches = []
    seen.clear()

    def check(case, theirs, ours):
        nonlocal cases
        cases += 1
        seen.add(_exit(theirs))
        if theirs != ours:
            mismatches.append(f"{case}:\n  Feast: {theirs}\n  ours:  {ours}")
        return limit is not None and len(mismatches) >= limit

    # Objects the registry cannot build: resource() raises the same.
    for i, kind, proto, built, mine in m.objects:
        if built[0] == "raise" or mine[0] == "raise":
            if check(f"object {i}", built if built[0] == "raise" else "builds",
                     mine if mine[0] == "raise" else "builds"):
                return cases, mismatches
    objs = m.buildable()
    lists = m.resource_lists() if multi else {}
    logger = logging.getLogger("feast.permissions")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # the enforcer logs every decision
    try:
        for set_id, protos, permissions in m.sets:
            compiled = compile_permissions(protos)
            for user_id, user in USERS.items():
                for actions_id, actions in ACTIONS.items():
                    for filter_only in (False, True):
                        where = f"{set_id} / {user_id} / {actions_id} / filter_only={filter_only}"
                        for obj_id, kind, proto, built, mine in objs:
                            theirs = _stock(permissions, user, [built[1][0]], actions, filter_only)
                            ours = _outcome(lambda: enforce(compiled, user, [mine[1][0]], actions,
                                                            filter_only))
                            if check(f"{where} / {obj_id}", theirs, ours):
                                return cases, mismatches
                        for list_id, pairs in lists.items():
                            theirs = _stock(permissions, user, [p[0] for p in pairs], actions, filter_only)
                            ours = _outcome(lambda: enforce(compiled, user, [p[1] for p in pairs],
                                                            actions, filter_only))
                            if check(f"{where} / list {list_id}", theirs, ours):
                                return cases, mismatches
    finally:
        logger.setLevel(level)
    return cases, mismatches


# ---- the tests ----------------------------------------------------------------------


def test_matrix_matches_feast():
    start = time.perf_counter()
    cases, mismatches = run_matrix(limit=20)
    took = time.perf_counter() - start
    assert not mismatches, f"{len(mismatches)}+ of {cases} cases differ:\n" + "\n".join(mismatches)
    assert cases > 5000
    # Every exit of enforce_policy, and the builders' refusals, are reached.
    names = {e[0] for e in seen if isinstance(e, tuple)}
    starts = {e[1] for e in seen if isinstance(e, tuple)}
    assert {"permitted", "none permitted"} <= seen
    assert {"FeastPermissionError", "ValueError", "error", "AttributeError", "FeastModuleImportError",
            "FeastClassImportError", "FeastInvalidBaseClass"} <= names, names
    assert {"No permissions defined", "Permission p denied", "Permission deny denied"} <= starts, starts
    print(f"\n{cases} cases compared with Feast's enforcer in {took:.1f} s")


def test_every_kind_is_in_the_matrix():
    kinds = {kind for _, kind, _, _, _ in matrix().objects}
    assert kinds == {k.id for k in _kinds.KINDS}


def test_resource_is_what_from_proto_builds():
    for i, kind, proto, built, mine in matrix().buildable():
        obj, res = built[1][0], mine[1][0]
        assert res.cls is type(obj), i
        assert res.name == getattr(obj, "name", _permissions.NO_NAME), i
        tags = getattr(obj, "required_tags", None)
        assert res.required_tags == (tuple(tags.items()) if isinstance(tags, dict) else None), i
    classes = {mine[1][0].cls for *_, mine in matrix().buildable()}
    assert {BatchFeatureView, FeatureView, StreamFeatureView, FileSource, PushSource,
            RequestSource, SparkSource, OracleSource, MongoDBSource, Infra} <= classes


# Each mutation flips one rule; the matrix must notice every one.
MUTANTS = {
    "search-not-fullmatch": ("_name_matches", lambda p, name: not p.name_patterns or any(
        re.search(pattern, name) for pattern in p.name_patterns)),
    "exact-type-not-subclasses": ("_type_matches", lambda p, cls: cls in p.types),
    "required-tags-ignored": ("_tags_match", lambda p, res: True),
    "any-action-enough": ("_actions_match", lambda p, actions: any(a in p.actions for a in actions)),
    "filter-only-always-leaves-out": ("_skips_unmatched", lambda permissions, res: True),
    "unanimous-not-affirmative": ("_affirmative", lambda matching, user: all(
        _permissions._grants(p, user) for p in matching)),
    "left-out-if-any-has-patterns": ("_left_out", lambda matching: any(
        p.name_patterns for p in matching)),
    "combined-needs-both": ("_grants", lambda p, user, _real=_permissions._grants: (
        _real(p, user) if p.policy != _permissions.COMBINED else
        any(g in user.groups for g in p.groups) and any(n in user.namespaces for n in p.namespaces))),
}


@pytest.mark.parametrize("mutant", MUTANTS)
def test_matrix_fails_on_a_flipped_rule(monkeypatch, mutant):
    helper, replacement = MUTANTS[mutant]
    monkeypatch.setattr(_permissions, helper, replacement)
    cases, mismatches = run_matrix(limit=1, multi=False)
    assert mismatches, f"mutant {mutant} passed {cases} cases"


UNSTRIPPED = {
    "normalize_name_patterns": lambda patterns: list(patterns or []),
    "normalize_tags": lambda tags: tags or None,
}


@pytest.mark.parametrize("helper", UNSTRIPPED)
def test_matrix_fails_on_unstripped_stored_values(monkeypatch, helper):
    monkeypatch.setattr(_internals, helper, UNSTRIPPED[helper])
    cases, mismatches = run_matrix(limit=1, multi=False)
    assert mismatches, f"{helper} replaced passed {cases} cases"


def _forbid_feast_objects(monkeypatch):
    """Every from_proto and __init__ of the classes a check could build
    raises, and is recorded (a caller that swallows the error is caught
    too)."""
    built = []

    def refuse(*args, **kwargs):
        built.append(args[:1])
        raise AssertionError("a Feast object was built")

    classes = set(ALL_RESOURCE_TYPES) | {Infra, Policy, RoleBasedPolicy, GroupBasedPolicy,
                                         NamespaceBasedPolicy, CombinedGroupNamespacePolicy}
    classes |= {type(o[3][1][0]) for o in matrix().buildable()}
    for cls in classes:
        monkeypatch.setattr(cls, "from_proto", refuse)
        monkeypatch.setattr(cls, "__init__", refuse)
    return built


def test_no_feast_objects_are_built(monkeypatch):
    m = matrix()
    sets = [protos for _, protos, _ in m.sets]
    objs = [(kind, proto) for _, kind, proto, _, _ in m.objects]
    built = _forbid_feast_objects(monkeypatch)
    with pytest.raises(AssertionError):
        FeatureView.from_proto(objs[0][1])
    with pytest.raises(AssertionError):
        Permission.from_proto(sets[-1][0])
    built.clear()
    _permissions._DATA_SOURCE_CLASSES.clear()
    resources = []
    for kind, proto in objs:
        try:
            resources.append(resource(kind, proto))
        except Exception:
            pass  # refused as from_proto refuses: the matrix checks how
    decisions = 0
    for protos in sets:
        compiled = compile_permissions(protos)
        for user in USERS.values():
            for filter_only in (False, True):
                for res in resources:
                    try:
                        enforce(compiled, user, [res], [D], filter_only)
                    except Exception:
                        pass  # the matrix checks which
                    decisions += 1
                enforce_list = _outcome(lambda: enforce(compiled, user, resources, CRUD, filter_only))
                assert enforce_list[0] == "ok" or enforce_list[1] is not AssertionError
    assert not built, f"Feast objects were built: {built[:5]}"
    assert len(resources) > 25 and decisions > 10000


def test_a_changed_permission_takes_effect_at_once():
    """The memo lives in the compiled set: a new set decides afresh."""
    proto = objects.feature_view().to_proto()
    res = resource(_kinds.FEATURE_VIEW, proto)
    bob = USERS["bob-reader"]
    before = compile_permissions([P(types=[FeatureView]).to_proto()])
    assert enforce(before, bob, [res], [D]) == [0]
    after = compile_permissions([P(types=[FeatureView], policy=ADMIN).to_proto()])
    with pytest.raises(FeastPermissionError, match="Requires roles \\['admin'\\]"):
        enforce(after, bob, [res], [D])
    assert enforce(before, bob, [res], [D]) == [0]


def test_a_refused_permission_makes_every_call_raise():
    """Stock lists the permissions (from_proto) before it looks at the
    resources: with an AllowAll permission stored, even a call about no
    resource raises; the first refused permission in the order decides."""
    allow_all = Permission(name="everything").to_proto()
    with pytest.raises(ValueError) as stock:
        Permission.from_proto(allow_all)
    no_actions = _odd(P("later"), lambda s: s.ClearField("actions"))
    compiled = compile_permissions([P().to_proto(), allow_all, no_actions])
    assert len(compiled) == 1
    for _ in range(2):
        with pytest.raises(ValueError) as ours:
            enforce(compiled, USERS["bob-reader"], [], [D])
        assert str(ours.value) == str(stock.value) == "The list 'policy' must be non-empty."


def test_a_bad_pattern_raises_where_feast_reaches_it():
    compiled = compile_permissions([P(types=[FeatureView], name_patterns=["driver.*", "("]).to_proto()])
    bob = USERS["bob-reader"]
    view = resource(_kinds.FEATURE_VIEW, objects.feature_view().to_proto())
    other = resource(_kinds.FEATURE_VIEW, objects.feature_view("customer_stats").to_proto())
    entity = resource(_kinds.ENTITY, objects.entity().to_proto())
    assert enforce(compiled, bob, [view], [D]) == [0]
    with pytest.raises(re.error):
        enforce(compiled, bob, [other], [D])
    with pytest.raises(FeastPermissionError):
        enforce(compiled, bob, [entity], [D])


def test_the_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(_permissions, "MAX_PLANS", 10)
    compiled = compile_permissions([P().to_proto()])
    bob = USERS["bob-reader"]
    for n in range(50):
        res = _permissions.Resource(FeatureView, f"view_{n}", None)
        assert enforce(compiled, bob, [res], [D]) == [0]
        assert len(compiled._plans) <= 10


def test_a_get_decision_costs_microseconds():
    """One resource, one action, ten permissions, as a Get RPC asks."""
    compiled = compile_permissions([p.to_proto() for p in _ten()])
    res = resource(_kinds.ENTITY, objects.entity().to_proto())
    user = User("bob", roles=["reader"], groups=["g1"], namespaces=["ns1"])
    assert enforce(compiled, user, [res], [D]) == [0]
    n = 20000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            enforce(compiled, user, [res], [D], False)
        best = min(best, (time.perf_counter() - start) / n)
    print(f"\na Get decision: {best * 1e6:.2f} us")
    assert best < 50e-6  # a few microseconds; the bound leaves room for a loaded machine
