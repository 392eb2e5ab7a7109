/*
 * Frame scanning and request decoding. The scanner is the memory guard in front of msgpack-c
 * (a 5-byte array header can make msgpack-c's unpacker allocate gigabytes): it walks the
 * encoding with a fixed-size stack and accepts a container only if its declared element count
 * could still fit within max_frame, one byte per element at least.
 */
#include "common/proto.h"

#include "common/limits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

long proto_frame_scan(const uint8_t *buf, size_t len, size_t max_frame)
{
    uint64_t pending[PROTO_MAX_DEPTH + 1]; /* elements still owed by each open container */
    int depth = 0;
    size_t pos = 0;
    uint64_t todo = 1; /* elements owed at the top level: one message */
    for (;;) {
        if (pos >= max_frame)
            return FRAME_TOO_LARGE;
        if (pos >= len)
            return FRAME_NEED_MORE;
        uint8_t b = buf[pos];
        uint64_t skip = 0;      /* payload bytes after the header */
        uint64_t children = 0;  /* elements of a container */
        int hdr = 1;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        } else if (b >= 0x80 && b <= 0x8f) {
            children = (uint64_t)(b & 0x0f) * 2;
        } else if (b >= 0x90 && b <= 0x9f) {
            children = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            int lenbytes = 0;
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;                    /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;                    /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;                    /* bin32, str32 */
            case 0xc7: lenbytes = 1; skip = 1; break;                     /* ext8 (+type) */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: lenbytes = 2; break;
            case 0xdd: case 0xdf: lenbytes = 4; break;
            default: return FRAME_BAD; /* 0xc1 is never used */
            }
            if (lenbytes) {
                if (pos + 1 + (size_t)lenbytes > len)
                    return pos + 1 + (size_t)lenbytes > max_frame ? FRAME_TOO_LARGE : FRAME_NEED_MORE;
                uint64_t n = be(buf + pos + 1, lenbytes);
                hdr += lenbytes;
                if (b == 0xdc || b == 0xdd)
                    children = n;
                else if (b == 0xde || b == 0xdf)
                    children = n * 2;
                else
                    skip += n;
            }
        }
        if (children > max_frame || skip > max_frame || pos + (uint64_t)hdr + skip + children > max_frame)
            return FRAME_TOO_LARGE;
        pos += (size_t)hdr + (size_t)skip;
        if (pos > len)
            return pos > max_frame ? FRAME_TOO_LARGE : FRAME_NEED_MORE;
        todo--;
        if (children) {
            if (depth == PROTO_MAX_DEPTH)
                return FRAME_TOO_DEEP;
            pending[depth++] = todo;
            todo = children;
        }
        while (todo == 0) {
            if (depth == 0)
                return (long)pos;
            todo = pending[--depth];
        }
    }
}

const char *proto_frame_strerror(long r)
{
    switch (r) {
    case FRAME_BAD: return "malformed msgpack";
    case FRAME_TOO_LARGE: return "message exceeds max_frame";
    case FRAME_TOO_DEEP: return "message nested too deeply";
    default: return "incomplete message";
    }
}

const msgpack_object *proto_map_get(const msgpack_object *o, const char *key)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl && memcmp(k->via.str.ptr, key, kl) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

int proto_get_u64(const msgpack_object *m, const char *key, uint64_t *out)
{
    const msgpack_object *v = proto_map_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *out = v->via.u64;
    return 0;
}

int proto_get_str(const msgpack_object *m, const char *key, proto_str *out)
{
    const msgpack_object *v = proto_map_get(m, key);
    if (!v)
        return -1;
    if (v->type == MSGPACK_OBJECT_STR) {
        out->p = v->via.str.ptr;
        out->n = v->via.str.size;
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_BIN) {
        out->p = v->via.bin.ptr;
        out->n = v->via.bin.size;
        return 0;
    }
    return -1;
}

int proto_get_bool(const msgpack_object *m, const char *key, int *out)
{
    const msgpack_object *v = proto_map_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = v->via.boolean;
    return 0;
}

int proto_get_f64(const msgpack_object *m, const char *key, double *out)
{
    const msgpack_object *v = proto_map_get(m, key);
    if (!v)
        return -1;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        *out = v->via.f64;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double)v->via.u64;
    else
        return -1;
    return 0;
}

static int opt_u32(const msgpack_object *o, const char *key, uint32_t *out, int *has, char *err, size_t cap)
{
    const msgpack_object *v = proto_map_get(o, key);
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > UINT32_MAX) {
        snprintf(err, cap, "'%s' must be an unsigned integer below 2^32", key);
        return -1;
    }
    *out = (uint32_t)v->via.u64;
    if (has)
        *has = 1;
    return 0;
}

