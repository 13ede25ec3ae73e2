/* pb.h - edits on serialized Feast objects, with protobuf-c.
 *
 * Every function takes and returns whole serialized objects; fields this
 * layer does not know pass through unchanged. Pure C, no database, no
 * Python: fuzzable on its own.
 */
#ifndef FEAST_SQLREG_PB_H
#define FEAST_SQLREG_PB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#include "common/kinds.h" /* obj_kind */

typedef struct {
    int64_t seconds;
    int32_t nanos;
} pb_ts;

/* An update of a stored object: writes into out the new object with the
 * stored object's created_timestamp and, for (stream) feature views, every
 * stored materialization interval followed by the new object's intervals
 * that are not stored yet. This is what makes re-applying a definition keep
 * its history; it runs while the stored row is locked. Returns 0, or -1 with errbuf filled (a
 * message naming the object kind). */
int pb_merge_for_update(obj_kind kind, const uint8_t *newp, size_t newn, const uint8_t *oldp,
                        size_t oldn, buf *out, char *errbuf, size_t errlen);

/* Appends the interval [start, end] to a (stream) feature view, marks it
 * AVAILABLE_ONLINE and sets last_updated_timestamp to now. */
int pb_append_interval(obj_kind kind, const uint8_t *p, size_t n, pb_ts start, pb_ts end, pb_ts now,
                       buf *out, char *errbuf, size_t errlen);

/* A project's meta.last_updated_timestamp (zero when unset). */
int pb_project_last_updated(const uint8_t *p, size_t n, pb_ts *out, char *errbuf, size_t errlen);

/* Appends to out the bytes that, concatenated after a serialized object of
 * this kind, set its project (spec.project, or project for the kinds that
 * keep it at top level): protobuf merges a repeated sub-message and the last
 * value of a scalar wins. No parse of the object is needed. */
int pb_project_stamp(obj_kind kind, const char *project, size_t len, buf *out);

/* Checks that p[0..n) is a serialized object of this kind that Feast can
 * parse: well-formed wire format (no field number 0, no overlong or
 * truncated tag, varint or length), and the same for every sub-message this
 * layer knows (spec, meta, timestamps, intervals). Empty input is rejected
 * too: Feast never stores an object without a name. Runs before any
 * protobuf-c unpack of stored bytes. Returns 0, or -1 with errbuf saying
 * what is wrong and where (byte offset). */
int pb_validate(obj_kind kind, const uint8_t *p, size_t n, char *errbuf, size_t errlen);

/* 1 when every length-delimited field of the message p[0..n), at any
 * depth, is valid UTF-8 or itself a well-formed message that passes the
 * same check; 0 otherwise. Feast's parser rejects a string field with
 * invalid UTF-8, and this layer cannot tell strings from bytes without
 * Feast's full descriptors: a bytes field that is neither (a pickled UDF)
 * also gives 0, so 0 means "let Feast's own parser decide". */
int pb_strings_ok(const uint8_t *p, size_t n);

/* One field of a flat request message, for pb_read_request. The caller
 * sets number and type; pb_read_request fills in the rest. */
typedef enum {
    PB_REQ_STRING, /* length-delimited, valid UTF-8 (proto3 string) */
    PB_REQ_BOOL,   /* varint */
} pb_req_type;

typedef struct {
    uint32_t number;  /* 0: the message has no such field (never matches) */
    pb_req_type type; /* what the field is declared as */
    int present;      /* seen at least once */
    const uint8_t *p; /* PB_REQ_STRING: the value, pointing into the message */
    size_t n;
    int value; /* PB_REQ_BOOL: the value (any non-zero varint is true) */
} pb_req_field;

/* Reads the request message p[0..n), a message of only singular string and
 * bool fields such as Feast's Get*Request, into fields[0..nfields) (their
 * numbers distinct): each field absent from the message gets present 0 and
 * its default ("" or false). The untrusted bytes of a gRPC call go through
 * the same wire reader and the same limits as pb_validate (tags of at most
 * 5 bytes, no field number 0 or overlong tag, varints of at most 10 bytes,
 * lengths within the message).
 *
 * A field that occurs more than once takes its last value, as protobuf's
 * parsers (Feast's Python among them) do for a singular scalar, so repeats
 * are read, not refused: with every occurrence of the declared wire type,
 * they mean one thing to every parser.
 *
 * Returns 0, or -1 when the caller cannot know what Feast's own parser
 * would make of the message, so it must not answer it itself: the bytes
 * are malformed, or carry a field number not among fields (Feast's message
 * may know it, or keep it as unknown), or a wanted field with another wire
 * type than its declared one (protobuf would keep it as unknown, not as
 * the value), or a string that is not valid UTF-8 (Feast's parser rejects
 * the message). An empty message is valid: every field at its default. */
int pb_read_request(const uint8_t *p, size_t n, pb_req_field *fields, size_t nfields);

/* The message of our subset proto that this layer reads a kind as (its
 * meta and timestamps), or NULL for kinds whose bytes pass through whole
 * (validation references, infra). */
struct ProtobufCMessageDescriptor;
const struct ProtobufCMessageDescriptor *pb_object_descriptor(obj_kind kind);

/* Whether objects of this kind have materialization intervals. */
int pb_has_intervals(obj_kind kind);

#endif
