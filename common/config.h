/*
 * scatter.ini: one table of keys (KEYS in common/config.c) drives parsing, validation, defaults,
 * the shipped scatter.ini's comments and --print-config. No key exists in two places.
 *
 * Sections: [scatter] (global keys and defaults of per-host keys), [rate_limit] (the default
 * interval and margin), [host:NAME] (overrides of per-host keys for host NAME, "host[:port]").
 */
#ifndef SCATTER_COMMON_CONFIG_H
#define SCATTER_COMMON_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CFG_STR_MAX 1024   /* iniparser's own line limit */
#define CFG_HOSTS_MAX 256  /* [host:NAME] sections */
#define CFG_NAME_MAX 256

/* Settings a [host:NAME] section may override. */
typedef struct {
    char name[CFG_NAME_MAX];          /* "" for the defaults */
    uint32_t interval_ms;
    uint32_t race_width, race_width_min, race_width_max;
    uint32_t adaptive_race;           /* bool */
    uint32_t race_hedged;             /* race_mode: 0 all, 1 hedged */
    uint32_t hedge_quantile;          /* percent */
    uint32_t hedge_min_ms;
    uint32_t max_attempts;            /* 0 = unlimited */
    uint32_t task_timeout_ms;         /* 0 = none */
    uint32_t connect_timeout_ms, request_timeout_ms;
    char success_status[CFG_STR_MAX];      /* status spec: "2xx,304" */
    char blocked_status[CFG_STR_MAX];
    char target_error_status[CFG_STR_MAX];
    char blocked_body[CFG_STR_MAX];        /* substrings separated by '|' */
    uint32_t min_body_size;
    uint32_t strict_status;           /* bool: a status in no list is ProxyBlocked, not the result */
    uint32_t cooldown_consecutive_fails, cooldown_base_ms, cooldown_max_ms;
    uint32_t eviction_min_samples;
    uint32_t circuit_breaker_threshold, circuit_probe_interval_ms;
    char sources[CFG_STR_MAX];        /* per-host pool: names of sources; "" = all proxies */
    char ca_file[CFG_STR_MAX];        /* PEM bundle trusted for https targets; "" = the system's */
    uint32_t tls_verify;              /* bool: verify https targets' certificates and names */
} cfg_host;

typedef struct {
    char path[CFG_STR_MAX];           /* the file it came from */
    char runtime_dir[CFG_STR_MAX];    /* after cfg_load: the directory relative socket_path /
                                       * pid_file were placed in (common/paths.h); "" if none */
    /* [scatter] */
    char sources[CFG_STR_MAX];
    uint32_t source_refresh_interval_ms, source_timeout_ms;
    uint32_t allow_private_proxies;
    uint32_t workers;                 /* 0 = number of CPUs */
    char socket_path[CFG_STR_MAX];
    uint32_t socket_mode;
    char pid_file[CFG_STR_MAX];
    uint32_t log_level;               /* log_level */
    char log_file[CFG_STR_MAX];
    uint32_t log_format;              /* log_format: text or json */
    char user[CFG_NAME_MAX];          /* drop privileges to this user after start ("" = do not) */
    char group[CFG_NAME_MAX];         /* ... and this group ("" = the user's primary group) */
    uint32_t max_proxies, max_hosts;
    uint32_t shard[2];                /* shard = K/N: [0] = K, [1] = N (docs/SCALING.md) */
    char redis_url[CFG_STR_MAX];      /* the Redis task stream; "" = off (worker/redis.c) */
    char redis_stream[CFG_NAME_MAX];
    uint32_t redis_claim_idle_ms, redis_batch, redis_reply_maxlen, redis_max_deliveries, redis_forget_consumers_ms;
    uint32_t pool_capacity, max_inflight, max_clients, max_idle_connections;
    uint32_t max_frame, max_request_body, max_response_body, max_url;
    char http_listen[CFG_STR_MAX];    /* HTTP proxy front end "ip:port"; "" = off */
    char http_auth[CFG_STR_MAX];      /* "user:password" for Proxy-Authorization Basic; "" = none */
    uint32_t http_max_header, http_header_timeout_ms, http_scatter_headers;
    uint32_t max_sessions, session_ttl_ms; /* sticky sessions (shm/session.h) */
    char connect_ports[CFG_STR_MAX];  /* ports CONNECT may reach, comma-separated */
    uint32_t tunnel_idle_timeout_ms;
    char metrics_listen[CFG_STR_MAX]; /* the master's /metrics, /health, /proxy-metrics "ip:port"; "" = off */
    uint32_t health_degraded_rate;    /* thousandths: /health is degraded below this success rate */
    uint32_t worker_buffer_budget;  /* bytes a worker buffers in all: client input/output, response bodies */
    uint32_t client_timeout_ms;     /* a client holding a partial message this long is closed */
    uint32_t health_window, cooldown_jitter_pct;
    uint32_t score_affinity, score_global, score_recency, score_jitter; /* thousandths */
    char state_file[CFG_STR_MAX];
    uint32_t state_save_interval_ms, metrics_log_interval_ms;
    uint32_t remote_dns;
    uint32_t shutdown_grace_ms;
    char user_agent[CFG_STR_MAX];
    /* [rate_limit] */
    uint32_t rate_limit_margin_ms;
    uint32_t rate_limit_anchor_sent;  /* 0: anchor = response (default), 1: anchor = sent */
    /* defaults of per-host keys, then the [host:NAME] sections */
    cfg_host defaults;
    uint32_t n_hosts;
    cfg_host hosts[CFG_HOSTS_MAX];
} scatter_config;