static int decode_headers(const msgpack_object *h, proto_request *r, char *err, size_t cap)
{
    if (h->type != MSGPACK_OBJECT_ARRAY || h->via.array.size > PROTO_MAX_HEADERS) {
        snprintf(err, cap, "'headers' must be an array of at most %d [name, value] pairs", PROTO_MAX_HEADERS);
        return -1;
    }
    for (uint32_t i = 0; i < h->via.array.size; i++) {
        const msgpack_object *pair = &h->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
            pair->via.array.ptr[0].type != MSGPACK_OBJECT_STR || pair->via.array.ptr[1].type != MSGPACK_OBJECT_STR) {
            snprintf(err, cap, "headers[%u] must be [name, value] strings", i);
            return -1;
        }
        proto_str nm = {pair->via.array.ptr[0].via.str.ptr, pair->via.array.ptr[0].via.str.size};
        proto_str vl = {pair->via.array.ptr[1].via.str.ptr, pair->via.array.ptr[1].via.str.size};
        if (nm.n == 0 || memchr(nm.p, ':', nm.n) || memchr(nm.p, '\r', nm.n) || memchr(nm.p, '\n', nm.n) ||
            memchr(nm.p, ' ', nm.n) || memchr(vl.p, '\r', vl.n) || memchr(vl.p, '\n', vl.n) ||
            memchr(nm.p, 0, nm.n) || memchr(vl.p, 0, vl.n)) {
            snprintf(err, cap, "headers[%u]: name or value contains a forbidden character", i);
            return -1;
        }
        r->hname[r->n_headers] = nm;
        r->hval[r->n_headers++] = vl;
    }
    return 0;
}

static int decode_submit(const msgpack_object *o, proto_request *r, char *err, size_t cap)
{
    if (proto_get_str(o, "url", &r->url)) {
        snprintf(err, cap, "submit needs a string 'url'");
        return -1;
    }
    if (proto_map_get(o, "method")) {
        if (proto_get_str(o, "method", &r->method) || r->method.n == 0 || r->method.n > 16) {
            snprintf(err, cap, "'method' must be a string of 1..16 characters");
            return -1;
        }
        for (uint32_t i = 0; i < r->method.n; i++)
            if (r->method.p[i] < 'A' || r->method.p[i] > 'Z') {
                snprintf(err, cap, "'method' must be upper-case letters");
                return -1;
            }
    } else {
        r->method.p = "GET";
        r->method.n = 3;
    }
    const msgpack_object *b = proto_map_get(o, "body");
    if (b && b->type != MSGPACK_OBJECT_NIL && proto_get_str(o, "body", &r->body)) {
        snprintf(err, cap, "'body' must be bin or str");
        return -1;
    }
    const msgpack_object *h = proto_map_get(o, "headers");
    if (h && h->type != MSGPACK_OBJECT_NIL && decode_headers(h, r, err, cap))
        return -1;
    if (opt_u32(o, "timeout_ms", &r->timeout_ms, &r->has_timeout, err, cap) ||
        opt_u32(o, "max_attempts", &r->max_attempts, &r->has_max_attempts, err, cap) ||
        opt_u32(o, "race_width", &r->race_width, &r->has_race_width, err, cap))
        return -1;
    if (r->has_race_width && (r->race_width == 0 || r->race_width > SC_RACE_MAX)) {
        snprintf(err, cap, "'race_width' must be 1..%d", SC_RACE_MAX);
        return -1;
    }
    /* its length is the task layer's check, shared with the HTTP front end */
    const msgpack_object *sn = proto_map_get(o, "session");
    if (sn && sn->type != MSGPACK_OBJECT_NIL &&
        (sn->type != MSGPACK_OBJECT_STR || proto_get_str(o, "session", &r->session) || r->session.n == 0)) {
        snprintf(err, cap, "'session' must be a non-empty string");
        return -1;
    }
    return 0;
}

/* proxies and hosts: a page and an optional host */
static int decode_listing(const msgpack_object *o, proto_request *r, char *err, size_t cap)
{
    r->limit = 1000;
    if (opt_u32(o, "limit", &r->limit, NULL, err, cap) || opt_u32(o, "offset", &r->offset, NULL, err, cap))
        return -1;
    if (proto_map_get(o, "host") && proto_get_str(o, "host", &r->host)) {
        snprintf(err, cap, "'host' must be a string");
        return -1;
    }
    return 0;
}

int proto_decode_request(const msgpack_object *o, proto_request *r, char *err, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->op = OP_UNKNOWN;
    if (o->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, cap, "a request must be a map");
        return -1;
    }
    const msgpack_object *id = proto_map_get(o, "id");
    if (id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        r->id = id->via.u64;
        r->has_id = 1;
    }
    if (proto_get_str(o, "op", &r->opname)) {
        snprintf(err, cap, "missing or non-string 'op'");
        return -1;
    }
    static const char *const OPS[] = {"hello", "submit", "cancel", "status", "proxies", "hosts", "config"};
    for (int i = 0; i < (int)(sizeof OPS / sizeof OPS[0]); i++)
        if (strlen(OPS[i]) == r->opname.n && memcmp(OPS[i], r->opname.p, r->opname.n) == 0)
            r->op = (proto_op)i;
    if (r->op == OP_UNKNOWN) {
        snprintf(err, cap, "unknown op '%.*s'", (int)(r->opname.n > 32 ? 32 : r->opname.n), r->opname.p);
        return -1;
    }
    if (!r->has_id) {
        snprintf(err, cap, "missing or non-integer 'id'");
        return -1;
    }
    switch (r->op) {
    case OP_SUBMIT: return decode_submit(o, r, err, cap);
    case OP_PROXIES:
    case OP_HOSTS: return decode_listing(o, r, err, cap);
    default: return 0;
    }
}

