/* kinds.h - the one table of registry object kinds.
 *
 * Every kind of object the registry stores is one row here, and every
 * place that treats kinds differently reads this table: the obj_kind enum
 * (below), the tables the store reads and writes (src/store/), how pb/pb.c
 * stamps a project and keeps timestamps, and, through the extension's KINDS
 * attribute (python/module.c), the Python package's maps: Feast's classes, proto
 * classes and exceptions, the registry server's Get/List RPCs
 * (feast_sqlreg/_kinds.py). Adding a kind Feast adds is adding a row (and
 * its table to the schema in src/store/schema.c when it has a new shape).
 *
 * Columns of FEAST_SQLREG_KINDS(X), one X(...) per kind, in obj_kind order:
 *   id          the obj_kind name without OBJ_ (also the Python constant)
 *   noun        how messages name one ("feature view")
 *   table       its table in Feast's SQL schema
 *   name_col    the table's name column
 *   proto_col   the table's serialized-object column
 *   reg_field   its repeated field of feast.core.Registry: number, name (the
 *               List RPC's response field has the same name)
 *   user_meta   1 when the table has a user_metadata column
 *   project_no  field number of the object's project string (0: not stamped)
 *   in_spec     1 when that field is in spec (field 1), 0 at top level
 *   layout      how pb/pb.c reads its meta: SPEC_META, FEATURE_VIEW,
 *               DATA_SOURCE, or OPAQUE (passed through whole)
 *   intervals   1 when the object keeps materialization intervals
 *   compared    1 when a re-apply of an unchanged object is skipped (stock
 *               compares these with the stored object)
 *   view        the kind's AnyFeatureView field and version-history type
 *               ("" when not a feature view)
 *   py_class    Feast's class, "module:Name"
 *   py_proto    Feast's generated proto class, "module:Name"
 *   not_found   the exception stock raises for a missing one ("" for none)
 *   get_rpc     the RegistryServer Get RPC that answers one ("" for none)
 *   list_rpc    the RegistryServer List RPC that lists them ("" for none)
 */
#ifndef FEAST_SQLREG_KINDS_H
#define FEAST_SQLREG_KINDS_H

