/*
 * stats.c — what each target saw, in numbers a test can assert on.
 *
 * Why its own file: the counters are the farm's product. Tests read them over HTTP
 * (/__farm/stats) while the farm runs and from stdout when it exits; both use the same JSON
 * built here, so there is one definition of every number.
 *
 * Memory is bounded: per-source counters live in an open-addressing hash table keyed by IPv4
 * address (one entry per distinct client address, i.e. at most one per proxy plus a few), and
 * the "distinct items served" set is a bitmap of --max-items bits.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int stats_init(struct target_stats *s, unsigned max_items)
{
    memset(s, 0, sizeof *s);
    s->items_bitmap = calloc((max_items + 7) / 8, 1);
    return s->items_bitmap ? 0 : -1;
}

void stats_free(struct target_stats *s)
{
    free(s->items_bitmap);
    free(s->src);
    s->items_bitmap = NULL;
    s->src = NULL;
    s->src_cap = s->src_used = 0;
}

void stats_reset(struct target_stats *s, unsigned max_items)
{
    s->requests = s->violations = s->items_distinct = 0;
    memset(s->status, 0, sizeof s->status);
    memset(s->items_bitmap, 0, (max_items + 7) / 8);
    free(s->src);
    s->src = NULL;
    s->src_cap = s->src_used = 0;
}

static size_t slot_of(uint32_t addr, size_t cap)
{
    uint32_t h = addr * 2654435761u;
    return (size_t)(h ^ (h >> 16)) & (cap - 1);
}

static struct src_stat *lookup(struct src_stat *tab, size_t cap, uint32_t addr)
{
    for (size_t i = slot_of(addr, cap);; i = (i + 1) & (cap - 1))
        if (tab[i].addr == addr || tab[i].addr == 0)
            return &tab[i];
}

struct src_stat *stats_source(struct target_stats *s, uint32_t addr)
{
    if (s->src_used * 2 >= s->src_cap) { /* keep load under 1/2 */
        size_t ncap = s->src_cap ? s->src_cap * 2 : 256;
        struct src_stat *n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < s->src_cap; i++)
            if (s->src[i].addr)
                *lookup(n, ncap, s->src[i].addr) = s->src[i];
        free(s->src);
        s->src = n;
        s->src_cap = ncap;
    }
    struct src_stat *e = lookup(s->src, s->src_cap, addr);
    if (e->addr == 0) {
        e->addr = addr;
        e->last_us = -1;
        s->src_used++;
    }
    return e;
}

void stats_item_served(struct target_stats *s, unsigned n)
{
    uint8_t bit = (uint8_t)(1u << (n & 7));
    if (!(s->items_bitmap[n >> 3] & bit)) {
        s->items_bitmap[n >> 3] |= bit;
        s->items_distinct++;
    }
}

static json_t *target_json(const struct target *t)
{
    const struct target_stats *s = &t->st;
    json_t *o = json_object();
    json_t *status = json_object();
    json_t *src = json_object();
    json_object_set_new(o, "target", json_string(t->name));
    json_object_set_new(o, "requests", json_integer((json_int_t)s->requests));
    json_object_set_new(o, "violations", json_integer((json_int_t)s->violations));
    json_object_set_new(o, "items_distinct", json_integer((json_int_t)s->items_distinct));
    json_object_set_new(o, "interval_ms", json_integer(t->interval_ms));
    json_object_set_new(o, "error_rate", json_real(t->error_rate));
    for (int code = 0; code < 600; code++) {
        if (!s->status[code])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", code);
        json_object_set_new(status, k, json_integer((json_int_t)s->status[code]));
    }
    for (size_t i = 0; i < s->src_cap; i++) {
        const struct src_stat *e = &s->src[i];
        if (!e->addr)
            continue;
        char ip[INET_ADDRSTRLEN];
        struct in_addr a = {.s_addr = e->addr};
        inet_ntop(AF_INET, &a, ip, sizeof ip);
        json_t *x = json_object();
        json_object_set_new(x, "requests", json_integer((json_int_t)e->requests));
        json_object_set_new(x, "ok", json_integer((json_int_t)e->ok));
        json_object_set_new(x, "violations", json_integer((json_int_t)e->violations));
        json_object_set_new(src, ip, x);
    }
    json_object_set_new(o, "status", status);
    json_object_set_new(o, "sources", src);
    return o;
}

char *stats_json(const struct target *t)
{
    json_t *o = target_json(t);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2); /* json_dumps uses malloc by default */
    if (!r) {
        free(s);
        return NULL;
    }
    r[n] = '\n';
    r[n + 1] = '\0';
    return r;
}

char *stats_summary_json(const struct farm *f)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    uint64_t req = 0, viol = 0;
    for (unsigned i = 0; i < f->ntargets; i++) {
        json_array_append_new(arr, target_json(&f->targets[i]));
        req += f->targets[i].st.requests;
        viol += f->targets[i].st.violations;
    }
    json_object_set_new(o, "requests", json_integer((json_int_t)req));
    json_object_set_new(o, "violations", json_integer((json_int_t)viol));
    json_object_set_new(o, "targets", arr);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}
