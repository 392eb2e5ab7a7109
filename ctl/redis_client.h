/*
 * A client of the Redis task stream (docs/SCALING.md, docs/PROTOCOL.md "Redis transport"),
 * shaped like the socket client (scatter_client.h) so `scatterctl fetch --redis` runs the same
 * loop over either. Synchronous hiredis: a command line tool may block.
 *
 * Tasks are XADDed to the stream with reply_to = a stream of our own
 * (scatter:reply:<host>:<pid>:<random>), results are read from it with XREAD BLOCK and
 * deleted once read, and the reply stream is removed by rq_free. A task may be answered twice
 * (an instance died after running it and another claimed it): the first result per task id is
 * kept, later ones are counted and dropped. pool_full answers are resubmitted after a
 * growing, jittered pause, like the socket client. A lost connection to Redis is retried for
 * RQ_RECONNECT_MS; tasks whose XADD was not confirmed are then added again.
 */
#ifndef SCATTER_CTL_REDIS_CLIENT_H
#define SCATTER_CTL_REDIS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ctl/scatter_client.h"

#define RQ_RECONNECT_MS 60000

typedef struct rq_client rq_client;

/* Connects (url: redis://[:password@]host[:port][/db]) and names the reply stream. window:
 * tasks outstanding at most (0: 1000). 0, or negative errno with the reason in err. */
int rq_open(const char *url, const char *stream, unsigned window, rq_client **out, char *err, size_t errcap);
/* Deletes the reply stream (best effort) and frees everything. */
void rq_free(rq_client *c);
unsigned rq_window(const rq_client *c);
unsigned rq_outstanding(const rq_client *c);
/* Results that came for a task already answered (dropped). */
uint64_t rq_duplicates(const rq_client *c);
const char *rq_reply_stream(const rq_client *c);
/* Queues one task (sent with the next rq_next_result). 0; -EAGAIN: the window is full;
 * -EINVAL: no url; -ENOMEM. */
int rq_submit(rq_client *c, const sc_request *req, void *user, char *err, size_t errcap);
/* As sc_next_result: 1 and *out; 0 on timeout; -ENOENT if nothing is outstanding; -EIO when
 * Redis stayed unreachable for RQ_RECONNECT_MS (err says why). */
int rq_next_result(rq_client *c, int timeout_ms, sc_result **out, char *err, size_t errcap);

#endif
