/*
 * Config loading. The key table below is the single source of truth for every key: its
 * section, type, default, bounds, whether [host:NAME] may override it, whether SIGHUP can
 * change it at run time, and its help text (which becomes the comment in scatter.ini).
 *
 * iniparser gives values but neither line numbers nor a list of what it could not use, so a
 * small pre-scan of the file maps (section, key) to its line and catches what iniparser would
 * silently mangle (unquoted ';' or '#' inside a value, lines over its 1024-character limit).
 */
#include "common/config.h"
#include "common/listen_addr.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/redis_url.h"
#include "common/status_list.h"

#include <ctype.h>
#include <errno.h>
#include <iniparser.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { T_UINT, T_DUR_S, T_DUR_MS, T_SIZE, T_BOOL, T_STR, T_MODE, T_LEVEL, T_WEIGHT, T_STATUS, T_ANCHOR, T_RACEMODE, T_LOGFMT, T_SHARD } ktype;
typedef enum { SEC_SCATTER, SEC_RATE_LIMIT } ksec;

typedef struct {
    const char *name;
    ksec sec;
    ktype type;
    int per_host;      /* offset is into cfg_host, and [host:NAME] may override it */
    size_t off;
    size_t size;       /* strings: buffer size */
    const char *def;
    uint32_t min, max; /* numbers: bounds in the stored unit (ms, bytes, thousandths) */
    int reloadable;
    const char *help;
} cfg_key;

#define G(f) 0, offsetof(scatter_config, f), sizeof(((scatter_config *)0)->f)
#define H(f) 1, offsetof(cfg_host, f), sizeof(((cfg_host *)0)->f)
#define DAY_MS 86400000u