void proto_pack_cstr(msgpack_packer *pk, const char *s) { proto_pack_strn(pk, s, strlen(s)); }

void proto_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void proto_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    proto_pack_cstr(pk, k);
    proto_pack_cstr(pk, v);
}

void proto_kv_strn(msgpack_packer *pk, const char *k, const char *v, size_t n)
{
    proto_pack_cstr(pk, k);
    proto_pack_strn(pk, v, n);
}

void proto_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    proto_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

void proto_kv_i64(msgpack_packer *pk, const char *k, int64_t v)
{
    proto_pack_cstr(pk, k);
    msgpack_pack_int64(pk, v);
}

void proto_kv_f64(msgpack_packer *pk, const char *k, double v)
{
    proto_pack_cstr(pk, k);
    msgpack_pack_double(pk, v);
}

void proto_kv_bool(msgpack_packer *pk, const char *k, int v)
{
    proto_pack_cstr(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void proto_kv_bin(msgpack_packer *pk, const char *k, const void *v, size_t n)
{
    proto_pack_cstr(pk, k);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, v, n);
}

/* The packer of a proto_map writes through here so that a failed write is not lost: msgpack's
 * packers return the callback's result, which the kv helpers above drop. */
static int map_write(void *data, const char *buf, size_t len)
{
    proto_map *m = data;
    int rc = msgpack_sbuffer_write(m->sb, buf, len);
    if (rc != 0)
        for (proto_map *p = m; p; p = p->up)
            p->err = -ENOMEM;
    return rc;
}

static void map_open(proto_map *m, msgpack_sbuffer *sb, proto_map *up)
{
    m->pk.data = m;
    m->pk.callback = map_write;
    m->sb = sb;
    m->up = up;
    m->n = 0;
    m->err = 0;
    m->at = sb->size;
    /* room for a map32 header: proto_map_end writes the count, whatever it grew to */
    static const char hdr[5] = {(char)0xdf, 0, 0, 0, 0};
    map_write(m, hdr, sizeof hdr);
}

void proto_map_begin(proto_map *m, msgpack_sbuffer *sb) { map_open(m, sb, NULL); }

void proto_map_nested(proto_map *m, proto_map *within) { map_open(m, within->sb, within); }

msgpack_packer *proto_map_key(proto_map *m, const char *k)
{
    m->n++;
    proto_pack_cstr(&m->pk, k);
    return &m->pk;
}

void proto_map_sub(proto_map *m, const char *k, proto_map *sub)
{
    proto_map_key(m, k);
    proto_map_nested(sub, m);
}

void proto_map_str(proto_map *m, const char *k, const char *v) { proto_pack_cstr(proto_map_key(m, k), v); }

void proto_map_strn(proto_map *m, const char *k, const char *v, size_t n)
{
    proto_pack_strn(proto_map_key(m, k), v, n);
}

void proto_map_u64(proto_map *m, const char *k, uint64_t v) { msgpack_pack_uint64(proto_map_key(m, k), v); }

void proto_map_i64(proto_map *m, const char *k, int64_t v) { msgpack_pack_int64(proto_map_key(m, k), v); }

void proto_map_f64(proto_map *m, const char *k, double v) { msgpack_pack_double(proto_map_key(m, k), v); }

void proto_map_bool(proto_map *m, const char *k, int v)
{
    msgpack_packer *pk = proto_map_key(m, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void proto_map_bin(proto_map *m, const char *k, const void *v, size_t n)
{
    msgpack_packer *pk = proto_map_key(m, k);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, v, n);
}

void proto_map_nil(proto_map *m, const char *k) { msgpack_pack_nil(proto_map_key(m, k)); }

int proto_map_end(proto_map *m)
{
    if (m->err)
        return m->err;
    /* The smallest header for the count, as msgpack_pack_map writes it, so replies are the
     * same bytes as when the counts were written by hand. What follows the header is this
     * map's own content (maps nested in it are ended already; its container's header lies
     * before it), so moving it down disturbs no open map. */
    uint8_t *h = (uint8_t *)m->sb->data + m->at;
    size_t hl = 5;
    if (m->n < 16) {
        h[0] = (uint8_t)(0x80 | m->n);
        hl = 1;
    } else if (m->n <= 0xffff) {
        h[0] = 0xde;
        h[1] = (uint8_t)(m->n >> 8);
        h[2] = (uint8_t)m->n;
        hl = 3;
    } else {
        h[1] = (uint8_t)(m->n >> 24);
        h[2] = (uint8_t)(m->n >> 16);
        h[3] = (uint8_t)(m->n >> 8);
        h[4] = (uint8_t)m->n;
    }
    if (hl < 5) {
        memmove(h + hl, h + 5, m->sb->size - m->at - 5);
        m->sb->size -= 5 - hl;
    }
    return 0;
}
