"""Feast objects of every kind the registry stores, built the way users do.

Each factory takes the changes a test wants (``**overrides``) so one call
site can make the "same" object twice or a changed variant.
"""

import os
import tempfile
from datetime import datetime, timedelta, timezone

import pandas as pd
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Project,
    PushSource,
    RequestSource,
)
from feast.data_format import AvroFormat
from feast.data_source import KafkaSource
from feast.infra.infra_object import Infra
from feast.infra.online_stores.sqlite import SqliteTable
from feast.labeling.label_view import LabelView
from feast.on_demand_feature_view import on_demand_feature_view as odfv_decorator
from feast.permissions.action import AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy
from feast.saved_dataset import SavedDataset
from feast.infra.offline_stores.file_source import SavedDatasetFileStorage
from feast.stream_feature_view import StreamFeatureView
from feast.types import Float32, Float64, Int64, String
from feast.value_type import ValueType


def entity(name="driver", **kw):
    args = dict(
        name=name,
        join_keys=[f"{name}_id"],
        value_type=ValueType.INT64,
        description="a driver",
        tags={"team": "core"},
    )
    args.update(kw)
    return Entity(**args)


def file_source(name="driver_stats_source", **kw):
    args = dict(
        name=name,
        path="data/driver_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        tags={"team": "core"},
    )
    args.update(kw)
    return FileSource(**args)


def feature_view(name="driver_hourly_stats", source=None, ent=None, **kw):
    ent = ent or entity()
    args = dict(
        name=name,
        entities=[ent],
        ttl=timedelta(days=1),
        schema=[
            Field(name="conv_rate", dtype=Float32),
            Field(name="acc_rate", dtype=Float32),
            Field(name="avg_daily_trips", dtype=Int64),
        ],
        online=True,
        source=source or file_source(),
        tags={"team": "core", "tier": "gold"},
    )
    args.update(kw)
    return FeatureView(**args)


def kafka_source(name="driver_stream"):
    return KafkaSource(
        name=name,
        kafka_bootstrap_servers="localhost:9092",
        topic="drivers",
        timestamp_field="event_timestamp",
        batch_source=file_source("driver_stream_batch"),
        message_format=AvroFormat(schema_json="{}"),
    )


def stream_feature_view(name="driver_stream_stats", **kw):
    args = dict(
        name=name,
        entities=[entity()],
        ttl=timedelta(days=1),
        schema=[Field(name="trips", dtype=Int64)],
        source=kafka_source(),
        tags={"team": "stream"},
    )
    args.update(kw)
    return StreamFeatureView(**args)


def request_source():
    return RequestSource(name="vals_to_add", schema=[Field(name="val", dtype=Int64)])


def on_demand_feature_view(fv=None, name="conv_rate_plus_val", tags=None):
    fv = fv or feature_view()

    @odfv_decorator(
        sources=[fv, request_source()],
        schema=[Field(name="conv_rate_plus_val", dtype=Float64)],
        mode="pandas",
        tags=tags or {"team": "odfv"},
    )
    def conv_rate_plus_val(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame()
        out["conv_rate_plus_val"] = inputs["conv_rate"] + inputs["val"]
        return out

    conv_rate_plus_val.name = name
    return conv_rate_plus_val


def push_source(name="label_push"):
    return PushSource(name=name, batch_source=file_source("label_batch"))


def label_view(name="driver_labels", **kw):
    args = dict(
        name=name,
        source=push_source(),
        entities=[entity()],
        schema=[Field(name="is_fraud", dtype=Int64), Field(name="note", dtype=String)],
        tags={"team": "labels"},
    )
    args.update(kw)
    return LabelView(**args)


def feature_service(name="driver_activity", views=None, **kw):
    args = dict(
        name=name,
        features=views or [feature_view()],
        tags={"team": "core"},
        description="driver activity",
    )
    args.update(kw)
    return FeatureService(**args)


def saved_dataset(name="training_set", **kw):
    args = dict(
        name=name,
        features=["driver_hourly_stats:conv_rate"],
        join_keys=["driver_id"],
        storage=SavedDatasetFileStorage(path="data/training.parquet"),
        tags={"team": "ml"},
    )
    args.update(kw)
    return SavedDataset(**args)


def permission(name="readers", **kw):
    args = dict(
        name=name,
        types=[FeatureView],
        name_patterns=["driver.*"],
        actions=[AuthzedAction.DESCRIBE],
        policy=RoleBasedPolicy(roles=["reader"]),
        tags={"team": "sec"},
    )
    args.update(kw)
    return Permission(**args)


def project(name="proj", **kw):
    args = dict(name=name, description="a project", tags={"env": "test"})
    args.update(kw)
    return Project(**args)


def infra(project_name="proj"):
    # SqliteTable opens its file when built: keep it out of the source tree.
    path = os.path.join(tempfile.gettempdir(), "feast_sqlreg_tests_online.db")
    infra_obj = Infra()
    infra_obj.infra_objects.append(SqliteTable(path=path, name=f"{project_name}_t"))
    return infra_obj


T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def populate(reg, projects=("proj", "other")):
    """Every kind of object in each project, a materialization interval,
    custom project metadata, and a second version of one feature view."""
    for name in projects:
        reg.apply_project(project(name))
        reg.apply_entity(entity(), name)
        reg.apply_data_source(file_source(), name)
        fv = feature_view()
        reg.apply_feature_view(fv, name)
        reg.apply_feature_view(on_demand_feature_view(fv), name)
        reg.apply_feature_view(stream_feature_view(), name)
        reg.apply_feature_view(label_view(), name)
        reg.apply_feature_service(feature_service(views=[fv]), name)
        reg.apply_saved_dataset(saved_dataset(), name)
        reg.apply_permission(permission(), name)
        reg.update_infra(infra(name), name)
        reg.apply_materialization(fv, name, T0, T1)
        reg.set_project_metadata(name, "owner", "team-a")
    reg.apply_feature_view(feature_view(schema=feature_view().schema[:2]), projects[0])