static const cfg_key KEYS[] = {
    /* ---- proxies and sources ---- */
    {"sources", SEC_SCATTER, T_STR, G(sources), "", 0, 0, 1,
     "Proxy sources, comma-separated: local files or http(s) URLs, one proxy per line\n"
     "(ip:port, socks5://, socks5h://, socks4://, http://, optional user:pass@, [v6]:port).\n"
     "A source may be named NAME=LOCATION so [host:NAME] sections can pick it. Quote the value."},
    {"source_refresh_interval", SEC_SCATTER, T_DUR_S, G(source_refresh_interval_ms), "600", 1000, DAY_MS, 1,
     "How often sources are fetched again (new proxies merged in, dead ones listed again revived)."},
    {"source_timeout", SEC_SCATTER, T_DUR_S, G(source_timeout_ms), "20", 100, 600000, 1,
     "Timeout of one source fetch over http(s). Each source is fetched in a child process\n"
     "(the daemon never waits for one); resolving the names in a list gets as long again, and\n"
     "a fetch still running after twice this plus 5 s is killed (its source keeps its proxies)."},
    {"allow_private_proxies", SEC_SCATTER, T_BOOL, G(allow_private_proxies), "false", 0, 1, 1,
     "Accept proxies at loopback/private/link-local addresses. Off by default so a hostile\n"
     "list cannot aim the daemon at local services; tests against the local farm turn it on.\n"
     "Names in a list are resolved when it is fetched: a name with any such address is refused,\n"
     "and the table keeps the address that was checked, never the name."},
    {"shard", SEC_SCATTER, T_SHARD, G(shard), "0/1", 0, 0, 0,
     "K/N: this instance is shard K of N (0 <= K < N <= 65536) and keeps only the proxies\n"
     "whose FNV-1a 64 hash of the canonical proxy URL (scheme, user:password@, checked IP,\n"
     "port) mod N is K. Every instance reads the same sources; each proxy is used by exactly\n"
     "one instance, so its rate limits need no traffic between boxes. 0/1 = every proxy.\n"
     "Fixed at start: a changed N takes a restart, which starts behind the start gate.\n"
     "docs/SCALING.md."},
    {"max_proxies", SEC_SCATTER, T_UINT, G(max_proxies), "20000", 1, 1000000, 0,
     "Capacity of the shared table in proxies (fixed at start)."},
    {"max_hosts", SEC_SCATTER, T_UINT, G(max_hosts), "64", 1, 4096, 0,
     "Capacity of the shared table in target hosts (fixed at start)."},
    /* ---- processes and socket ---- */
    {"workers", SEC_SCATTER, T_UINT, G(workers), "0", 0, SC_MAX_WORKERS, 0,
     "Worker processes; 0 = one per CPU."},
    {"socket_path", SEC_SCATTER, T_STR, G(socket_path), PATHS_SOCKET_NAME, 0, 0, 0,
     "Unix socket the workers accept clients on (worker W also on <socket_path>.W).\n"
     "A relative path is taken in the runtime directory: " PATHS_ROOT_DIR "/ when run as root,\n"
     "else $XDG_RUNTIME_DIR/" PATHS_SUBDIR "/; scatterd creates it (0750) and refuses one that is a\n"
     "symlink, owned by another user or writable by group or others. Never use a directory\n"
     "other users can write (/tmp): they could squat the socket and answer your clients."},
    {"socket_mode", SEC_SCATTER, T_MODE, G(socket_mode), "0660", 0, 0777, 0,
     "Permissions of the socket file (octal)."},
    {"pid_file", SEC_SCATTER, T_STR, G(pid_file), PATHS_PID_NAME, 0, 0, 0,
     "Where the master writes its pid (created at <pid_file>.tmp with O_EXCL|O_NOFOLLOW, then\n"
     "renamed); empty = none. A relative path is taken in the runtime directory, as socket_path."},
    {"log_level", SEC_SCATTER, T_LEVEL, G(log_level), "info", 0, 3, 1,
     "error, warn, info or debug."},
    {"log_file", SEC_SCATTER, T_STR, G(log_file), "", 0, 0, 0,
     "Append logs to this file (a symlink there is refused); empty = standard error.\n"
     "SIGUSR1 makes the master and every worker reopen it (for logrotate: rename, then signal)."},
    {"log_format", SEC_SCATTER, T_LOGFMT, G(log_format), "text", 0, 1, 0,
     "text: \"TIME LEVEL who: message\" lines. json: one object per line with time, level,\n"
     "process (master, worker or fetch), worker (its index, or null), pid and message.\n"
     "Fixed at start, so a file never mixes the two."},
    {"user", SEC_SCATTER, T_STR, G(user), "", 0, 0, 0,
     "Started as root, the master opens its sockets, pid file, log file and state file, then\n"
     "switches to this user (and its groups) before it fetches sources or starts the workers;\n"
     "empty = keep running as the starting user. An unknown user is an error. Set by a non-root\n"
     "user, it must name that user (scatterd cannot switch, and says so). The runtime directory\n"
     "is made this user's; the state file's directory and, for SIGUSR1, log_file must be\n"
     "writable by it, and the config file readable (SIGHUP reads it again)."},
    {"group", SEC_SCATTER, T_STR, G(group), "", 0, 0, 0,
     "The group to switch to with `user` (supplementary groups are dropped, or set to the\n"
     "user's); empty = the user's primary group. An unknown group is an error."},
    /* ---- the Redis task stream (docs/SCALING.md) ---- */
    {"redis_url", SEC_SCATTER, T_STR, G(redis_url), "", 0, 0, 0,
     "redis://[:password@]host:port[/db]: every worker also takes tasks from a Redis stream,\n"
     "as a consumer of its group `scatter` (docs/PROTOCOL.md, \"Redis transport\"). Empty =\n"
     "off. A host name is resolved once when a worker starts."},
    {"redis_stream", SEC_SCATTER, T_STR, G(redis_stream), "scatter:tasks", 0, 0, 0,
     "The stream tasks are read from (created with the group if missing)."},
    {"redis_claim_idle", SEC_SCATTER, T_DUR_S, G(redis_claim_idle_ms), "30", 1000, DAY_MS, 1,
     "An entry delivered to a consumer that has not acknowledged it for this long (a dead\n"
     "instance or worker) is claimed (XCLAIM) and run by another worker. Workers check\n"
     "every half of it, and keep their own running entries fresh, so a long task is not\n"
     "taken from a live worker."},
    {"redis_max_deliveries", SEC_SCATTER, T_UINT, G(redis_max_deliveries), "5", 0, 1000, 1,
     "An entry delivered this many times and still not acknowledged is not run again: its\n"
     "client is answered dead_letter and the entry is acknowledged. Every instance that\n"
     "took it died, or stopped, before its task ended: a task that crashes workers would\n"
     "otherwise crash one after the other for ever. 0 = no limit."},
    {"redis_forget_consumers", SEC_SCATTER, T_DUR_S, G(redis_forget_consumers_ms), "3600", 0, DAY_MS, 1,
     "The group gains a consumer per worker process that ever got an entry (restarts\n"
     "included). One with nothing pending, idle this long, is deleted (XGROUP DELCONSUMER)\n"
     "by the workers, which look every half of it (at most every 10 minutes); Redis makes a\n"
     "live one again with its next entry. 0 = never."},
    {"redis_batch", SEC_SCATTER, T_UINT, G(redis_batch), "256", 1, 100000, 1,
     "Stream tasks one worker holds at once (read, not yet answered); it also never reads\n"
     "more than the pool has room for."},
    {"redis_reply_maxlen", SEC_SCATTER, T_UINT, G(redis_reply_maxlen), "100000", 100, 100000000, 1,
     "Results are added to their reply stream with MAXLEN ~ this: the bound on what a client\n"
     "that stops reading leaves in Redis."},
    /* ---- limits ---- */
    {"pool_capacity", SEC_SCATTER, T_UINT, G(pool_capacity), "1000", 1, 10000000, 0,
     "Tasks pending at once across all workers; beyond it submit answers pool_full."},
    {"max_inflight", SEC_SCATTER, T_UINT, G(max_inflight), "512", 1, 1000000, 1,
     "Attempts in flight at once across all workers."},
    {"max_clients", SEC_SCATTER, T_UINT, G(max_clients), "256", 1, 100000, 0,
     "Client connections per worker (each socket, shared or own, counts). One more is answered\n"
     "too_many_clients and closed; so a daemon takes workers x max_clients clients in all."},
    {"http_listen", SEC_SCATTER, T_STR, G(http_listen), "127.0.0.1:8118", 0, 0, 0,
     "The HTTP proxy front end: point curl -x, requests, Scrapy... at http://THIS. Every worker\n"
     "accepts on it (SO_REUSEPORT). IP:port or [IPv6]:port; empty = off. An address that is\n"
     "not loopback is refused unless http_auth is set. docs/HTTP.md describes it."},
    {"http_auth", SEC_SCATTER, T_STR, G(http_auth), "", 0, 0, 0,
     "user:password a client must send as Proxy-Authorization: Basic (else 407); empty = none\n"
     "(allowed only with a loopback http_listen)."},
    {"http_max_header", SEC_SCATTER, T_SIZE, G(http_max_header), "64K", 1024, 1u << 20, 0,
     "Longest request line plus headers the HTTP front end reads; longer gets 431."},
    {"http_header_timeout", SEC_SCATTER, T_DUR_S, G(http_header_timeout_ms), "10", 100, 600000, 1,
     "A request head not complete this long after its first byte gets 408 and the connection is\n"
     "closed (against slow clients holding connections)."},
    {"connect_ports", SEC_SCATTER, T_STR, G(connect_ports), "443", 0, 0, 1,
     "Ports a CONNECT tunnel of the HTTP front end may reach, comma-separated (others get 403)."},
    {"tunnel_idle_timeout", SEC_SCATTER, T_DUR_S, G(tunnel_idle_timeout_ms), "120", 1000, DAY_MS, 1,
     "A CONNECT tunnel with no byte either way for this long is closed."},
    {"http_scatter_headers", SEC_SCATTER, T_BOOL, G(http_scatter_headers), "true", 0, 1, 1,
     "Add X-Scatter-Proxy and X-Scatter-Attempts to HTTP front end responses."},
    {"max_sessions", SEC_SCATTER, T_UINT, G(max_sessions), "10000", 1, 1000000, 0,
     "Sticky sessions (X-Scatter-Session, a Proxy-Authorization user session-NAME, msgpack\n"
     "'session') kept at once, one per (session, host), shared by all workers (fixed at start).\n"
     "When all are in use a new one takes the least recently used expired entry; if none has\n"
     "expired the task is refused pool_full (HTTP 503). docs/HTTP.md, \"Sessions\"."},
    {"session_ttl", SEC_SCATTER, T_DUR_S, G(session_ttl_ms), "600", 100, DAY_MS, 1,
     "A session unused this long is forgotten: its next task picks a proxy afresh."},
    {"metrics_listen", SEC_SCATTER, T_STR, G(metrics_listen), "127.0.0.1:9118", 0, 0, 0,
     "The management endpoints, served by the master: GET /metrics (Prometheus text format),\n"
     "/health and /proxy-metrics (JSON). IP:port or [IPv6]:port; empty = off. An address that\n"
     "is not loopback is refused unless http_auth is set (then Basic auth with the same\n"
     "user:password is required here). docs/HTTP.md, \"Management endpoints\"."},
    {"health_degraded_rate", SEC_SCATTER, T_WEIGHT, G(health_degraded_rate), "0.5", 0, 1000, 1,
     "/health says degraded while the success rate of the tasks that ended in the last\n"
     "minute (at least 10 of them) is below this."},
    {"worker_buffer_budget", SEC_SCATTER, T_SIZE, G(worker_buffer_budget), "128M", 1u << 20, 1u << 31, 0,
     "Bytes one worker buffers in all: unparsed client input, replies not yet read by their\n"
     "clients and response bodies being received. Past 3/4 of it no new attempt starts; past\n"
     "it a growing response fails its attempt (retried later) and a client's growing input is\n"
     "refused. Tasks of a client that leaves over 8 MiB of replies unread are not started\n"
     "until it reads. Worker memory stays within about this plus 64 KiB per connection."},
    {"client_timeout", SEC_SCATTER, T_DUR_S, G(client_timeout_ms), "30", 1000, DAY_MS, 1,
     "A client that holds an incomplete message this long is answered bad_request and closed."},
    {"max_idle_connections", SEC_SCATTER, T_UINT, G(max_idle_connections), "0", 0, 1000000, 0,
     "Idle proxy connections each worker keeps for reuse, one per (proxy, target) at most.\n"
     "0 (default) = what the worker's descriptor limit leaves room for: (RLIMIT_NOFILE -\n"
     "max_inflight - max_clients - 256) / 2, at least 256 (9,488 with 20,000 descriptors).\n"
     "Opening a tunnel costs a SOCKS handshake, seconds through a slow proxy, and a flaky\n"
     "proxy drops new connections more often than proven ones, so a pair whose tunnel was\n"
     "closed pays again on its next use; at least (proxies used) x (targets) keeps every\n"
     "tunnel (1,000 proxies, 2 targets, 10,000 tasks: 256 -> ~1,500 tasks/s, 4096 -> ~1,700;\n"
     "8,000 proxies, 1 target: 4096 -> 5,700 tasks/s, 16000 -> 12,000, docs/BENCHMARKS.md).\n"
     "Each idle connection is one descriptor and a few kB."},
    {"max_frame", SEC_SCATTER, T_SIZE, G(max_frame), "4M", 1024, 1u << 30, 0,
     "Largest protocol message accepted; a larger one is answered bad_request and closed."},
    {"max_request_body", SEC_SCATTER, T_SIZE, G(max_request_body), "1M", 0, 1u << 30, 1,
     "Largest request body a task may carry (too_large beyond)."},
    {"max_response_body", SEC_SCATTER, T_SIZE, G(max_response_body), "1M", 1, 1u << 30, 1,
     "Largest response body kept; a larger response ends the task with too_large."},
    {"max_url", SEC_SCATTER, T_SIZE, G(max_url), "8K", 16, 1u << 20, 1,
     "Longest URL accepted."},
    /* ---- per-host behaviour (defaults; [host:NAME] may override) ---- */
    {"race_width", SEC_SCATTER, T_UINT, H(race_width), "3", 1, SC_RACE_MAX, 1,
     "Proxies raced per task (K). The first good response wins; the rest are cancelled."},
    {"race_width_min", SEC_SCATTER, T_UINT, H(race_width_min), "1", 1, SC_RACE_MAX, 1,
     "Lower bound of the adaptive race width."},
    {"race_width_max", SEC_SCATTER, T_UINT, H(race_width_max), "6", 1, SC_RACE_MAX, 1,
     "Upper bound of the adaptive race width."},
    {"adaptive_race", SEC_SCATTER, T_BOOL, H(adaptive_race), "true", 0, 1, 1,
     "Adapt K to the host's success rate and healthy-proxy supply (else always race_width)."},
    {"race_mode", SEC_SCATTER, T_RACEMODE, H(race_hedged), "hedged", 0, 1, 1,
     "all: fire every attempt of a round at once. hedged: start the best proxy at once and add\n"
     "the next ones only while no answer came within the hedge delay (learned from the host's\n"
     "recent winning latencies); all at once anyway while the host has too few samples."},
    {"hedge_quantile", SEC_SCATTER, T_UINT, H(hedge_quantile), "75", 1, 99, 1,
     "Percentile of the host's recent winning latencies used as the hedge delay."},
    {"hedge_min", SEC_SCATTER, T_DUR_MS, H(hedge_min_ms), "5", 0, 600000, 1,
     "Lower bound of the hedge delay."},
    {"max_attempts", SEC_SCATTER, T_UINT, H(max_attempts), "5", 0, 1000000, 1,
     "Failed rounds (of K attempts each) in which the target answered (a target or blocked\n"
     "status, a blocked_body marker, a SOCKS reply about the target) before a task fails\n"
     "with max_attempts. Rounds lost only to proxy faults (refused, dropped, timed out, a\n"
     "response cut short) do not count: the task's deadline bounds them (without a\n"
     "deadline, at most 4 x this many rounds). 0 = unlimited."},
    {"task_timeout", SEC_SCATTER, T_DUR_S, H(task_timeout_ms), "60", 0, DAY_MS, 1,
     "Deadline of a task from submission; 0 = none. A task's timeout_ms overrides it."},
    {"connect_timeout", SEC_SCATTER, T_DUR_MS, H(connect_timeout_ms), "5000", 100, 600000, 1,
     "Timeout to reach the proxy and finish the SOCKS handshake (milliseconds unless suffixed)."},
    {"request_timeout", SEC_SCATTER, T_DUR_MS, H(request_timeout_ms), "15000", 100, 3600000, 1,
     "Timeout of one attempt, whole transfer included."},
    {"success_status", SEC_SCATTER, T_STATUS, H(success_status), "2xx", 0, 0, 1,
     "Statuses that are Success (with a body of at least min_body_size): list of 200, 2xx, 200-299."},
    {"blocked_status", SEC_SCATTER, T_STATUS, H(blocked_status), "403,429", 0, 0, 1,
     "Statuses that mean the target refused this proxy (charged to the (proxy, host) pair)."},
    {"target_error_status", SEC_SCATTER, T_STATUS, H(target_error_status), "5xx", 0, 0, 1,
     "Statuses that mean the target itself failed (charged to the host's breaker, no proxy)."},
    {"blocked_body", SEC_SCATTER, T_STR, H(blocked_body), "", 0, 0, 1,
     "Body substrings that mean blocked even with a success status (a captcha page),\n"
     "separated by '|'. Case-sensitive. Quote the value."},
    {"min_body_size", SEC_SCATTER, T_SIZE, H(min_body_size), "1", 0, 1u << 30, 1,
     "A success status with a shorter body counts as ProxyBlocked (not for HEAD, 204 or 304:\n"
     "they have no body)."},
    {"strict_status", SEC_SCATTER, T_BOOL, H(strict_status), "false", 0, 1, 1,
     "false: a status in none of the three lists (404, 301...) is the target's answer, returned\n"
     "as the task's result, and the proxy counts as having worked. true: it is ProxyBlocked,\n"
     "charged to the (proxy, host) pair (for a site that answers blocked proxies oddly)."},
    {"cooldown_consecutive_fails", SEC_SCATTER, T_UINT, H(cooldown_consecutive_fails), "3", 1, 1000, 1,
     "Consecutive failures of a (proxy, host) pair that start a cooldown."},
    {"cooldown_base", SEC_SCATTER, T_DUR_S, H(cooldown_base_ms), "30", 1, DAY_MS, 1,
     "First cooldown; each further one doubles, up to cooldown_max."},
    {"cooldown_max", SEC_SCATTER, T_DUR_S, H(cooldown_max_ms), "300", 1, DAY_MS, 1,
     "Longest cooldown."},
    {"eviction_min_samples", SEC_SCATTER, T_UINT, H(eviction_min_samples), "30", 1, 1000000, 1,
     "A proxy with no success after this many samples is dead (until a source lists it again)."},
    {"circuit_breaker_threshold", SEC_SCATTER, T_UINT, H(circuit_breaker_threshold), "10", 1, 1000000, 1,
     "Consecutive TargetError outcomes that open the host's circuit."},
    {"circuit_probe_interval", SEC_SCATTER, T_DUR_S, H(circuit_probe_interval_ms), "30", 100, DAY_MS, 1,
     "While a circuit is open, one probe task is let through this often."},
    {"host_sources", SEC_SCATTER, T_STR, H(sources), "", 0, 0, 1,
     "Names of the sources (see sources) whose proxies serve this host; empty = all.\n"
     "Usually set only in [host:NAME] sections (there also spelled `sources`)."},
    {"ca_file", SEC_SCATTER, T_STR, H(ca_file), "", 0, 0, 1,
     "PEM file of the certificate authorities trusted for this host's https URLs (a private\n"
     "CA); empty = the system's bundle. Quote the value."},
    {"tls_verify", SEC_SCATTER, T_BOOL, H(tls_verify), "true", 0, 1, 1,
     "Verify https targets' certificates and host names. Turning it off lets anyone on the\n"
     "path (a proxy among them) read and change the traffic: prefer ca_file."},
    /* ---- health and scoring ---- */
    {"health_window", SEC_SCATTER, T_UINT, G(health_window), "30", 1, 56, 0,
     "Outcomes remembered per (proxy, host) pair for its success rate."},
    {"cooldown_jitter_pct", SEC_SCATTER, T_UINT, G(cooldown_jitter_pct), "10", 0, 50, 1,
     "Random spread of each cooldown, +-percent, so proxies do not all return at once."},
    {"score_affinity", SEC_SCATTER, T_WEIGHT, G(score_affinity), "0.5", 0, 1000, 1,
     "Score weight of the pair's windowed success rate."},
    {"score_global", SEC_SCATTER, T_WEIGHT, G(score_global), "0.3", 0, 1000, 1,
     "Score weight of the proxy's success rate over all hosts."},
    {"score_recency", SEC_SCATTER, T_WEIGHT, G(score_recency), "0.2", 0, 1000, 1,
     "Score weight of 1 / (1 + minutes since the pair's last success)."},
    {"score_jitter", SEC_SCATTER, T_WEIGHT, G(score_jitter), "0.02", 0, 1000, 1,
     "Largest random term added to a score, to spread load among equals."},
    /* ---- persistence, observability, misc ---- */
    {"state_file", SEC_SCATTER, T_STR, G(state_file), "", 0, 0, 0,
     "JSON state file for hot restarts; empty = no persistence. Only proxies and hosts with a\n"
     "success are kept. Written at <state_file>.tmp.<pid> (O_EXCL|O_NOFOLLOW, 0600), then renamed."},
    {"state_save_interval", SEC_SCATTER, T_DUR_S, G(state_save_interval_ms), "60", 1000, DAY_MS, 1,
     "How often the state file is written (and always at shutdown)."},
    {"metrics_log_interval", SEC_SCATTER, T_DUR_S, G(metrics_log_interval_ms), "30", 1000, DAY_MS, 1,
     "How often the master logs the one-line metrics summary."},
    {"remote_dns", SEC_SCATTER, T_BOOL, G(remote_dns), "true", 0, 1, 1,
     "Resolve target names at the proxy (socks5h://) instead of locally."},
    {"shutdown_grace", SEC_SCATTER, T_DUR_S, G(shutdown_grace_ms), "10", 0, 3600000, 1,
     "On SIGTERM, how long in-flight tasks may finish; the rest are answered shutting_down."},
    {"user_agent", SEC_SCATTER, T_STR, G(user_agent), "scatter/" SCATTER_VERSION, 0, 0, 1,
     "User-Agent sent when the task sets none."},
    /* ---- [rate_limit] ---- */
    {"interval", SEC_RATE_LIMIT, T_DUR_MS, H(interval_ms), "1000", 0, DAY_MS, 1,
     "Minimum time between two requests from one proxy to one host, as the target sees it\n"
     "(milliseconds unless suffixed). [host:NAME] sections override it."},
    {"margin", SEC_RATE_LIMIT, T_DUR_MS, G(rate_limit_margin_ms), "5", 0, 60000, 1,
     "Added to every interval: clock granularity, and jitter when anchor = sent."},
    {"anchor", SEC_RATE_LIMIT, T_ANCHOR, G(rate_limit_anchor_sent), "response", 0, 1, 1,
     "What the interval is counted from. response: the first byte of the previous answer,\n"
     "which the target cannot have sent before the request arrived, so the interval holds as\n"
     "the target sees it whatever the delay through the proxy (costs one round trip per use).\n"
     "sent: the moment the previous request left; faster, but a request delayed on its way\n"
     "can land closer to the next one than the interval (raise margin to cover it)."},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const char *const SEC_NAMES[] = {"scatter", "rate_limit"};

static void *field(scatter_config *c, cfg_host *h, const cfg_key *k)
{
    return k->per_host ? (char *)h + k->off : (char *)c + k->off;
}

int cfg_parse_bool(const char *s, uint32_t *out)
{
    static const char *const T[] = {"true", "yes", "on", "1"}, *const F[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, T[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(s, F[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

/* Decimal only: iniparser's getint reads "010" as octal, a trap for users. */
static int parse_u64(const char *s, char **end, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, end, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

int cfg_parse_duration_ms(const char *s, uint32_t unit_ms, uint32_t *out)
{
    char *end;
    uint64_t v;
    if (parse_u64(s, &end, &v))
        return -1;
    uint64_t mul = unit_ms;
    if (*end) {
        if (strcmp(end, "ms") == 0) mul = 1;
        else if (strcmp(end, "s") == 0) mul = 1000;
        else if (strcmp(end, "m") == 0) mul = 60000;
        else if (strcmp(end, "h") == 0) mul = 3600000;
        else return -1;
    }
    if (v > UINT32_MAX / mul)
        return -1;
    *out = (uint32_t)(v * mul);
    return 0;
}

int cfg_parse_size(const char *s, uint32_t *out)
{
    char *end;
    uint64_t v;
    if (parse_u64(s, &end, &v))
        return -1;
    uint64_t mul = 1;
    if (*end) {
        if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0) mul = 1024;
        else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0) mul = 1024 * 1024;
        else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0) mul = 1024 * 1024 * 1024;
        else return -1;
    }
    if (v > UINT32_MAX / mul)
        return -1;
    *out = (uint32_t)(v * mul);
    return 0;
}

/* "0.5" or "50%" -> thousandths. */
static int parse_weight(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || !(d >= 0))
        return -1;
    if (*end == '%') { d /= 100.0; end++; }
    if (*end)
        return -1;
    if (d > 1.0)
        return -1;
    *out = (uint32_t)(d * 1000.0 + 0.5);
    return 0;
}

#define STATUS_HINT "a list of HTTP statuses (100-599), comma-separated: a status, a class or a range, like 2xx,304,400-404"

static const char *type_hint(const cfg_key *k)
{
    switch (k->type) {
    case T_UINT: return "an integer";
    case T_DUR_S: return "a duration (seconds, or with ms/s/m/h suffix)";
    case T_DUR_MS: return "a duration (milliseconds, or with ms/s/m/h suffix)";
    case T_SIZE: return "a size (bytes, or with K/M/G suffix)";
    case T_BOOL: return "true or false";
    case T_STR: return "a string";
    case T_MODE: return "an octal file mode like 0660";
    case T_LEVEL: return "one of error, warn, info, debug";
    case T_WEIGHT: return "a number between 0 and 1";
    case T_STATUS: return STATUS_HINT;
    case T_ANCHOR: return "response or sent";
    case T_RACEMODE: return "hedged or all";
    case T_LOGFMT: return "text or json";
    case T_SHARD: return "K/N with 0 <= K < N, 1 <= N <= 65536 (like 0/2)";
    }
    return "?";
}

/* Stores value v for key k. 0, or -1 with *why set. */
static int set_value(scatter_config *c, cfg_host *h, const cfg_key *k, const char *v, const char **why)
{
    void *p = field(c, h, k);
    uint32_t u = 0;
    int rc = 0;
    *why = NULL;
    switch (k->type) {
    case T_UINT: {
        char *end;
        uint64_t x;
        rc = parse_u64(v, &end, &x) || *end || x > UINT32_MAX ? -1 : 0;
        u = (uint32_t)x;
        break;
    }
    case T_DUR_S: rc = cfg_parse_duration_ms(v, 1000, &u); break;
    case T_DUR_MS: rc = cfg_parse_duration_ms(v, 1, &u); break;
    case T_SIZE: rc = cfg_parse_size(v, &u); break;
    case T_BOOL: rc = cfg_parse_bool(v, &u); break;
    case T_WEIGHT: rc = parse_weight(v, &u); break;
    case T_ANCHOR:
        rc = strcmp(v, "response") == 0 ? (u = 0, 0) : strcmp(v, "sent") == 0 ? (u = 1, 0) : -1;
        break;
    case T_RACEMODE:
        rc = strcmp(v, "all") == 0 ? (u = 0, 0) : strcmp(v, "hedged") == 0 ? (u = 1, 0) : -1;
        break;
    case T_MODE: {
        char *end;
        unsigned long m = strtoul(v, &end, 8);
        rc = (*v == '\0' || *end || m > 0777) ? -1 : 0;
        u = (uint32_t)m;
        break;
    }
    case T_LEVEL: {
        log_level l;
        rc = log_level_parse(v, &l);
        u = (uint32_t)l;
        break;
    }
    case T_LOGFMT: {
        log_format f;
        rc = log_format_parse(v, &f);
        u = (uint32_t)f;
        break;
    }
    case T_SHARD: {
        char *end;
        uint64_t sk, sn;
        if (parse_u64(v, &end, &sk) || *end != '/' || parse_u64(end + 1, &end, &sn) || *end || sn < 1 ||
            sn > 65536 || sk >= sn) {
            *why = type_hint(k);
            return -1;
        }
        ((uint32_t *)p)[0] = (uint32_t)sk;
        ((uint32_t *)p)[1] = (uint32_t)sn;
        return 0;
    }
    case T_STATUS:
        if (status_list_parse(v, NULL, 0)) {
            *why = STATUS_HINT;
            return -1;
        }
        /* fall through */
    case T_STR:
        if (strlen(v) >= k->size) {
            *why = "too long";
            return -1;
        }
        memcpy(p, v, strlen(v) + 1);
        return 0;
    }
    if (rc) {
        *why = type_hint(k);
        return -1;
    }
    if (u < k->min || u > k->max) {
        *why = "out of range";
        return -1;
    }
    *(uint32_t *)p = u;
    return 0;
}

scatter_config *cfg_alloc(void)
{
    void *p = mmap(NULL, sizeof(scatter_config), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void cfg_free(scatter_config *c)
{
    if (c)
        munmap(c, sizeof *c);
}

void cfg_defaults(scatter_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        const char *why;
        int rc = set_value(c, &c->defaults, &KEYS[i], KEYS[i].def, &why);
        (void)rc; /* defaults are covered by a unit test */
    }
}

/* ---- the pre-scan: where each key is, and what iniparser would mangle ---- */

typedef struct {
    char sec[CFG_NAME_MAX + 8];
    char key[64];
    int line;
} key_line;

typedef struct {
    key_line *v;
    size_t n, cap;
    /* sections in file order: iniparser 4.1 does not list "host:NAME" as a section (':' is
     * its own separator), so the pre-scan is where section names come from. */
    char (*secs)[CFG_NAME_MAX + 8];
    int *sec_line;
    size_t nsec;
} key_lines;

static int err_at(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int err_at(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

char *cfg_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int prescan(const char *path, key_lines *kl, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_at(err, cap, "%s: cannot open: %s", path, strerror(errno));
    char sec[CFG_NAME_MAX + 8] = "";
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int no = 0, rc = 0;
    while ((got = getline(&line, &lcap, f)) > 0) {
        no++;
        size_t len = (size_t)got - (line[got - 1] == '\n');
        /* a NUL ends every string below: the rest of the line, or of a binary file, would
         * silently vanish and the file would pass as (nearly) empty */
        if (memchr(line, '\0', (size_t)got)) {
            rc = err_at(err, cap, "%s:%d: contains a NUL byte (not a text file?)", path, no);
            break;
        }
        if (len >= 1023) {
            rc = err_at(err, cap, "%s:%d: line longer than 1022 characters", path, no);
            break;
        }
        char *s = cfg_trim(line);
        if (*s == '\0' || *s == ';' || *s == '#')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1] != '\0' || e - s - 1 >= (long)sizeof sec) {
                rc = err_at(err, cap, "%s:%d: bad section header '%s'", path, no, s);
                break;
            }
            *e = '\0';
            snprintf(sec, sizeof sec, "%s", cfg_trim(s + 1));
            lower(sec);
            int seen = 0;
            for (size_t i = 0; i < kl->nsec; i++)
                seen |= strcmp(kl->secs[i], sec) == 0;
            if (seen)
                continue;
            if (kl->nsec >= CFG_HOSTS_MAX + 2) {
                rc = err_at(err, cap, "%s:%d: too many sections", path, no);
                break;
            }
            if (!kl->secs) {
                kl->secs = calloc(CFG_HOSTS_MAX + 2, sizeof *kl->secs);
                kl->sec_line = calloc(CFG_HOSTS_MAX + 2, sizeof *kl->sec_line);
                if (!kl->secs || !kl->sec_line) {
                    rc = err_at(err, cap, "%s: out of memory", path);
                    break;
                }
            }
            snprintf(kl->secs[kl->nsec], sizeof kl->secs[0], "%s", sec);
            kl->sec_line[kl->nsec++] = no;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = err_at(err, cap, "%s:%d: expected 'key = value', got '%s'", path, no, s);
            break;
        }
        *eq = '\0';
        char *key = cfg_trim(s), *val = cfg_trim(eq + 1);
        if (*sec == '\0') {
            rc = err_at(err, cap, "%s:%d: key '%s' outside any section", path, no, key);
            break;
        }
        if (*val != '"' && *val != '\'' && strpbrk(val, ";#")) {
            rc = err_at(err, cap,
                        "%s:%d: [%s] %s: unquoted value contains ';' or '#', which start a comment; "
                        "put the value in double quotes",
                        path, no, sec, key);
            break;
        }
        if (kl->n == kl->cap) {
            size_t nc = buf_next_cap(kl->cap, kl->n + 1, 64, SIZE_MAX / sizeof *kl->v);
            key_line *nv = realloc(kl->v, nc * sizeof *nv);
            if (!nv) {
                rc = err_at(err, cap, "%s: out of memory", path);
                break;
            }
            kl->v = nv;
            kl->cap = nc;
        }
        key_line *e = &kl->v[kl->n++];
        snprintf(e->sec, sizeof e->sec, "%s", sec);
        snprintf(e->key, sizeof e->key, "%s", key);
        lower(e->key);
        e->line = no;
    }
    free(line);
    fclose(f);
    return rc;
}

/* iniparser names a key "section:key", so a section [S:K] and a key K of [S] are one entry to
 * it (one of the two values is lost). Such a file is refused, naming both lines. */
static int section_key_collisions(const key_lines *kl, const char *path, char *err, size_t cap)
{
    for (size_t s = 0; s < kl->nsec; s++)
        for (size_t i = 0; i < kl->n; i++) {
            size_t sl = strlen(kl->v[i].sec);
            if (strncmp(kl->secs[s], kl->v[i].sec, sl) == 0 && kl->secs[s][sl] == ':' &&
                strcmp(kl->secs[s] + sl + 1, kl->v[i].key) == 0)
                return err_at(err, cap,
                              "%s:%d: section [%s] has the same name as key '%s' of [%s] (line %d): the ini "
                              "reader cannot tell them apart; rename one",
                              path, kl->sec_line[s], kl->secs[s], kl->v[i].key, kl->v[i].sec, kl->v[i].line);
        }
    return 0;
}

/* 1 if an iniparser key "a:b:c" belongs to a section [a:b] of the file rather than to [a]
 * (iniparser lists it under both). */
static int in_subsection(const key_lines *kl, const char *full, size_t sec_len)
{
    const char *last = strrchr(full, ':');
    if (!last || (size_t)(last - full) <= sec_len)
        return 0; /* "sec:key": the key itself */
    for (size_t s = 0; s < kl->nsec; s++) {
        size_t n = strlen(kl->secs[s]);
        if ((size_t)(last - full) == n && strncmp(full, kl->secs[s], n) == 0)
            return 1;
    }
    return 0;
}

static int line_of(const key_lines *kl, const char *sec, const char *key)
{
    for (size_t i = kl->n; i-- > 0;) /* last occurrence wins, as in iniparser */
        if (strcmp(kl->v[i].sec, sec) == 0 && strcmp(kl->v[i].key, key) == 0)
            return kl->v[i].line;
    return 0;
}

static const cfg_key *find_key(const char *sec, const char *key, int host_section)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key *k = &KEYS[i];
        if (host_section) {
            if (!k->per_host)
                continue;
            /* in a host section, per-host keys go by their plain names */
            const char *plain = strcmp(k->name, "host_sources") == 0 ? "sources" : k->name;
            if (strcmp(plain, key) == 0)
                return k;
        } else if (strcmp(SEC_NAMES[k->sec], sec) == 0 && strcmp(k->name, key) == 0) {
            return k;
        }
    }
    return NULL;
}

static int ini_errback(const char *fmt, ...)
{
    /* iniparser reports syntax errors here; our pre-scan already names the line for the
     * ones we know, so this only adds detail on stderr. */
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(stderr, fmt, ap);
    va_end(ap);
    return n;
}

static int cross_check(const scatter_config *c, const cfg_host *h, char *err, size_t cap)
{
    const char *who = h->name[0] ? h->name : "scatter";
    const char *pre = h->name[0] ? "host:" : "";
    if (h->race_width_min > h->race_width_max)
        return err_at(err, cap, "%s: [%s%s] race_width_min (%u) is above race_width_max (%u)", c->path,
                      pre, who, h->race_width_min, h->race_width_max);
    if (h->race_width < h->race_width_min || h->race_width > h->race_width_max)
        return err_at(err, cap, "%s: [%s%s] race_width (%u) is outside race_width_min..race_width_max (%u..%u)",
                      c->path, pre, who, h->race_width, h->race_width_min, h->race_width_max);
    if (h->cooldown_base_ms > h->cooldown_max_ms)
        return err_at(err, cap, "%s: [%s%s] cooldown_base is above cooldown_max", c->path, pre, who);
    if (h->connect_timeout_ms > h->request_timeout_ms)
        return err_at(err, cap, "%s: [%s%s] connect_timeout is above request_timeout", c->path, pre, who);
    if (h->ca_file[0] && access(h->ca_file, R_OK) != 0)
        return err_at(err, cap, "%s: [%s%s] ca_file = '%s': %s", c->path, pre, who, h->ca_file, strerror(errno));
    return 0;
}

/* A listening address: numeric, and loopback unless clients must authenticate (http_auth),
 * because whoever reaches it can spend the proxies or read every host name and counter.
 * `for_whom` ends the non-loopback message. */
static int check_listen(const scatter_config *c, const char *key, const char *val, const char *for_whom,
                        char *err, size_t cap)
{
    struct sockaddr_storage ss;
    unsigned len;
    char why[256];
    if (listen_addr_parse(val, &ss, &len, why, sizeof why))
        return err_at(err, cap, "%s: [scatter] %s = %s", c->path, key, why);
    if (!listen_addr_is_loopback(&ss) && !c->http_auth[0])
        return err_at(err, cap, "%s: [scatter] %s = '%s' is not a loopback address: set http_auth "
                                "(user:password) so only %s", c->path, key, val, for_whom);
    return 0;
}

static int check_metrics(const scatter_config *c, char *err, size_t cap)
{
    if (!c->metrics_listen[0])
        return 0;
    int rc = check_listen(c, "metrics_listen", c->metrics_listen, "you can read the metrics", err, cap);
    if (rc)
        return rc;
    if (!strcmp(c->metrics_listen, c->http_listen))
        return err_at(err, cap, "%s: [scatter] metrics_listen = '%s' is also http_listen: give each its own port",
                      c->path, c->metrics_listen);
    return 0;
}

static int check_http(const scatter_config *c, char *err, size_t cap)
{
    if (!c->http_listen[0])
        return 0;
    int rc = check_listen(c, "http_listen", c->http_listen, "your clients can use the proxy", err, cap);
    if (rc)
        return rc;
    if (c->http_auth[0] && !strchr(c->http_auth, ':'))
        return err_at(err, cap, "%s: [scatter] http_auth = '...': expected user:password", c->path);
    return 0;
}

static int check_redis(const scatter_config *c, char *err, size_t cap)
{
    if (!c->redis_url[0])
        return 0;
    redis_url u;
    char why[160];
    if (redis_url_parse(c->redis_url, &u, why, sizeof why)) {
        /* the message goes to logs and terminals: never the password */
        const char *at = strrchr(c->redis_url, '@');
        return err_at(err, cap, "%s: [scatter] redis_url = '%s%s': %s", c->path, at ? "redis://***" : "",
                      at ? at : c->redis_url, why);
    }
    if (!c->redis_stream[0] || strpbrk(c->redis_stream, " \t\r\n"))
        return err_at(err, cap, "%s: [scatter] redis_stream = '%s': expected a stream name without spaces", c->path,
                      c->redis_stream);
    return 0;
}

/* Sets the keys of one section (its cfg_host h: the defaults or a [host:NAME] copy). 0 or -1. */
static int apply_section(scatter_config *c, cfg_host *h, dictionary *d, const key_lines *kl, const char *sec,
                         int is_host, const char *path, char *err, size_t cap)
{
    int nk = iniparser_getsecnkeys(d, sec);
    if (nk <= 0)
        return 0;
    const char **keys = calloc((size_t)nk, sizeof *keys);
    if (!keys)
        return err_at(err, cap, "out of memory");
    int rc = 0;
    iniparser_getseckeys(d, sec, keys);
    size_t plen = strlen(sec) + 1;
    for (int i = 0; i < nk && rc == 0; i++) {
        const char *key = keys[i] + plen;
        /* a section [sec:key] (say [host:example.com:8443] beside [host:example.com])
         * is listed among sec's keys with no value: it is not one of them */
        if (!iniparser_getstring(d, keys[i], NULL) || in_subsection(kl, keys[i], plen - 1))
            continue;
        const cfg_key *k = find_key(sec, key, is_host);
        const char *val = iniparser_getstring(d, keys[i], "");
        int ln = line_of(kl, sec, key);
        if (!k) {
            const char *alt = is_host ? NULL : (find_key(sec, key, 1) ? "it belongs in [scatter] or [host:NAME]" : NULL);
            if (!is_host && strcmp(sec, "scatter") == 0 && strcmp(key, "interval") == 0)
                alt = "the default interval belongs in [rate_limit]";
            rc = err_at(err, cap, "%s:%d: [%s] unknown key '%s'%s%s", path, ln, sec, key,
                        alt ? ": " : "", alt ? alt : "");
            break;
        }
        const char *why;
        if (set_value(c, h, k, val, &why)) {
            if (strcmp(why, "out of range") == 0)
                rc = err_at(err, cap, "%s:%d: [%s] %s = '%s': out of range (allowed %u..%u%s)", path, ln,
                            sec, key, val, k->min, k->max,
                            k->type == T_DUR_S || k->type == T_DUR_MS ? " ms" :
                            k->type == T_SIZE ? " bytes" : "");
            else
                rc = err_at(err, cap, "%s:%d: [%s] %s = '%s': expected %s", path, ln, sec, key, val,
                            strcmp(why, "too long") == 0 ? "a shorter value" : why);
        }
    }
    free(keys);
    return rc;
}

int cfg_load(scatter_config *c, const char *path, char *err, size_t cap)
{
    return cfg_load_as(c, path, (unsigned)geteuid(), getenv("XDG_RUNTIME_DIR"), err, cap);
}

int cfg_load_as(scatter_config *c, const char *path, unsigned uid, const char *xdg, char *err, size_t cap)
{
    cfg_defaults(c);
    snprintf(c->path, sizeof c->path, "%s", path);
    key_lines kl = {0};
    if (prescan(path, &kl, err, cap)) {
        free(kl.v);
        free(kl.secs);
        free(kl.sec_line);
        return -1;
    }
    iniparser_set_error_callback(ini_errback);
    dictionary *d = iniparser_load(path);
    if (!d) {
        free(kl.v);
        free(kl.secs);
        free(kl.sec_line);
        return err_at(err, cap, "%s: not a valid ini file (see the message above)", path);
    }
    int rc = section_key_collisions(&kl, path, err, cap);
    /* Pass 1: [scatter] and [rate_limit] (they set the defaults host sections start from). */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t s = 0; s < kl.nsec && rc == 0; s++) {
            const char *sec = kl.secs[s];
            int is_host = strncmp(sec, "host:", 5) == 0;
            if (!is_host && strcmp(sec, "scatter") != 0 && strcmp(sec, "rate_limit") != 0) {
                rc = err_at(err, cap, "%s:%d: unknown section [%s] (expected [scatter], [rate_limit] or [host:NAME])",
                            path, kl.sec_line[s], sec);
                break;
            }
            if (is_host != (pass == 1))
                continue;
            cfg_host *h = &c->defaults;
            if (is_host) {
                const char *name = sec + 5;
                if (!*name || strlen(name) >= CFG_NAME_MAX || strpbrk(name, " /?#@")) {
                    rc = err_at(err, cap, "%s: bad host section name [%s]", path, sec);
                    break;
                }
                if (c->n_hosts == CFG_HOSTS_MAX) {
                    rc = err_at(err, cap, "%s: more than %d [host:NAME] sections", path, CFG_HOSTS_MAX);
                    break;
                }
                h = &c->hosts[c->n_hosts++];
                *h = c->defaults;
                snprintf(h->name, sizeof h->name, "%s", name);
                h->sources[0] = '\0'; /* a host's pool is never inherited from host_sources */
            }
            rc = apply_section(c, h, d, &kl, sec, is_host, path, err, cap);
        }
    }
    /* An empty, truncated-to-nothing or binary file would otherwise load as "every default",
     * and a reload with it would silently empty the sources. (Unknown sections and keys were
     * refused above, so what is left here is a file that says nothing.) */
    int has_scatter = 0;
    for (size_t s = 0; s < kl.nsec; s++)
        has_scatter |= strcmp(kl.secs[s], "scatter") == 0;
    if (rc == 0 && !has_scatter)
        rc = err_at(err, cap, "%s: no [scatter] section (an empty file, or not a scatter.ini?)", path);
    if (rc == 0 && kl.n == 0)
        rc = err_at(err, cap, "%s: no recognised key in any section; write at least the keys you rely on, "
                    "such as sources", path);
    /* Host sections were filled in pass 2, from the final defaults wherever they stand. */
    if (rc == 0)
        rc = cross_check(c, &c->defaults, err, cap);
    for (uint32_t i = 0; rc == 0 && i < c->n_hosts; i++)
        rc = cross_check(c, &c->hosts[i], err, cap);
    if (rc == 0 && c->score_affinity + c->score_global + c->score_recency == 0)
        rc = err_at(err, cap, "%s: [scatter] score weights are all 0", path);
    if (rc == 0 && c->n_hosts > c->max_hosts)
        rc = err_at(err, cap, "%s: %u [host:NAME] sections but max_hosts = %u", path, c->n_hosts, c->max_hosts);
    if (rc == 0)
        rc = check_http(c, err, cap);
    if (rc == 0)
        rc = check_metrics(c, err, cap);
    if (rc == 0)
        rc = check_redis(c, err, cap);
    if (rc == 0)
        rc = cfg_resolve_paths(c, uid, xdg, err, cap);
    iniparser_freedict(d);
    free(kl.v);
    free(kl.secs);
    free(kl.sec_line);
    return rc;
}

