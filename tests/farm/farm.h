/*
 * farm.h — shared declarations of the loopback proxy farm (scatter-farm).
 *
 * Why one header: the farm is a single small program whose parts (options, behaviour mix,
 * SOCKS5 server, HTTP target, statistics) all hang off one context struct, `struct farm`.
 * Every piece of mutable state lives in that struct or in objects it owns; there are no
 * other globals. Each .c file documents its own idea at the top.
 *
 * Invariants:
 *  - every address the farm listens on, binds to or connects to is in 127.0.0.0/8;
 *  - proxy i makes its outgoing connections from farm_proxy_source(i), a unique 127.1.x.y;
 *  - a connection owns at most a fixed amount of buffer memory (FARM_RELAY_BUF per direction
 *    for SOCKS relays, FARM_HTTP_HEAD_MAX for HTTP request heads, one response at a time).
 */
#ifndef SCATTER_FARM_H
#define SCATTER_FARM_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FARM_RELAY_BUF (16 * 1024)   /* per direction, per SOCKS connection */
#define FARM_HTTP_HEAD_MAX (8 * 1024) /* largest HTTP request head a target accepts */
#define FARM_MAX_TARGETS 16         /* plain and TLS targets together */
#define FARM_MAX_PROXIES 20000
#define FARM_MAX_SOURCES 64000 /* 127.1.0.1 .. 127.1.255.250: farm_proxy_source */

enum behaviour {
    BEH_GOOD = 0,
    BEH_SLOW,
    BEH_FLAKY,
    BEH_REFUSE,
    BEH_BLACKHOLE,
    BEH_BANNED,
    BEH_CAPTCHA,
    BEH_CUT,
    BEH_COUNT
};

const char *behaviour_name(enum behaviour b);
int behaviour_from_name(const char *name, size_t len); /* -1 when unknown */

/* Deterministic PRNG (xorshift64*): same seed, same farm. */
struct rng {
    uint64_t s;
};
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double rng_unit(struct rng *r);                /* uniform in [0, 1) */

/* Parses "good=30,slow=10,..." into counts per behaviour for nproxies proxies.
 * as_counts: values are counts (sum must equal nproxies, or set it when *nproxies == 0).
 * Otherwise percentages summing to 100, rounded by largest remainder.
 * Returns 0, or -1 with a message in err. */
int mix_parse(const char *spec, bool as_counts, unsigned *nproxies, unsigned counts[BEH_COUNT],
              char *err, size_t errlen);
/* Fills out[0..n) with the behaviours of counts[], shuffled from rng. */
void mix_assign(const unsigned counts[BEH_COUNT], enum behaviour *out, unsigned n, struct rng *r);

struct farm;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX; only tls.c and target.c include OpenSSL */

/* One SOCKS5 listener. */
struct proxy {
    struct farm *farm;
    unsigned index;
    enum behaviour beh;
    uint16_t port;
    struct in_addr source; /* outgoing source address */
    int fd;                /* -1 for refuse */
    ev_io accept_w;
    ev_timer retry_w; /* re-enables accept_w after EMFILE */
};

/* Per-source-address counters of one target (open-addressing hash table entry). */
struct src_stat {
    uint32_t addr; /* network order; 0 = empty slot (0.0.0.0 never connects over loopback) */
    int64_t last_us; /* CLOCK_MONOTONIC µs of the previous counted request, -1 if none */
    uint64_t requests, ok, violations;
};

struct target_stats {
    uint64_t requests;
    uint64_t violations;
    uint64_t status[600];
    uint64_t items_distinct;
    uint8_t *items_bitmap; /* max_items bits */
    struct src_stat *src;  /* hash table */
    size_t src_cap, src_used;
};

/* One HTTP target listener, plain or TLS (the same site either way). */
struct target {
    struct farm *farm;
    unsigned index;
    struct sockaddr_in addr;
    bool tls; /* https: connections go through f->tls_ctx */
    char name[32]; /* "IP:PORT" */
    int fd;
    ev_io accept_w;
    ev_timer retry_w;
    double error_rate;
    unsigned interval_ms;
    struct target_stats st;
};

