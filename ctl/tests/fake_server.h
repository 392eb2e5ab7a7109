/*
 * A fake scatterd for the ctl tests: a forked child listening on a main socket and NW worker
 * sockets under /tmp, speaking just enough of the protocol (hello, submit echoing the url as the
 * body, cancel, status), with switchable misbehaviour. It dies with the test process.
 */
#ifndef SCATTER_CTL_TESTS_FAKE_SERVER_H
#define SCATTER_CTL_TESTS_FAKE_SERVER_H

#define NW 2

typedef struct {
    int pool_full_first;   /* every task's first submit is answered pool_full */
    int drop_after;        /* worker 1: close its first connection after this many submits */
    int drop_forever;      /* ... and remove worker 1's socket for good */
    int hold_slow;         /* urls containing "slow" are answered only when cancelled */
} fake_cfg;

extern char g_sock[108];  /* the main socket path of the running fake */

void start_server(fake_cfg cfg); /* fails the current test if it does not come up */
void stop_server(void);

#endif