int cfg_resolve_paths(scatter_config *c, unsigned uid, const char *xdg, char *err, size_t cap)
{
    struct {
        const char *key;
        char *v;
    } P[] = {{"socket_path", c->socket_path}, {"pid_file", c->pid_file}};
    c->runtime_dir[0] = '\0';
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        if (!P[i].v[0] || P[i].v[0] == '/')
            continue;
        char why[512];
        if (!c->runtime_dir[0] &&
            paths_runtime_dir((uid_t)uid, xdg, c->runtime_dir, sizeof c->runtime_dir, why, sizeof why))
            return err_at(err, cap, "%s: [scatter] %s = '%s' is relative (the default), but %s", c->path, P[i].key,
                          P[i].v, why);
        char abs[CFG_STR_MAX];
        if (snprintf(abs, sizeof abs, "%s/%s", c->runtime_dir, P[i].v) >= (int)sizeof abs)
            return err_at(err, cap, "%s: [scatter] %s: %s/%s is too long", c->path, P[i].key, c->runtime_dir, P[i].v);
        memcpy(P[i].v, abs, strlen(abs) + 1);
    }
    return 0;
}

const cfg_host *cfg_host_for(const scatter_config *c, const char *host)
{
    for (uint32_t i = 0; i < c->n_hosts; i++)
        if (strcasecmp(c->hosts[i].name, host) == 0)
            return &c->hosts[i];
    return &c->defaults;
}

