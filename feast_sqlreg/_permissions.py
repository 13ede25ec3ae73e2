"""Feast's permission decisions, made on stored protobuf messages.

With auth configured, ``feast serve_registry`` checks every call through
``SecurityManager.assert_permissions``, which lists the project's
permissions (``Permission.from_proto`` of each stored one) and hands them,
with the Feast objects the call is about (``from_proto`` again), to
``feast.permissions.enforcer.enforce_policy``. This module decides the
same from the stored messages themselves, without building a Feast object:

- ``resource(kind, message)``: what the enforcer reads of an object (the
  class ``from_proto`` would build, its name, its ``required_tags``);
- ``compile_permissions(messages)``: a project's stored permissions,
  compiled once (classes, stripped and compiled name patterns, actions,
  policy, explanation);
- ``enforce(compiled, user, resources, actions, filter_only)``: the indices
  of the permitted resources, or Feast's exception with Feast's message.

Every rule is enforce_policy's and the matcher's, step for step (the
comments name them); tests/test_permissions.py compares the decisions with
Feast's own enforcer over a generated matrix. What this module relies on
in Feast's source is fingerprinted in feast_sqlreg._internals.

The caller gives the permissions in the order the registry lists them (the
order decides which refusals a message names and, with filter_only, which
permission's name patterns count), and the user as assert_permissions
passes it (``User("", [])`` when there is no current user). A compiled set
memoizes which permissions match a (resource, actions) pair; the memo lives
in the set, so a set compiled after a permission changed decides afresh.

Odd stored permissions. What ``Permission.from_proto`` refuses (an empty
policy, which is how ``AllowAll`` is stored; no actions; a type or action
number the enum has no name for) makes every check of the project raise
in stock, whatever the resources, because its permission listing raises
first. A compiled set keeps the first such message in the order given, and
``enforce`` raises what ``from_proto`` raises on it (type and message), on
every call. An empty type list is every managed type; name patterns and
required tags are stripped as Permission strips them. A name pattern that
does not compile raises re's error where Feast would reach it (type
matched, no earlier pattern matched), not at compile time; re's warnings
for odd patterns are given at compile time instead.

Odd objects. ``resource`` raises what from_proto raises for a permission
it refuses, and for a data source whose class Feast cannot identify or
import (as ``DataSource.from_proto`` does); it does not otherwise check
that the message would build. Infra is no FeastObject and has no name:
with permissions defined, enforce_policy fails reading it
(AttributeError), and so does ``enforce``.
"""

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from feast.batch_feature_view import BatchFeatureView
from feast.errors import FeastPermissionError
from feast.feast_object import ALL_RESOURCE_TYPES
from feast.feature_view import FeatureView
from feast.permissions.action import AuthzedAction
from feast.permissions.user import User
from feast.protos.feast.core.Permission_pb2 import PermissionSpec

from feast_sqlreg import _internals, _kinds


class _Absent:
    """The name of an object whose Feast class has no ``name`` (Infra)."""

    __slots__ = ()

    def __repr__(self):
        return "NO_NAME"


NO_NAME = _Absent()


class Resource(NamedTuple):
    """What the enforcer reads of one object."""

    #: The class ``from_proto`` builds (``type(resource)``).
    cls: type
    #: ``resource.name``; NO_NAME when the class has none (Infra).
    name: Any
    #: The items of ``resource.required_tags`` when that is a dict (a
    #: Permission with required tags); None when the object has no such
    #: attribute or it is not a dict (the matcher then lets the tags pass).
    required_tags: Optional[Tuple[Tuple[str, str], ...]]


# ---- objects ----------------------------------------------------------------

_BY_ID = {k.id: k for k in _kinds.KINDS}
#: (type, data_source_class_type) -> the class, for the sources seen.
_DATA_SOURCE_CLASSES: Dict[Tuple[int, str], type] = {}


def _data_source_class(message) -> type:
    key = (message.type, message.data_source_class_type)
    cls = _DATA_SOURCE_CLASSES.get(key)
    if cls is None:
        # Raises as DataSource.from_proto does before it builds anything.
        cls = _internals.data_source_class(message)
        _DATA_SOURCE_CLASSES[key] = cls
    return cls


