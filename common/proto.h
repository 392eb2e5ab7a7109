/*
 * The wire protocol's shared pieces (docs/PROTOCOL.md is the contract):
 *  - proto_frame_scan: finds where one msgpack message ends in a byte stream WITHOUT
 *    allocating, and rejects what msgpack-c would turn into a huge allocation (container
 *    sizes larger than the bytes that could follow, nesting deeper than PROTO_MAX_DEPTH,
 *    messages longer than max_frame). Only spans it accepts are handed to msgpack_unpack_next.
 *  - request decoding into a flat struct, and small packing helpers for replies.
 * Used by worker/ (server side) and ctl/ (client side).
 */
#ifndef SCATTER_COMMON_PROTO_H
#define SCATTER_COMMON_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_DEPTH 8
#define PROTO_MAX_HEADERS 128

typedef enum {
    FRAME_NEED_MORE = 0,
    FRAME_BAD = -1,        /* not msgpack, or a reserved byte */
    FRAME_TOO_LARGE = -2,  /* longer than max_frame, or declares more than could fit */
    FRAME_TOO_DEEP = -3,
} frame_result;

/* > 0: a complete message of that many bytes starts at buf. FRAME_* otherwise. */
long proto_frame_scan(const uint8_t *buf, size_t len, size_t max_frame);
const char *proto_frame_strerror(long r);

typedef enum { OP_HELLO, OP_SUBMIT, OP_CANCEL, OP_STATUS, OP_PROXIES, OP_HOSTS, OP_CONFIG, OP_UNKNOWN } proto_op;

typedef struct {
    const char *p;
    uint32_t n;
} proto_str; /* points into the unpacked object: valid until the next unpack */

typedef struct {
    proto_op op;
    proto_str opname;
    uint64_t id;
    int has_id;
    /* submit */
    proto_str method, url, body;
    uint32_t n_headers;
    proto_str hname[PROTO_MAX_HEADERS], hval[PROTO_MAX_HEADERS];
    uint32_t timeout_ms, max_attempts, race_width;
    int has_timeout, has_max_attempts, has_race_width;
    proto_str session; /* sticky session name; n = 0: none */
    /* proxies / hosts */
    uint32_t limit, offset;
    proto_str host; /* proxies: only cells of this host */
} proto_request;

/* Decodes a request map. 0, or -1 with a message in err (the reply's `message`). r->id and
 * r->has_id are set whenever the map carried a valid id, even on error. */
int proto_decode_request(const msgpack_object *o, proto_request *r, char *err, size_t cap);

/* Map lookup by string key; NULL if absent or o is not a map. */
const msgpack_object *proto_map_get(const msgpack_object *o, const char *key);
/* Typed getters: 0 if present and of the type, -1 otherwise. */
int proto_get_u64(const msgpack_object *map, const char *key, uint64_t *out);
int proto_get_str(const msgpack_object *map, const char *key, proto_str *out);
int proto_get_bool(const msgpack_object *map, const char *key, int *out);
int proto_get_f64(const msgpack_object *map, const char *key, double *out);

/* A map whose pairs nobody counts by hand: proto_map_begin reserves room for a map32 header,
 * each proto_map_* call below adds one pair, and proto_map_end writes the count in the
 * smallest header (fixmap, map16 or map32: the bytes msgpack_pack_map would have written).
 * A map that is a value inside another (proto_map_sub, or an array element: proto_map_nested)
 * has its own proto_map and is ended before its container. Writes go through m->pk into the
 * sbuffer; a failed write (out of memory) is remembered by the map and every map it is nested
 * in, and proto_map_end says so. m->pk points at m: a proto_map stays where it was begun
 * until it is ended, and nothing else writes to sb meanwhile. */
typedef struct proto_map {
    msgpack_packer pk;         /* packs this map's keys and values; checks every write */
    msgpack_sbuffer *sb;
    struct proto_map *up;      /* the map this one is nested in; NULL at the top */
    size_t at;                 /* offset of the header in sb */
    uint32_t n;                /* pairs so far */
    int err;                   /* -ENOMEM once a write failed */
} proto_map;

/* A map at the end of sb (a message, or a value the caller counted in its container). */
void proto_map_begin(proto_map *m, msgpack_sbuffer *sb);
/* A map at the end of within's buffer that is part of the value of within's last key (an
 * element of an array packed with within's packer): it adds no pair to within. */
void proto_map_nested(proto_map *m, proto_map *within);
/* One more pair: packs its key and returns the packer for its one value. */
msgpack_packer *proto_map_key(proto_map *m, const char *k);
/* One more pair whose value is the map `sub` (fill it, then proto_map_end(sub)). */
void proto_map_sub(proto_map *m, const char *k, proto_map *sub);
void proto_map_str(proto_map *m, const char *k, const char *v);
void proto_map_strn(proto_map *m, const char *k, const char *v, size_t n);
void proto_map_u64(proto_map *m, const char *k, uint64_t v);
void proto_map_i64(proto_map *m, const char *k, int64_t v);
void proto_map_f64(proto_map *m, const char *k, double v);
void proto_map_bool(proto_map *m, const char *k, int v);
void proto_map_bin(proto_map *m, const char *k, const void *v, size_t n);
void proto_map_nil(proto_map *m, const char *k);
/* Writes the pair count. 0, or -ENOMEM if a write into this map (or one nested in it) failed:
 * the bytes in sb are then not a valid message. */
int proto_map_end(proto_map *m);

/* Packing helpers: key then value. */
void proto_pack_cstr(msgpack_packer *pk, const char *s);
void proto_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void proto_kv_str(msgpack_packer *pk, const char *k, const char *v);
void proto_kv_strn(msgpack_packer *pk, const char *k, const char *v, size_t n);
void proto_kv_u64(msgpack_packer *pk, const char *k, uint64_t v);
void proto_kv_i64(msgpack_packer *pk, const char *k, int64_t v);
void proto_kv_f64(msgpack_packer *pk, const char *k, double v);
void proto_kv_bool(msgpack_packer *pk, const char *k, int v);
void proto_kv_bin(msgpack_packer *pk, const char *k, const void *v, size_t n);

#endif
