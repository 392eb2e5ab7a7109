/*
 * The HTTP front end: scatter as an HTTP proxy. Every worker listens on http_listen with
 * SO_REUSEPORT (the kernel spreads clients over the workers). A plain-HTTP request in
 * absolute form (GET http://host/path HTTP/1.1), or GET /fetch?url=<percent-encoded URL>,
 * becomes a task of the same task layer the msgpack front end feeds (same pool, queues,
 * races, rate limits, classifier, retries, deadline); its result goes back as the HTTP
 * response, its failure as a 4xx/5xx naming the error (docs/HTTP.md). One request of a
 * connection runs at a time: pipelined requests wait in order, so responses keep it.
 * Parsing is libhttp-parser's.
 */
#ifndef SCATTER_WORKER_HTTP_H
#define SCATTER_WORKER_HTTP_H

#include "worker/worker.h"

/* Opens this worker's listening socket on cfg->http_listen (nothing if empty). 0 or -errno,
 * logged. */
int http_listen_start(worker_ctx *w);
/* Stops accepting (the socket closes; live connections finish or are cancelled). */
void http_listen_stop(worker_ctx *w);
/* Closes every HTTP connection at once (their tasks are cancelled). */
void http_close_all(worker_ctx *w);
/* The worker stops: every live task of an HTTP client is answered 503 shutting_down and each
 * connection closes once its response is written. */
void http_shutdown_all(worker_ctx *w);

#endif