def resource(kind: int, message) -> Resource:
    """The Resource of an object stored as ``message`` of kind ``kind`` (a
    feast_sqlreg._kinds kind id), as ``kind``'s ``from_proto`` would build
    it: a feature view with a ``feature_transformation`` is a
    BatchFeatureView (FeatureView._from_proto_internal); a data source's
    class is the one Feast's type table or ``data_source_class_type`` names;
    every other kind is its Feast class. Only Permission has
    ``required_tags`` (normalized as Permission does)."""
    k = _BY_ID[kind]
    if kind == _kinds.FEATURE_VIEW:
        cls = BatchFeatureView if message.spec.HasField("feature_transformation") else FeatureView
        return Resource(cls, message.spec.name, None)
    if kind == _kinds.DATA_SOURCE:
        return Resource(_data_source_class(message), message.name, None)
    if kind == _kinds.PERMISSION:
        tags = _stored_permission(message).required_tags
        return Resource(k.py_class, message.spec.name, None if tags is None else tuple(tags.items()))
    if kind == _kinds.INFRA:
        return Resource(k.py_class, NO_NAME, None)
    return Resource(k.py_class, message.spec.name if k.in_spec else message.name, None)


# ---- permissions --------------------------------------------------------------

#: Policy kinds (PolicyProto's policy_type oneof).
ROLES, GROUPS, NAMESPACES, COMBINED = 1, 2, 3, 4
_POLICY_KINDS = {
    "role_based_policy": ROLES,
    "group_based_policy": GROUPS,
    "namespace_based_policy": NAMESPACES,
    "combined_group_namespace_policy": COMBINED,
}
_MANAGED = tuple(ALL_RESOURCE_TYPES)


class _Stored(NamedTuple):
    """A stored permission as Permission.from_proto reads it."""

    name: str
    types: List[type]
    name_patterns: List[str]
    actions: List[AuthzedAction]
    policy: int
    roles: List[str]
    groups: List[str]
    namespaces: List[str]
    required_tags: Optional[Dict[str, str]]


def _stored_permission(message) -> _Stored:
    """Permission.from_proto's reading of a stored permission, step for step
    (and Permission.__init__'s checks and normalization), raising what they
    raise, without building a Permission."""
    spec = message.spec
    types = [_internals.permission_type_class(t) for t in spec.types]
    name_patterns = [p for p in spec.name_patterns]
    actions = [AuthzedAction[PermissionSpec.AuthzedAction.Name(a)] for a in spec.actions]
    policy_type = spec.policy.WhichOneof("policy_type")  # Policy.from_proto
    policy = _POLICY_KINDS.get(policy_type) if policy_type is not None else None
    if policy_type is not None and policy is None:
        raise NotImplementedError(f"policy_type is unsupported: {policy_type}")
    roles = groups = namespaces = []
    if policy == ROLES:
        roles = list(spec.policy.role_based_policy.roles)
    elif policy == GROUPS:
        groups = list(spec.policy.group_based_policy.groups)
    elif policy == NAMESPACES:
        namespaces = list(spec.policy.namespace_based_policy.namespaces)
    elif policy == COMBINED:
        groups = list(spec.policy.combined_group_namespace_policy.groups)
        namespaces = list(spec.policy.combined_group_namespace_policy.namespaces)
    # Permission.__init__
    if not types:
        types = list(ALL_RESOURCE_TYPES)
    for t in types:
        if t not in ALL_RESOURCE_TYPES:
            raise ValueError(f"{t} is not one of the managed types")
    if not actions:
        raise ValueError("The list 'actions' must be non-empty.")
    if policy is None:
        raise ValueError("The list 'policy' must be non-empty.")
    return _Stored(
        name=spec.name,
        types=types,
        name_patterns=_internals.normalize_name_patterns(name_patterns),
        actions=actions,
        policy=policy,
        roles=roles,
        groups=groups,
        namespaces=namespaces,
        required_tags=_internals.normalize_tags(dict(spec.required_tags) or None),
    )


def _compile_pattern(pattern: str):
    """The compiled pattern, or None when it does not compile (matching then
    calls re.fullmatch itself, which raises as it does in Feast)."""
    try:
        return re.compile(pattern)
    except Exception:
        return None


