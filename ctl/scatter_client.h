/*
 * scatter client library: talks to scatterd over its Unix sockets (docs/PROTOCOL.md).
 *
 * One sc_client owns a control connection to the main socket plus one connection per worker
 * socket announced by hello, and spreads submitted tasks over them (least outstanding first).
 * It promises the caller exactly one result per submitted task:
 *   - pool_full answers are never reported: the task waits 50..200 ms and is resubmitted;
 *   - when a connection dies (its worker was killed and restarted), every task it owed is
 *     resubmitted on another connection or on the same worker socket once it is back.
 *     The HTTP request may therefore run twice; the result is reported once.
 *
 * Blocking API, single-threaded: every call that waits takes a timeout in milliseconds
 * (-1 = forever). Sockets are non-blocking inside so reads and writes interleave in one poll(2)
 * loop and a slow reader never deadlocks against the daemon. No global state: two clients in
 * one process are independent. Not thread-safe: one thread per sc_client.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on failure; when an
 * `err` buffer is given it receives one human sentence with the detail.
 */
#ifndef SCATTER_CTL_SCATTER_CLIENT_H
#define SCATTER_CTL_SCATTER_CLIENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SC_MAX_WINDOW (1u << 20)

typedef struct sc_client sc_client;

typedef struct {
    const char *socket_path;  /* NULL: $SCATTER_SOCKET, else the default (sc_socket_path) */
    unsigned window;          /* tasks outstanding at most; 0: 3/4 of pool_capacity, capped 4096 */
    int connect_timeout_ms;   /* per connect + hello; 0: 5000 */
    int reconnect_ms;         /* how long a lost worker socket is retried; 0: 5000 */
    int single_connection;    /* 1: use only the main socket (no per-worker connections) */
} sc_options;

/* What hello told us (from the main connection). Strings belong to the client. */
typedef struct {
    unsigned protocol;
    char version[32];
    unsigned workers;
    unsigned worker;          /* worker that answered on the main socket */
    uint64_t max_frame, max_request_body, max_response_body, pool_capacity;
    unsigned max_race;
} sc_server_info;

typedef struct {
    const char *name, *value;
} sc_header;

/* A request to run. The library copies everything at sc_submit; the caller's memory may be
 * reused as soon as sc_submit returns. */
typedef struct {
    const char *url;
    const char *method;        /* NULL: "GET" */
    const sc_header *headers;
    size_t n_headers;
    const void *body;          /* NULL: none */
    size_t body_len;
    uint32_t timeout_ms;       /* sent only if has_timeout; 0 = no deadline */
    uint32_t max_attempts;     /* sent only if has_max_attempts; 0 = unlimited */
    uint32_t race_width;       /* 0: the daemon's choice; else 1..64 */
    int has_timeout, has_max_attempts;
    const char *session;       /* NULL or "": none; else a sticky session name, 1..63 bytes */
} sc_request;

/* One task's result. Owned by the caller after sc_next_result: free with sc_result_free. */
typedef struct {
    uint64_t id;               /* as returned by sc_submit */
    void *user;                /* as given to sc_submit */
    int ok;
    scatter_err error;              /* ERR_OK if ok; ERR_INTERNAL for codes this library does not know */
    char code[32];             /* wire code: "ok", "timeout", ... or "disconnected" (see below) */
    char *message;             /* "" if ok */
    char *host;                /* failure only; "" otherwise */
    char *last_error;          /* failure only; "" otherwise */
    char *proxy;               /* success only; "" otherwise */
    unsigned status;           /* HTTP status on success */
    sc_header *headers;        /* response headers on success */
    size_t n_headers;
    uint8_t *body;             /* response body on success (NUL-terminated for convenience) */
    size_t body_len;
    uint64_t attempts, race, latency_ms, elapsed_ms;
    unsigned resubmits;        /* times the library resubmitted it (pool_full, lost connection) */
} sc_result;

/* Connects to the main socket, says hello, opens the worker connections.
 * -ECONNREFUSED / -ENOENT ...: cannot reach the daemon; -EPROTO: hello failed; -EPERM: a
 * socket is served by a process of another user (neither root nor ours, by SO_PEERCRED), so
 * nothing was sent to it; err names the uid and the path. */
int sc_client_open(const sc_options *opt, sc_client **out, char *err, size_t errcap);
void sc_client_free(sc_client *c);
const sc_server_info *sc_client_info(const sc_client *c);
/* Connections currently carrying tasks (after fallbacks). */
unsigned sc_client_connections(const sc_client *c);
unsigned sc_client_window(const sc_client *c);
/* Tasks submitted and not yet returned by sc_next_result. */
unsigned sc_client_outstanding(const sc_client *c);

/* Queues one task. 0 and *id; -EAGAIN if `window` tasks are outstanding (take results first);
 * -EINVAL if the request is unusable (no url, race_width > 64, > 128 headers);
 * -EMSGSIZE if the request exceeds max_frame or its body max_request_body. */
int sc_submit(sc_client *c, const sc_request *req, void *user, uint64_t *id, char *err, size_t errcap);

/* Waits up to timeout_ms for the next finished task. 1 and *out (free it with
 * sc_result_free); 0 on timeout; -ENOENT if nothing is outstanding; other negative errno
 * on failure. When every connection is lost for good, each remaining task is returned as a
 * failure with code "disconnected" (error ERR_INTERNAL), so the one-result promise still holds. */
int sc_next_result(sc_client *c, int timeout_ms, sc_result **out);
void sc_result_free(sc_result *r);

/* Asks for a task's end. The task still yields exactly one result, normally with
 * code "cancelled" (or its real result if that was already on the way). -ENOENT if the id is
 * not outstanding or its result is already waiting in the client. */
int sc_cancel(sc_client *c, uint64_t id);

/* Low-level: sends `request` (a map, packed as given; its id should be below 2^32, the
 * library's task ids are above) on the control connection and waits for the reply with the
 * same id. On 0, *reply holds the unpacked reply: the caller owns it and must call
 * msgpack_unpacked_destroy. Task results arriving meanwhile are kept for sc_next_result. */
int sc_call_object(sc_client *c, const msgpack_object *request, int timeout_ms, msgpack_unpacked *reply,
                   char *err, size_t errcap);
/* Same, for {op, id: <fresh>} plus optional limit/offset/host (proxies); pass 0/NULL to omit. */
int sc_call(sc_client *c, const char *op, uint32_t limit, uint32_t offset, const char *host, int timeout_ms,
            msgpack_unpacked *reply, char *err, size_t errcap);

/* The pieces other transports reuse (the Redis stream, ctl/redis_fetch.c): the submit map of
 * req with id `id` (docs/PROTOCOL.md 4.2) in a fresh sb (0 or -ENOMEM: sb then holds nothing),
 * and a result from a submit reply (NULL: out of memory). */
int sc_pack_submit(const sc_request *req, uint64_t id, msgpack_sbuffer *sb);
sc_result *sc_result_decode(uint64_t id, void *user, const msgpack_object *reply);

/* The socket path: explicit_path if set, else $SCATTER_SOCKET, else the daemon's default,
 * scatter.sock in its runtime directory: /run/scatter when we run as root, else
 * $XDG_RUNTIME_DIR/scatter (common/paths.h). Copied to out; 0, or -ENOENT (not root and
 * XDG_RUNTIME_DIR unset) / -ENAMETOOLONG with a message in err. */
int sc_socket_path(const char *explicit_path, char *out, size_t cap, char *err, size_t errcap);

#endif