static void print_value(const scatter_config *c, const cfg_host *h, const cfg_key *k, FILE *f)
{
    const void *p = k->per_host ? (const char *)h + k->off : (const char *)c + k->off;
    uint32_t u = (k->type == T_STR || k->type == T_STATUS) ? 0 : *(const uint32_t *)p;
    switch (k->type) {
    case T_STR:
    case T_STATUS: fprintf(f, "\"%s\"", (const char *)p); break;
    case T_UINT: fprintf(f, "%u", u); break;
    case T_DUR_S: if (u % 1000) fprintf(f, "%ums", u); else fprintf(f, "%u", u / 1000); break;
    case T_DUR_MS: fprintf(f, "%u", u); break;
    case T_SIZE:
        if (u && u % (1024 * 1024) == 0) fprintf(f, "%uM", u / (1024 * 1024));
        else if (u && u % 1024 == 0) fprintf(f, "%uK", u / 1024);
        else fprintf(f, "%u", u);
        break;
    case T_BOOL: fputs(u ? "true" : "false", f); break;
    case T_MODE: fprintf(f, "0%o", u); break;
    case T_LEVEL: fputs(log_level_name((log_level)u), f); break;
    case T_WEIGHT: fprintf(f, "%g", u / 1000.0); break;
    case T_ANCHOR: fputs(u ? "sent" : "response", f); break;
    case T_RACEMODE: fputs(u ? "hedged" : "all", f); break;
    case T_LOGFMT: fputs(log_format_name((log_format)u), f); break;
    case T_SHARD: fprintf(f, "%u/%u", u, ((const uint32_t *)p)[1]); break;
    }
}

