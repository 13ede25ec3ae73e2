/* kinds.c - the table of kinds (kinds.h) as an array. */
#include "common/kinds.h"

#define FEAST_SQLREG_KIND_ROW(id, noun, table, name_col, proto_col, reg_field, reg_name,           \
                              user_meta, project_no, in_spec, layout, intervals, compared, view,   \
                              py_class, py_proto, not_found, get_rpc, list_rpc)                    \
    [OBJ_##id] = {#id,       noun,       table,     name_col,      proto_col, reg_field, reg_name, \
                  user_meta, project_no, in_spec,   KIND_##layout, intervals, compared,  view,     \
                  py_class,  py_proto,   not_found, get_rpc,       list_rpc},

static const kind_info TABLE[OBJ_KINDS] = {FEAST_SQLREG_KINDS(FEAST_SQLREG_KIND_ROW)};

const kind_info *kind_of(obj_kind k) {
    return &TABLE[k];
}

const char *kind_noun(obj_kind k) {
    return (unsigned)k < OBJ_KINDS ? TABLE[k].noun : "object";
}
