/*
 * The smallest useful scatter client: fetch the URLs given on the command line through the
 * daemon and print one line per result. Build: the sc_example_minimal target.
 *   sc_example_minimal https://example.com/ https://example.org/
 */
#include <stdio.h>

#include "ctl/scatter_client.h"

int main(int argc, char **argv)
{
    sc_client *c;
    char err[256];
    /* socket_path NULL: $SCATTER_SOCKET or the daemon's default (sc_socket_path); window 0: the
     * daemon's pool x 2 */
    sc_options opt = {0};
    if (sc_client_open(&opt, &c, err, sizeof err)) {
        fprintf(stderr, "cannot connect: %s\n", err);
        return 3;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        sc_request req = {.url = argv[i]};
        /* a real program would wait for a result when sc_submit says -EAGAIN (window full) */
        if (sc_submit(c, &req, argv[i], NULL, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", argv[i], err);
            failed = 1;
        }
    }
    sc_result *r;
    while (sc_next_result(c, -1, &r) == 1) {
        if (r->ok)
            printf("%s: HTTP %u, %zu bytes via %s in %llu ms\n", (const char *)r->user, r->status, r->body_len,
                   r->proxy, (unsigned long long)r->elapsed_ms);
        else
            printf("%s: %s (%s)\n", (const char *)r->user, r->code, r->message), failed = 1;
        sc_result_free(r);
    }
    sc_client_free(c);
    return failed;
}
