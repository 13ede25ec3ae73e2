/* nghttp2_compat.h - nghttp2's current API on older libraries.
 *
 * nghttp2 1.61 replaced the calls that take or return ssize_t with ones
 * that use nghttp2_ssize (mem_send2, mem_recv2, data_provider2,
 * submit_request2, submit_response2, ...) and deprecated the old ones, which
 * a build with NGHTTP2_NO_SSIZE_T does not see at all. front.c is written
 * against the new names (and tests/c/test_front.c's client); Debian 12's libnghttp2 (1.52, the one
 * the wheel bundles) predates them, so on a library older than 1.61 they are defined here in terms
 * of the old ones, which take the same arguments with ssize_t for nghttp2_ssize. Include this
 * instead of <nghttp2/nghttp2.h>.
 */
#ifndef FEAST_SQLREG_NGHTTP2_COMPAT_H
#define FEAST_SQLREG_NGHTTP2_COMPAT_H

#include <nghttp2/nghttp2.h>

#if NGHTTP2_VERSION_NUM < 0x013d00
#include <sys/types.h>

typedef ssize_t nghttp2_ssize;
typedef nghttp2_data_source_read_callback nghttp2_data_source_read_callback2;
typedef nghttp2_data_provider nghttp2_data_provider2;
typedef nghttp2_send_callback nghttp2_send_callback2;

static inline void nghttp2_session_callbacks_set_send_callback2(nghttp2_session_callbacks *cbs,
                                                                nghttp2_send_callback2 send_cb) {
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
}

static inline nghttp2_ssize nghttp2_session_mem_send2(nghttp2_session *session,
                                                      const uint8_t **data_ptr) {
    return nghttp2_session_mem_send(session, data_ptr);
}

static inline nghttp2_ssize nghttp2_session_mem_recv2(nghttp2_session *session, const uint8_t *in,
                                                      size_t inlen) {
    return nghttp2_session_mem_recv(session, in, inlen);
}

static inline int32_t nghttp2_submit_request2(nghttp2_session *session,
                                              const nghttp2_priority_spec *pri_spec,
                                              const nghttp2_nv *nva, size_t nvlen,
                                              const nghttp2_data_provider2 *data_prd,
                                              void *stream_user_data) {
    return nghttp2_submit_request(session, pri_spec, nva, nvlen, data_prd, stream_user_data);
}

static inline int nghttp2_submit_response2(nghttp2_session *session, int32_t stream_id,
                                           const nghttp2_nv *nva, size_t nvlen,
                                           const nghttp2_data_provider2 *data_prd) {
    return nghttp2_submit_response(session, stream_id, nva, nvlen, data_prd);
}
#endif

#endif
