/*
 * The Redis stream as a front end of the task layer (docs/SCALING.md; the entry format is
 * docs/PROTOCOL.md, "Redis transport"): each worker is a consumer of the group `scatter` on
 * `redis_stream`, runs each entry as an ordinary task, writes the result to the entry's
 * reply_to stream and acknowledges the entry. hiredis on the worker's libev loop; nothing
 * here blocks the loop.
 */
#ifndef SCATTER_WORKER_REDIS_H
#define SCATTER_WORKER_REDIS_H

#include "worker/worker.h"

/* Starts the consumer if redis_url is set (a host name is resolved here, before the loop
 * runs). 0, or -1 when it cannot run in this worker (logged; the other front ends serve). */
int redis_front_start(worker_ctx *w);
/* Called once per loop iteration: reads more entries when there is room. */
void redis_front_poll(worker_ctx *w);
/* The worker stops: no more reading or claiming; running stream tasks finish or are left
 * unacknowledged for another instance to claim. */
void redis_front_stop(worker_ctx *w);
/* The grace period is over: stream tasks still running end unanswered and unacknowledged. */
void redis_front_abandon(worker_ctx *w);
/* 1 while results or acknowledgements are still being written (the final flush waits). */
int redis_front_busy(const worker_ctx *w);
/* Frees everything (the loop has ended). */
void redis_front_free(worker_ctx *w);

#endif
