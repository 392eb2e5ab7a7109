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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXIES_PAGE_MAX 1000u
#define PROXIES_PAGE_CELLS 20000u


static void op_hello(conn *c, const proto_request *r)
{
    worker_ctx *w = c->w;
    conn_reply rp;
    conn_reply_begin(&rp, r->id, "hello", 1);
    proto_map_u64(&rp.m, "protocol", PROTO_VERSION);
    proto_map_str(&rp.m, "version", SCATTER_VERSION);
    uint32_t n = atomic_load(&w->tbl->hdr->n_workers);
    proto_map_u64(&rp.m, "workers", n);
    proto_map_u64(&rp.m, "worker", w->index);
    msgpack_packer *pk = proto_map_key(&rp.m, "worker_sockets");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 1; i <= n; i++) {
        char p[CFG_STR_MAX + 16];
        snprintf(p, sizeof p, "%s.%u", w->cfg->socket_path, i);
        proto_pack_cstr(pk, p);
    }
    proto_map_u64(&rp.m, "max_frame", w->cfg->max_frame);
    proto_map_u64(&rp.m, "max_request_body", w->cfg->max_request_body);
    proto_map_u64(&rp.m, "max_response_body", w->cfg->max_response_body);
    proto_map_u64(&rp.m, "pool_capacity", w->cfg->pool_capacity);
    proto_map_u64(&rp.m, "max_race", SC_RACE_MAX);
    conn_reply_end(c, &rp);
}

static void op_status(conn *c, const proto_request *r)
{
    worker_ctx *w = c->w;
    conn_reply rp;
    conn_reply_begin(&rp, r->id, "status", 1);
    proto_map sub;
    proto_map_sub(&rp.m, "status", &sub);
    status_pack(&sub, w->tbl, shm_now_ms(), w->index);
    proto_map_end(&sub);
    /* this worker's own buffers: what worker_buffer_budget bounds */
    proto_map_sub(&rp.m, "worker_memory", &sub);
    proto_map_u64(&sub, "buffered", w->buffered);
    proto_map_u64(&sub, "budget", w->cfg->worker_buffer_budget);
    proto_map_u64(&sub, "clients", w->n_conns);
    proto_map_end(&sub);
    conn_reply_end(c, &rp);
}

static void op_hosts(conn *c, const proto_request *r)
{
    conn_reply rp;
    conn_reply_begin(&rp, r->id, "hosts", 1);
    status_pack_hosts(&rp.m, c->w->tbl, shm_now_ms());
    conn_reply_end(c, &rp);
}

static void pack_rate(proto_map *m, const char *k, int permille)
{
    if (permille < 0)
        proto_map_nil(m, k);
    else
        proto_map_f64(m, k, permille / 1000.0);
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
            conn_send_error(c, r->id, "proxies", ERR_BAD_REQUEST, "unknown host '%s'", name);
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
    conn_reply rp;
    conn_reply_begin(&rp, r->id, "proxies", 1);
    proto_map_u64(&rp.m, "total", np);
    proto_map_u64(&rp.m, "next_offset", from + n);
    msgpack_pack_array(proto_map_key(&rp.m, "proxies"), n);
    static const char *const ST[] = {"unknown", "active", "dead"};
    for (uint32_t p = from; p < from + n; p++) {
        const shm_proxy *px = &t->proxies[p];
        char url[600];
        paddr_format_redacted(&px->addr, url, sizeof url);
        proto_map pm;
        proto_map_nested(&pm, &rp.m);
        proto_map_str(&pm, "url", url);
        uint32_t st = atomic_load(&px->state);
        proto_map_str(&pm, "state", ST[st < 3 ? st : 0]);
        proto_map_u64(&pm, "success", atomic_load(&px->success));
        proto_map_u64(&pm, "fail", atomic_load(&px->fail));
        pack_rate(&pm, "rate", health_proxy_rate_permille(px));
        uint32_t hn = 0;
        for (uint32_t i = 0; i < nh; i++)
            hn += (only == SHM_NONE || i == only) && t->hosts[i].name[0]; /* "" = reclaimed slot */
        msgpack_pack_array(proto_map_key(&pm, "hosts"), hn);
        for (uint32_t h = 0; h < nh && hn; h++) {
            if ((only != SHM_NONE && h != only) || !t->hosts[h].name[0])
                continue;
            hn--;
            const shm_cell *cl = shm_cell_at(t, p, h);
            proto_map cm;
            proto_map_nested(&cm, &pm);
            proto_map_str(&cm, "host", t->hosts[h].name);
            proto_map_u64(&cm, "success", atomic_load(&cl->success));
            proto_map_u64(&cm, "fail", atomic_load(&cl->fail));
            pack_rate(&cm, "window_rate", health_cell_rate_permille(cl));
            proto_map_u64(&cm, "latency_ms", atomic_load(&cl->ewma_latency_ms));
            proto_map_u64(&cm, "consec_fails", atomic_load(&cl->consec_fails));
            uint64_t until = atomic_load(&cl->cooldown_until_ms);
            proto_map_u64(&cm, "cooldown_ms", until > now ? until - now : 0);
            proto_map_bool(&cm, "dead", atomic_load(&cl->dead) != 0);
            proto_map_end(&cm);
        }
        proto_map_end(&pm);
    }
    conn_reply_end(c, &rp);
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
    scatter_config *master = cfg_alloc();
    uint32_t seq = 0;
    size_t wl = 0, ml = 0;
    char *wt = config_text(w->cfg, &wl), *mt = NULL;
    int rc = master ? cfg_snapshot_read(w->cfgsnap, master, &seq) : -ENOMEM;
    if (rc == 0)
        mt = config_text(master, &ml);
    else if (rc == -ENOENT) /* no reload yet: the master runs the config we were forked with */
        mt = config_text(w->cfg, &ml);
    cfg_free(master);
    if (!wt || !mt) {
        conn_send_error(c, r->id, "config", ERR_INTERNAL, "out of memory printing the configuration");
    } else {
        conn_reply rp;
        conn_reply_begin(&rp, r->id, "config", 1);
        proto_map_strn(&rp.m, "worker", wt, wl);
        proto_map_u64(&rp.m, "worker_publication", w->cfg_publication);
        proto_map_strn(&rp.m, "master", mt, ml);
        proto_map_u64(&rp.m, "master_publication", seq);
        conn_reply_end(c, &rp);
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
    case OP_UNKNOWN: conn_send_error(c, r->id, "error", ERR_BAD_REQUEST, "unknown op"); break;
    }
}
