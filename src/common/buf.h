/* buf.h - a growable byte buffer, the unit of bytes passed between layers. */
#ifndef FEAST_SQLREG_BUF_H
#define FEAST_SQLREG_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

/* Each returns 0, or -1 when out of memory (the buffer is left as it was). */
int buf_reserve(buf *b, size_t extra);
int buf_put(buf *b, const void *p, size_t n);
int buf_varint(buf *b, uint64_t v);
/* A length-delimited protobuf field: tag (field, wire type 2), length, bytes. */
int buf_ld_field(buf *b, uint32_t field, const void *p, size_t n);
void buf_free(buf *b);

#endif