void cfg_print(const scatter_config *c, FILE *f, int effective)
{
    scatter_config defs;
    if (!effective) {
        cfg_defaults(&defs);
        c = &defs;
    }
    fputs("; scatter.ini: every key with its default. Generated by `scatterd --print-default-config`.\n"
          "; Durations take ms/s/m/h suffixes, sizes K/M/G. Quote values containing ';' or '#'.\n"
          "; Unknown keys and bad values are errors naming the key and the line.\n", f);
    for (int s = 0; s < 2; s++) {
        fprintf(f, "\n[%s]\n", SEC_NAMES[s]);
        for (size_t i = 0; i < NKEYS; i++) {
            const cfg_key *k = &KEYS[i];
            if ((int)k->sec != s)
                continue;
            fputs("\n", f);
            const char *h = k->help;
            while (*h) {
                const char *nl = strchr(h, '\n');
                size_t n = nl ? (size_t)(nl - h) : strlen(h);
                fprintf(f, "; %.*s\n", (int)n, h);
                h += n + (nl ? 1 : 0);
            }
            fprintf(f, "; default: %s%s%s\n", *k->def ? k->def : "(empty)", k->per_host ? "; per host" : "",
                    k->reloadable ? "; reloadable (SIGHUP)" : "; fixed at start");
            fprintf(f, "%s = ", k->name);
            print_value(c, &c->defaults, k, f);
            fputs("\n", f);
        }
    }
    if (effective)
        for (uint32_t i = 0; i < c->n_hosts; i++) {
            fprintf(f, "\n[host:%s]\n", c->hosts[i].name);
            for (size_t j = 0; j < NKEYS; j++) {
                const cfg_key *k = &KEYS[j];
                if (!k->per_host)
                    continue;
                fprintf(f, "%s = ", strcmp(k->name, "host_sources") == 0 ? "sources" : k->name);
                print_value(c, &c->hosts[i], k, f);
                fputs("\n", f);
            }
        }
    else
        fputs("\n; Per-host overrides: any key marked \"per host\" (and `sources`, naming sources):\n"
              "; [host:example.com]\n; interval = 2000\n; race_width = 2\n; blocked_body = \"captcha|Access denied\"\n", f);
}