def _explanation(stored: _Stored) -> str:
    """What the policy's validate_user explains a refusal with."""
    if stored.policy == ROLES:
        return f"Requires roles {stored.roles}"
    if stored.policy == GROUPS:
        return "User is not added into the permitted groups"
    if stored.policy == NAMESPACES:
        return "User is not added into the permitted namespaces"
    return "User must be in at least one of the permitted groups or namespaces"


class Permission:
    """One compiled permission."""

    __slots__ = ("name", "types", "name_patterns", "regexes", "actions", "required_tags",
                 "policy", "roles", "groups", "namespaces", "explanation")

    def __init__(self, stored: _Stored):
        self.name = stored.name
        self.types = tuple(stored.types)
        self.name_patterns = tuple(stored.name_patterns)
        self.regexes = tuple(_compile_pattern(p) for p in stored.name_patterns)
        self.actions = tuple(stored.actions)
        self.required_tags = stored.required_tags
        self.policy = stored.policy
        self.roles = stored.roles
        self.groups = stored.groups
        self.namespaces = stored.namespaces
        self.explanation = _explanation(stored)

    def __repr__(self):
        return f"<compiled Permission {self.name!r}>"


#: A compiled set forgets its memo past this many (resource, actions) pairs.
MAX_PLANS = 65536


class Compiled:
    """A project's permissions, compiled, with the memo of what matched
    which (resource, actions); the memo lives and dies with the set."""

    __slots__ = ("permissions", "broken", "_plans")

    def __init__(self, permissions: Tuple[Permission, ...], broken=None):
        self.permissions = permissions
        #: (the first stored message Permission.from_proto refuses, what it
        #: raised), or None.
        self.broken = broken
        self._plans: Dict[Tuple[Resource, Tuple[AuthzedAction, ...]], Tuple[tuple, bool]] = {}

    def __len__(self):
        return len(self.permissions)

    def __repr__(self):
        return f"<Compiled {len(self.permissions)} permissions{' (broken)' if self.broken else ''}>"


def compile_permissions(messages: Sequence[Any]) -> Compiled:
    """The project's stored Permission messages, in the order the registry
    lists them, compiled. Never raises for a message from_proto refuses: the
    set is then broken, and enforce raises, as stock's listing does."""
    permissions = []
    for message in messages:
        try:
            stored = _stored_permission(message)
        except Exception as e:
            return Compiled(tuple(permissions), broken=(message, e))
        permissions.append(Permission(stored))
    return Compiled(tuple(permissions))


# ---- the matcher (feast.permissions.matcher) ----------------------------------


def _type_matches(p: Permission, cls: type) -> bool:
    """isinstance(resource, tuple(p.types)): subclasses included."""
    return issubclass(cls, p.types)


def _name_matches(p: Permission, name) -> bool:
    """_resource_name_matches_name_patterns: no patterns, or a pattern that
    re.fullmatch-es the name (patterns tried in order)."""
    if not p.name_patterns:
        return True
    if name is None or not isinstance(name, str):
        return True
    for pattern, regex in zip(p.name_patterns, p.regexes):
        match = regex.fullmatch(name) if regex is not None else re.fullmatch(pattern, name)
        if match:
            return True
    return False


def _tags_match(p: Permission, res: Resource) -> bool:
    """resource_match_config's required tags: each of the permission's
    must be the resource's, when the resource has a dict of them."""
    required = p.required_tags
    if not required:
        return True
    if res.required_tags is None:
        return True
    have = dict(res.required_tags)
    for tag in required.keys():
        if required.get(tag) != have.get(tag):
            return False
    return True


def _actions_match(p: Permission, actions) -> bool:
    """actions_match_config: every requested action is allowed."""
    return all(a in p.actions for a in actions)


def _matches(p: Permission, res: Resource, actions) -> bool:
    """p.match_resource(resource) and p.match_actions(actions)."""
    if not issubclass(res.cls, _MANAGED):  # is_a_feast_object
        return False
    if not _type_matches(p, res.cls):
        return False
    if not _name_matches(p, res.name):
        return False
    if not _tags_match(p, res):
        return False
    return _actions_match(p, actions)


