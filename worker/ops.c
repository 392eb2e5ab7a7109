/*
 * Request dispatch: one function per op of the protocol (docs/PROTOCOL.md). Each reply echoes
 * the request's id and op.
 */
#include "shm/metrics.h"
#include "worker/status.h"
#include "worker/conn.h"

#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include "common/config_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXIES_PAGE_MAX 1000u
#define PROXIES_PAGE_CELLS 20000u


static void op_hello(conn *c, const proto_request *r)
{
    worker_ctx *w = c->w;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    conn_reply_begin(&sb, &pk, 10, r->id, "hello", 1);
    proto_kv_u64(&pk, "protocol", PROTO_VERSION);
    proto_kv_str(&pk, "version", SCATTER_VERSION);
    uint32_t n = atomic_load(&w->tbl->hdr->n_workers);
    proto_kv_u64(&pk, "workers", n);
    proto_kv_u64(&pk, "worker", w->index);
    proto_pack_cstr(&pk, "worker_sockets");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 1; i <= n; i++) {
        char p[CFG_STR_MAX + 16];
        snprintf(p, sizeof p, "%s.%u", w->cfg->socket_path, i);
        proto_pack_cstr(&pk, p);
    }
    proto_kv_u64(&pk, "max_frame", w->cfg->max_frame);
    proto_kv_u64(&pk, "max_request_body", w->cfg->max_request_body);
    proto_kv_u64(&pk, "max_response_body", w->cfg->max_response_body);
    proto_kv_u64(&pk, "pool_capacity", w->cfg->pool_capacity);
    proto_kv_u64(&pk, "max_race", SC_RACE_MAX);
    conn_reply_end(c, &sb);
}

static void op_status(conn *c, const proto_request *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    worker_ctx *w = c->w;
    conn_reply_begin(&sb, &pk, 2, r->id, "status", 1);
    proto_pack_cstr(&pk, "status");
    status_pack(&pk, w->tbl, shm_now_ms(), w->index);
    /* this worker's own buffers: what worker_buffer_budget bounds */
    proto_pack_cstr(&pk, "worker_memory");
    msgpack_pack_map(&pk, 3);
    proto_kv_u64(&pk, "buffered", w->buffered);
    proto_kv_u64(&pk, "budget", w->cfg->worker_buffer_budget);
    proto_kv_u64(&pk, "clients", w->n_conns);
    conn_reply_end(c, &sb);
}

static void op_hosts(conn *c, const proto_request *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    conn_reply_begin(&sb, &pk, 1, r->id, "hosts", 1);
    proto_pack_cstr(&pk, "hosts");
    status_pack_hosts(&pk, c->w->tbl, shm_now_ms());
    conn_reply_end(c, &sb);
}

static void pack_rate(msgpack_packer *pk, const char *k, int permille)
{
    proto_pack_cstr(pk, k);
    if (permille < 0)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_double(pk, permille / 1000.0);
}

