/*
 * CONNECT tunnels of the HTTP front end (docs/HTTP.md, "CONNECT"). A tunnel is not a task: the
 * daemon cannot read what flows inside (TLS), so it cannot classify or retry once bytes have
 * flowed. What it keeps is the rate limit: the (proxy, host) pair's slot is claimed when the
 * tunnel is requested, the SOCKS connects race over K proxies (first to complete wins, the
 * others are closed before anything reaches the target), and inside the tunnel every
 * client-to-target burst that follows target-to-client data is taken as a new request and held
 * until the pair's slot frees again (and claimed), so a kept-alive tunnel is paced like
 * separate tasks.
 */
#ifndef SCATTER_WORKER_TUNNEL_H
#define SCATTER_WORKER_TUNNEL_H

#include <curl/curl.h>
#include <stddef.h>

#include "worker/worker.h"

/* Takes over client socket cfd after a CONNECT to `target` ("host:port", the host key) for
 * host h (the caller counted a live task of h: the tunnel gives it back when it ends).
 * `early` holds bytes the client sent after the CONNECT head. The tunnel answers the client
 * itself: 200 Connection established, or an error status. */
void tunnel_open(worker_ctx *w, int cfd, host_rt *h, const char *target, const char *early, size_t early_len);
/* libcurl finished the SOCKS connect of one leg (worker/race.c's check_done). */
void tunnel_leg_done(worker_ctx *w, void *leg, CURLcode rc);
/* Closes every tunnel (worker exit). */
void tunnel_close_all(worker_ctx *w);

#endif