def _skips_unmatched(permissions, res: Resource) -> bool:
    """filter_only with no matching permission: the resource is left out
    (not refused) when some permission of its type (whatever its names,
    tags and actions) has name patterns; refused when there is none of its
    type, or none of those has patterns."""
    return any(p.name_patterns for p in permissions if _type_matches(p, res.cls))


def _plan(compiled: Compiled, res: Resource, key) -> Tuple[tuple, bool]:
    """(the matching permissions in order, whether filter_only leaves the
    resource out when none matches), memoized in the compiled set."""
    permissions = compiled.permissions
    plan = (tuple(p for p in permissions if _matches(p, res, key)), _skips_unmatched(permissions, res))
    plans = compiled._plans
    if len(plans) >= MAX_PLANS:
        plans.clear()
    plans[(res, key)] = plan
    return plan


# ---- policies (feast.permissions.policy) ---------------------------------------


def _grants(p: Permission, user: User) -> bool:
    """p.policy.validate_user(user)[0]."""
    policy = p.policy
    if policy == ROLES:
        return any(role in user.roles for role in p.roles)
    if policy == GROUPS:
        return any(group in user.groups for group in p.groups)
    if policy == NAMESPACES:
        return any(namespace in user.namespaces for namespace in p.namespaces)
    in_group = any(group in user.groups for group in p.groups)
    in_namespace = any(namespace in user.namespaces for namespace in p.namespaces)
    return in_group or in_namespace


# ---- the enforcer (feast.permissions.enforcer.enforce_policy) -----------------


def _affirmative(matching, user: User) -> bool:
    """DecisionEvaluator's AFFIRMATIVE decision: the matching permissions
    vote in order and the first grant decides; it is a refusal only when
    all of them refuse."""
    for p in matching:
        if _grants(p, user):
            return True
    return False


def _left_out(matching) -> bool:
    """filter_only, all matching permissions refusing: the resource is left
    out, not refused, when the last of them (the one whose vote decided)
    has name patterns."""
    return bool(matching[-1].name_patterns)


def _refused(p: Permission, res: Resource, actions) -> str:
    return (f"Permission {p.name} denied execution of {[a.value.upper() for a in actions]} "
            f"to {res.cls.__name__}:{res.name}: {p.explanation}")


def _unmanaged(res: Resource, actions) -> FeastPermissionError:
    return FeastPermissionError(
        f"No permissions defined to manage {list(actions)} on {res.cls}/{res.name}."
    )


def enforce(
    compiled: Compiled,
    user: User,
    resources: Sequence[Resource],
    actions: List[AuthzedAction],
    filter_only: bool = False,
) -> List[int]:
    """enforce_policy(permissions, user, resources, actions, filter_only),
    decided on the compiled set: the indices of the permitted resources, in
    order; FeastPermissionError (Feast's message) where Feast raises it.

    No permissions: every resource for a user with a name, refusal without
    one. Otherwise each resource in turn: the permissions matching it (type
    with subclasses, stripped name patterns fullmatched, required tags) and
    all the actions vote in order; the first grant permits it (AFFIRMATIVE),
    all refusing refuse it, unless filter_only and the last of them has name
    patterns (then it is left out). None matching: refused, unless
    filter_only and some permission of its type has name patterns."""
    if compiled.broken is not None:
        message, error = compiled.broken
        _stored_permission(message)  # raises afresh what from_proto raises
        raise error  # it raised when compiled, and no longer does
    permissions = compiled.permissions
    if not permissions:
        if not user.username:
            raise FeastPermissionError(
                "No permissions defined and no authenticated user context. Access denied."
            )
        return list(range(len(resources)))
    key = tuple(actions)
    plans = compiled._plans
    permitted = []
    for i, res in enumerate(resources):
        if res.name is NO_NAME:  # enforce_policy reads resource.name first
            raise AttributeError(f"'{res.cls.__name__}' object has no attribute 'name'")
        plan = plans.get((res, key))
        if plan is None:
            plan = _plan(compiled, res, key)
        matching, skips = plan
        if matching:
            if _affirmative(matching, user):
                permitted.append(i)
            elif not (filter_only and _left_out(matching)):
                raise FeastPermissionError(",".join(_refused(p, res, actions) for p in matching))
        elif not (filter_only and skips):
            raise _unmanaged(res, actions)
    return permitted