/* clang-format off */
#define FEAST_SQLREG_KINDS(X)                                                                      \
    X(PROJECT, "project", "projects", "project_name", "project_proto",                             \
      17, "projects", 0, 0, 0, SPEC_META, 0, 1, "",                                                \
      "feast.project:Project", "feast.protos.feast.core.Project_pb2:Project",                      \
      "feast.errors:ProjectObjectNotFoundException", "GetProject", "ListProjects")                 \
    X(ENTITY, "entity", "entities", "entity_name", "entity_proto",                                 \
      1, "entities", 0, 9, 1, SPEC_META, 0, 1, "",                                                 \
      "feast.entity:Entity", "feast.protos.feast.core.Entity_pb2:Entity",                          \
      "feast.errors:EntityNotFoundException", "GetEntity", "ListEntities")                         \
    X(DATA_SOURCE, "data source", "data_sources", "data_source_name", "data_source_proto",         \
      12, "data_sources", 0, 21, 0, DATA_SOURCE, 0, 1, "",                                         \
      "feast.data_source:DataSource", "feast.protos.feast.core.DataSource_pb2:DataSource",         \
      "feast.errors:DataSourceObjectNotFoundException", "GetDataSource", "ListDataSources")        \
    X(FEATURE_VIEW, "feature view", "feature_views", "feature_view_name", "feature_view_proto",    \
      6, "feature_views", 1, 2, 1, FEATURE_VIEW, 1, 1, "feature_view",                             \
      "feast.feature_view:FeatureView",                                                            \
      "feast.protos.feast.core.FeatureView_pb2:FeatureView",                                       \
      "feast.errors:FeatureViewNotFoundException", "GetFeatureView", "ListFeatureViews")           \
    X(STREAM_FEATURE_VIEW, "stream feature view", "stream_feature_views", "feature_view_name",     \
      "feature_view_proto", 14, "stream_feature_views", 1, 2, 1, FEATURE_VIEW, 1, 1,               \
      "stream_feature_view", "feast.stream_feature_view:StreamFeatureView",                        \
      "feast.protos.feast.core.StreamFeatureView_pb2:StreamFeatureView",                           \
      "feast.errors:FeatureViewNotFoundException", "GetStreamFeatureView",                         \
      "ListStreamFeatureViews")                                                                    \
    X(ON_DEMAND_FEATURE_VIEW, "on-demand feature view", "on_demand_feature_views",                 \
      "feature_view_name", "feature_view_proto", 8, "on_demand_feature_views", 1, 2, 1,            \
      SPEC_META, 0, 1, "on_demand_feature_view",                                                   \
      "feast.on_demand_feature_view:OnDemandFeatureView",                                          \
      "feast.protos.feast.core.OnDemandFeatureView_pb2:OnDemandFeatureView",                       \
      "feast.errors:FeatureViewNotFoundException", "GetOnDemandFeatureView",                       \
      "ListOnDemandFeatureViews")                                                                  \
    X(LABEL_VIEW, "label view", "label_views", "feature_view_name", "feature_view_proto",          \
      19, "label_views", 1, 2, 1, SPEC_META, 0, 1, "label_view",                                   \
      "feast.labeling.label_view:LabelView", "feast.protos.feast.core.LabelView_pb2:LabelView",    \
      "feast.errors:FeatureViewNotFoundException", "GetLabelView", "ListLabelViews")               \
    X(FEATURE_SERVICE, "feature service", "feature_services", "feature_service_name",              \
      "feature_service_proto", 7, "feature_services", 0, 2, 1, SPEC_META, 0, 1, "",                \
      "feast.feature_service:FeatureService",                                                      \
      "feast.protos.feast.core.FeatureService_pb2:FeatureService",                                 \
      "feast.errors:FeatureServiceNotFoundException", "GetFeatureService",                         \
      "ListFeatureServices")                                                                       \
    X(SAVED_DATASET, "saved dataset", "saved_datasets", "saved_dataset_name",                      \
      "saved_dataset_proto", 11, "saved_datasets", 0, 2, 1, SPEC_META, 0, 1, "",                   \
      "feast.saved_dataset:SavedDataset",                                                          \
      "feast.protos.feast.core.SavedDataset_pb2:SavedDataset",                                     \
      "feast.errors:SavedDatasetNotFound", "GetSavedDataset", "ListSavedDatasets")                 \
    X(VALIDATION_REFERENCE, "validation reference", "validation_references",                       \
      "validation_reference_name", "validation_reference_proto", 13, "validation_references",      \
      0, 3, 0, OPAQUE, 0, 0, "", "feast.saved_dataset:ValidationReference",                        \
      "feast.protos.feast.core.ValidationProfile_pb2:ValidationReference",                         \
      "feast.errors:ValidationReferenceNotFound", "GetValidationReference",                        \
      "ListValidationReferences")                                                                  \
    X(PERMISSION, "permission", "permissions", "permission_name", "permission_proto",              \
      16, "permissions", 0, 2, 1, SPEC_META, 0, 1, "",                                             \
      "feast.permissions.permission:Permission",                                                   \
      "feast.protos.feast.core.Permission_pb2:Permission",                                         \
      "feast.errors:PermissionNotFoundException", "GetPermission", "ListPermissions")              \
    X(INFRA, "infra", "managed_infra", "infra_name", "infra_proto",                                \
      10, "infra", 0, 0, 0, OPAQUE, 0, 0, "", "feast.infra.infra_object:Infra",                         \
      "feast.protos.feast.core.InfraObject_pb2:Infra", "", "GetInfra", "")
/* clang-format on */

#include <stdint.h>

/* The kinds of registry object, one per table. */
#define FEAST_SQLREG_KIND_ENUM(id, ...) OBJ_##id,
typedef enum { FEAST_SQLREG_KINDS(FEAST_SQLREG_KIND_ENUM) OBJ_KINDS } obj_kind;
#undef FEAST_SQLREG_KIND_ENUM

/* How pb/pb.c reads a kind's meta (the layout column). */
typedef enum { KIND_SPEC_META, KIND_FEATURE_VIEW, KIND_DATA_SOURCE, KIND_OPAQUE } kind_layout;

/* One row of the table, as C reads it. */
typedef struct {
    const char *id, *noun, *table, *name_col, *proto_col;
    uint32_t reg_field;
    const char *reg_name;
    int user_meta;
    uint32_t project_no;
    int in_spec;
    kind_layout layout;
    int intervals, compared;
    const char *view, *py_class, *py_proto, *not_found, *get_rpc, *list_rpc;
} kind_info;

/* The row of kind k (k must be a valid obj_kind). */
const kind_info *kind_of(obj_kind k);

/* The noun for kind k, or "object" when k is out of range. */
const char *kind_noun(obj_kind k);

#endif