/* Fills every key with its default. */
/* A scatter_config is 1.6 MB. These map and unmap it whole: with malloc, glibc serves such
 * blocks from the heap once one has been freed (its mmap threshold rises to the freed size),
 * and every reload left another 1.4 MB of heap the process could not give back. NULL on
 * failure; cfg_free(NULL) does nothing. */
scatter_config *cfg_alloc(void);
void cfg_free(scatter_config *c);

void cfg_defaults(scatter_config *c);
/* Loads and validates a file. 0, or -1 with a message in err naming the file, line, key and
 * value ("scatter.ini:12: [scatter] race_width = 'abc': not an integer"). A file without a
 * [scatter] section or without any key is an error (an empty or binary file would otherwise
 * mean "every default"). Ends with cfg_resolve_paths(c, geteuid(), $XDG_RUNTIME_DIR). */
int cfg_load(scatter_config *c, const char *path, char *err, size_t errcap);
/* cfg_load, resolving relative paths for `uid` and `xdg` rather than this process's own: a
 * master that dropped root (`user =`) reloads with the paths it started with. */
int cfg_load_as(scatter_config *c, const char *path, unsigned uid, const char *xdg, char *err, size_t errcap);
/* Makes a relative socket_path / pid_file absolute inside the runtime directory of `uid`
 * (common/paths.h) and records that directory in c->runtime_dir. 0, or -1 with err naming
 * the file and key (XDG_RUNTIME_DIR unset for a non-root uid). */
int cfg_resolve_paths(scatter_config *c, unsigned uid, const char *xdg, char *err, size_t errcap);
/* The effective settings for a host name: its section if any, else the defaults. */
const cfg_host *cfg_host_for(const scatter_config *c, const char *host);
/* The interval a (proxy, host) pair is held for after a use: the host's interval plus the
 * margin. The one formula for the master's shm_host.interval_ms, a worker's release and its
 * start gate. */
static inline uint32_t cfg_interval_with_margin(const scatter_config *c, const cfg_host *h)
{
    return h->interval_ms + c->rate_limit_margin_ms;
}
/* Writes an annotated scatter.ini of every key with its default and help text (or, with
 * `effective`, the values in c). */
void cfg_print(const scatter_config *c, FILE *f, int effective);
/* The one rule of a reload: `out` is `fresh` with every key that is not reloadable (the key
 * table's flag) kept at its running value from `run`. Writes the names of the keys whose
 * change was kept back to `fixed` (comma-separated) and returns their number. */
int cfg_reload_merge(const scatter_config *run, const scatter_config *fresh, scatter_config *out, char *fixed,
                     size_t cap);
/* The key table, for listings and tests: count, name and reloadable flag of key i. */
int cfg_key_count(void);
const char *cfg_key_name(int i);
int cfg_key_reloadable(int i);

/* Value parsers shared with the CLI (exposed for tests). 0 or -1. */
int cfg_parse_duration_ms(const char *s, uint32_t default_unit_ms, uint32_t *out);
int cfg_parse_size(const char *s, uint32_t *out);
int cfg_parse_bool(const char *s, uint32_t *out);
/* Strips surrounding whitespace in place; returns the first non-space character. */
char *cfg_trim(char *s);

#endif