static void op_proxies(conn *c, const proto_request *r)
{
    shm_table *t = c->w->tbl;
    uint64_t now = shm_now_ms();
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    uint32_t only = SHM_NONE;
    if (r->host.n) {
        char name[SHM_HOST_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(r->host.n < SHM_HOST_NAME_MAX - 1 ? r->host.n : SHM_HOST_NAME_MAX - 1),
                 r->host.p);
        only = reg_host_find(t, name);
        if (only == SHM_NONE) {
            conn_send_error(c, r->id, "proxies", SC_BAD_REQUEST, "unknown host '%s'", name);
            return;
        }
    }
    /* One page is bounded whatever the client asks: at most PROXIES_PAGE_MAX proxies and
     * PROXIES_PAGE_CELLS (proxy, host) entries, so a 27-byte request cannot make a reply of
     * hundreds of MB that blocks the loop; next_offset says where the next page starts. */
    uint32_t from = r->offset < np ? r->offset : np;
    uint32_t per = only == SHM_NONE ? (nh ? nh : 1) : 1;
    uint32_t page = PROXIES_PAGE_CELLS / per;
    if (page > PROXIES_PAGE_MAX)
        page = PROXIES_PAGE_MAX;
    if (page == 0)
        page = 1;
    uint32_t want = r->limit < page ? r->limit : page;
    uint32_t n = np - from < want ? np - from : want;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    conn_reply_begin(&sb, &pk, 3, r->id, "proxies", 1);
    proto_kv_u64(&pk, "total", np);
    proto_kv_u64(&pk, "next_offset", from + n);
    proto_pack_cstr(&pk, "proxies");
    msgpack_pack_array(&pk, n);
    static const char *const ST[] = {"unknown", "active", "dead"};
    for (uint32_t p = from; p < from + n; p++) {
        const shm_proxy *px = &t->proxies[p];
        char url[600];
        paddr_format_redacted(&px->addr, url, sizeof url);
        msgpack_pack_map(&pk, 6);
        proto_kv_str(&pk, "url", url);
        uint32_t st = atomic_load(&px->state);
        proto_kv_str(&pk, "state", ST[st < 3 ? st : 0]);
        proto_kv_u64(&pk, "success", atomic_load(&px->success));
        proto_kv_u64(&pk, "fail", atomic_load(&px->fail));
        pack_rate(&pk, "rate", health_proxy_rate_permille(px));
        proto_pack_cstr(&pk, "hosts");
        uint32_t hn = 0;
        for (uint32_t i = 0; i < nh; i++)
            hn += (only == SHM_NONE || i == only) && t->hosts[i].name[0]; /* "" = reclaimed slot */
        msgpack_pack_array(&pk, hn);
        for (uint32_t h = 0; h < nh && hn; h++) {
            if ((only != SHM_NONE && h != only) || !t->hosts[h].name[0])
                continue;
            hn--;
            const shm_cell *cl = shm_cell_at(t, p, h);
            msgpack_pack_map(&pk, 8);
            proto_kv_str(&pk, "host", t->hosts[h].name);
            proto_kv_u64(&pk, "success", atomic_load(&cl->success));
            proto_kv_u64(&pk, "fail", atomic_load(&cl->fail));
            pack_rate(&pk, "window_rate", health_cell_rate_permille(cl));
            proto_kv_u64(&pk, "latency_ms", atomic_load(&cl->ewma_latency_ms));
            proto_kv_u64(&pk, "consec_fails", atomic_load(&cl->consec_fails));
            uint64_t until = atomic_load(&cl->cooldown_until_ms);
            proto_kv_u64(&pk, "cooldown_ms", until > now ? until - now : 0);
            proto_kv_bool(&pk, "dead", atomic_load(&cl->dead) != 0);
        }
    }
    conn_reply_end(c, &sb);
}

/* The configuration as cfg_print writes it (an ini text that loads back). */
static char *config_text(const scatter_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    cfg_print(cfg, f, 1);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void op_config(conn *c, const proto_request *r)
{
    worker_ctx *w = c->w;
    scatter_config *master = malloc(sizeof *master);
    uint32_t seq = 0;
    size_t wl = 0, ml = 0;
    char *wt = config_text(w->cfg, &wl), *mt = NULL;
    if (master && cfg_snapshot_read(w->cfgsnap, master, &seq) == 0)
        mt = config_text(master, &ml);
    free(master);
    if (!wt || !mt) {
        conn_send_error(c, r->id, "config", SC_INTERNAL, "out of memory printing the configuration");
    } else {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        conn_reply_begin(&sb, &pk, 4, r->id, "config", 1);
        proto_pack_cstr(&pk, "worker");
        proto_pack_strn(&pk, wt, wl);
        proto_kv_u64(&pk, "worker_publication", w->cfg_publication);
        proto_pack_cstr(&pk, "master");
        proto_pack_strn(&pk, mt, ml);
        proto_kv_u64(&pk, "master_publication", seq);
        conn_reply_end(c, &sb);
    }
    free(wt);
    free(mt);
}

void ops_handle(conn *c, const proto_request *r)
{
    switch (r->op) {
    case OP_HELLO: op_hello(c, r); break;
    case OP_SUBMIT: conn_submit(c, r); break;
    case OP_CANCEL: conn_cancel(c, r->id); break;
    case OP_STATUS: op_status(c, r); break;
    case OP_PROXIES: op_proxies(c, r); break;
    case OP_HOSTS: op_hosts(c, r); break;
    case OP_CONFIG: op_config(c, r); break;
    case OP_UNKNOWN: conn_send_error(c, r->id, "error", SC_BAD_REQUEST, "unknown op"); break;
    }
}
