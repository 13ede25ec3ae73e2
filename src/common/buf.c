/* buf.c - see buf.h. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t extra) {
    if (b->cap - b->n >= extra) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_put(buf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (buf_reserve(b, n) != 0) return -1;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

int buf_varint(buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t i = 0;
    do {
        tmp[i] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[i] |= 0x80;
        i++;
    } while (v);
    return buf_put(b, tmp, i);
}

int buf_ld_field(buf *b, uint32_t field, const void *p, size_t n) {
    if (buf_varint(b, ((uint64_t)field << 3) | 2) != 0) return -1;
    if (buf_varint(b, n) != 0) return -1;
    return buf_put(b, p, n);
}

void buf_free(buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
