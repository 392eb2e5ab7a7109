/*
 * msgpack <-> JSON. Depth is bounded by the frame scanner upstream (8 levels), so the plain
 * recursion here cannot run away on daemon input; JSON from the command line is the user's.
 */
#include "ctl/jsonconv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *jc_base64(const void *data, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = T[v >> 18];
        out[o++] = T[(v >> 12) & 63];
        out[o++] = T[(v >> 6) & 63];
        out[o++] = T[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = T[v >> 18];
        out[o++] = T[(v >> 12) & 63];
        out[o++] = i + 1 < n ? T[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return out;
}

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int jc_unbase64(const char *s, size_t n, uint8_t **out, size_t *len)
{
    /* padding is optional, as many encoders leave it out; anything else outside the
     * alphabet is an error rather than skipped, so a corrupt body never goes out */
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -EINVAL;
    uint8_t *b = malloc(n / 4 * 3 + 3);
    if (!b)
        return -ENOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(b);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            b[o++] = (uint8_t)(acc >> 16);
            b[o++] = (uint8_t)(acc >> 8);
            b[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) {
        b[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) {
        b[o++] = (uint8_t)(acc >> 10);
        b[o++] = (uint8_t)(acc >> 2);
    }
    *out = b;
    *len = o;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t min;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
    } else
        return 0;
    if (len > n)
        return 0;
    uint32_t cp = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string from arbitrary bytes: proxies and targets send what they like. */
json_t *jc_string(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t l = p[i] ? utf8_len(p + i, n - i) : 1;
        if (l == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, p + i, l);
            o += l;
            i += l;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

json_t *jc_from_msgpack(const msgpack_object *o, jc_bin_mode bin)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* JSON numbers beyond 2^63 would not survive json_integer: keep them as reals */
        if (o->via.u64 > INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return jc_string(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        if (bin == JC_BIN_OMIT)
            return NULL;
        char *b = jc_base64(o->via.bin.ptr, o->via.bin.size);
        json_t *j = b ? json_string(b) : NULL;
        free(b);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = jc_from_msgpack(&o->via.array.ptr[i], bin);
            json_array_append_new(a, v ? v : json_null());
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *v = jc_from_msgpack(&kv->val, bin);
            if (!v)
                continue; /* omitted bin */
            if (kv->key.type == MSGPACK_OBJECT_STR) {
                json_t *k = jc_string(kv->key.via.str.ptr, kv->key.via.str.size);
                if (k)
                    json_object_setn_new(m, json_string_value(k), json_string_length(k), v);
                else
                    json_decref(v);
                json_decref(k);
            } else {
                json_t *kj = jc_from_msgpack(&kv->key, JC_BIN_BASE64);
                char *ks = kj ? json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                if (ks)
                    json_object_set_new(m, ks, v);
                else
                    json_decref(v);
                free(ks);
                json_decref(kj);
            }
        }
        return m;
    }
    default:
        return json_null();
    }
}

int jc_to_msgpack(const json_t *j, msgpack_packer *pk)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        return v < 0 ? msgpack_pack_int64(pk, v) : msgpack_pack_uint64(pk, (uint64_t)v);
    }
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(j));
        return msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
    case JSON_ARRAY:
        if (msgpack_pack_array(pk, json_array_size(j)))
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (jc_to_msgpack(json_array_get(j, i), pk))
                return -1;
        return 0;
    case JSON_OBJECT: {
        if (msgpack_pack_map(pk, json_object_size(j)))
            return -1;
        const char *k;
        size_t kl;
        json_t *v;
        void *tmp;
        json_object_keylen_foreach_safe((json_t *)j, tmp, k, kl, v) {
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, k, kl);
            if (jc_to_msgpack(v, pk))
                return -1;
        }
        return 0;
    }
    }
    return -1;
}