/* Intrusive list of live connections so that shutdown can free every one of them. */
struct conn_link {
    struct conn_link *prev, *next;
    void (*destroy)(struct conn_link *l);
};

struct farm_opts {
    unsigned nproxies;
    bool nproxies_set;
    struct in_addr proxy_ip;
    unsigned base_port;
    unsigned source_base;   /* proxy i connects from farm_proxy_source(source_base + i) */
    bool no_targets;        /* proxies only: the bed's targets run in another process */
    const char *mix;
    bool mix_counts;
    uint64_t seed;
    const char *auth_user, *auth_pass; /* NULL when no auth */
    char *auth_buf;
    unsigned good_latency_ms;
    unsigned slow_min_ms, slow_max_ms;
    double flaky_drop;
    unsigned blackhole_ms;
    unsigned ntargets;
    struct sockaddr_in targets[FARM_MAX_TARGETS];
    bool target_tls[FARM_MAX_TARGETS]; /* given by --tls-target */
    unsigned ntls;
    const char *tls_cert, *tls_key; /* PEM files; NULL: generate a self-signed certificate */
    unsigned interval_ms;
    double error_rate;
    unsigned max_items;
    unsigned urls;
    const char *out_dir;
    bool quiet;
};

struct farm {
    struct ev_loop *loop;
    struct farm_opts o;
    struct rng rng; /* run-time randomness (flaky drops, slow delays, error rate) */
    struct proxy *proxies;
    unsigned nproxies;
    struct target targets[FARM_MAX_TARGETS];
    unsigned ntargets;
    struct conn_link conns; /* list head */
    unsigned long nconns;
    FILE *reqlog;
    char *reqlog_buf;
    struct ssl_ctx_st *tls_ctx; /* NULL without TLS targets */
    char *tls_ca_pem;           /* the generated certificate (PEM) for DIR/tls-ca.pem, or NULL */
    ev_signal sigterm_w, sigint_w;
};

/* net.c */
bool farm_is_loopback(struct in_addr a);
int farm_parse_ipv4(const char *s, struct in_addr *out);
int farm_parse_hostport(const char *s, struct sockaddr_in *out); /* "IP:PORT" */
int farm_set_nonblock(int fd);
int farm_listen(const struct sockaddr_in *addr, char *err, size_t errlen);
struct in_addr farm_proxy_source(unsigned index);
int64_t farm_mono_us(void);
void farm_conn_add(struct farm *f, struct conn_link *l);
void farm_conn_del(struct farm *f, struct conn_link *l);

/* socks.c */
int socks_start(struct farm *f, struct proxy *p, char *err, size_t errlen);
void socks_stop(struct farm *f, struct proxy *p);

/* target.c */
int target_start(struct farm *f, struct target *t, char *err, size_t errlen);
void target_stop(struct farm *f, struct target *t);
/* Which behaviour owns this source address (banned/captcha checks); BEH_COUNT if none. */
enum behaviour farm_behaviour_of_source(const struct farm *f, struct in_addr src);

/* tls.c — the TLS targets' server context. */
/* Builds f->tls_ctx from --tls-cert/--tls-key, or from a certificate generated now for the TLS
 * target addresses (kept in f->tls_ca_pem). Returns 0, -EINVAL when a given file cannot be
 * used (an option error), -ENOMEM/-EIO otherwise; err names what failed. */
int tls_setup(struct farm *f, char *err, size_t errlen);
void tls_free(struct farm *f);

/* stats.c */
int stats_init(struct target_stats *s, unsigned max_items);
void stats_free(struct target_stats *s);
void stats_reset(struct target_stats *s, unsigned max_items);
struct src_stat *stats_source(struct target_stats *s, uint32_t addr); /* NULL on OOM */
void stats_item_served(struct target_stats *s, unsigned n);
/* JSON text of one target's stats; caller frees. NULL on OOM. */
char *stats_json(const struct target *t);
/* JSON summary of every target, as printed on exit; caller frees. */
char *stats_summary_json(const struct farm *f);

#endif