int cfg_reload_merge(const scatter_config *run, const scatter_config *fresh, scatter_config *out, char *fixed,
                     size_t cap)
{
    int n = 0;
    size_t used = 0;
    if (cap)
        fixed[0] = '\0';
    *out = *fresh;
    /* derived from socket_path / pid_file, which are fixed at start */
    memcpy(out->runtime_dir, run->runtime_dir, sizeof out->runtime_dir);
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key *k = &KEYS[i];
        if (k->reloadable)
            continue;
        /* a per-host key fixed at start keeps the running default and every section's value;
         * sections are matched by name, a new section takes the running default */
        if (k->per_host) {
            for (uint32_t h = 0; h <= out->n_hosts; h++) {
                cfg_host *oh = h < out->n_hosts ? &out->hosts[h] : &out->defaults;
                const cfg_host *rh = h < out->n_hosts ? cfg_host_for(run, oh->name) : &run->defaults;
                memcpy((char *)oh + k->off, (const char *)rh + k->off, k->size);
            }
            continue;
        }
        const char *a = (const char *)run + k->off, *b = (const char *)fresh + k->off;
        int differs = k->type == T_STR ? strncmp(a, b, k->size) != 0 : memcmp(a, b, k->size) != 0;
        if (!differs)
            continue;
        memcpy((char *)out + k->off, a, k->size);
        int w = cap > used ? snprintf(fixed + used, cap - used, "%s%s", n ? ", " : "", k->name) : 0;
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
        n++;
    }
    return n;
}

int cfg_key_count(void)
{
    return (int)NKEYS;
}

const char *cfg_key_name(int i)
{
    return i >= 0 && (size_t)i < NKEYS ? KEYS[i].name : NULL;
}

int cfg_key_reloadable(int i)
{
    return i >= 0 && (size_t)i < NKEYS && KEYS[i].reloadable;
}
