/*
 * bench_open.c — open-loop msgpack client for scripts/bench.sh (docs/BENCHMARKS.md §6).
 *
 *   bench_open -s SOCKET -u URLS -o OUT.jsonl -r RATE [-t LIMIT_S]
 *
 * Submits URL i (0-based) at t0 + i / RATE seconds whatever is still in flight, through the
 * client library (ctl/scatter_client.h), and writes one JSON line per task:
 * {"n":N,"ok":B,"status":S,"attempts":A,"elapsed_ms":E,"daemon_ms":D,"error":"code"}.
 * elapsed_ms is measured here, from the submission to the result's arrival, the same way
 * bench_curl proxy -r measures the front door; daemon_ms is the daemon's own elapsed_ms.
 * `scatterctl fetch -i -` cannot serve as this driver: it submits until its window is full
 * before it flushes, so paced input still reaches the daemon in batches.
 * A task that the window (the daemon's pool x 2) refuses is submitted as soon as a result
 * frees a slot; its latency still counts from its scheduled time. After LIMIT_S seconds the
 * unfinished tasks are written as not ok.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_lines.h"
#include "ctl/scatter_client.h"

int main(int argc, char **argv)
{
    const char *sock = NULL, *uf = NULL, *out = NULL;
    double rate = 0, limit_s = 600;
    int c;
    while ((c = getopt(argc, argv, "s:u:o:r:t:")) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'u': uf = optarg; break;
        case 'o': out = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 't': limit_s = atof(optarg); break;
        default: return 2;
        }
    }
    if (!sock || !uf || !out || rate <= 0) {
        fprintf(stderr, "usage: bench_open -s SOCKET -u URLS -o OUT.jsonl -r RATE [-t LIMIT_S]\n");
        return 2;
    }
    size_t n;
    char **urls = read_lines(uf, &n);
    FILE *fo = fopen(out, "w");
    if (!fo) {
        perror(out);
        return 2;
    }
    char err[256];
    sc_client *cl;
    sc_options opt = {.socket_path = sock};
    if (sc_client_open(&opt, &cl, err, sizeof err)) {
        fprintf(stderr, "bench_open: %s: %s\n", sock, err);
        return 3;
    }
    int *done = calloc(n ? n : 1, sizeof *done);
    double t0 = now_ms(), limit_ms = limit_s * 1e3;
    size_t next = 0, finished = 0;
    while (finished < n && now_ms() - t0 < limit_ms) {
        while (next < n && now_ms() >= t0 + (double)next * 1e3 / rate) {
            sc_request req = {.url = urls[next]};
            int rc = sc_submit(cl, &req, (void *)(uintptr_t)next, NULL, err, sizeof err);
            if (rc == -EAGAIN)
                break; /* window full: retried once a result has been taken */
            if (rc) {
                fprintf(fo, "{\"n\":%zu,\"ok\":false,\"status\":0,\"attempts\":0,\"elapsed_ms\":null,"
                            "\"daemon_ms\":null,\"error\":\"refused\"}\n", next + 1);
                done[next] = 1;
                finished++;
            }
            next++;
        }
        int wait = 100;
        if (next < n) {
            double due = t0 + (double)next * 1e3 / rate - now_ms();
            wait = due <= 0 ? 0 : due < 100 ? (int)due + 1 : 100;
        }
        sc_result *r;
        int rc = sc_next_result(cl, wait, &r);
        if (rc == 1) {
            size_t i = (size_t)(uintptr_t)r->user;
            double sched = t0 + (double)i * 1e3 / rate;
            fprintf(fo, "{\"n\":%zu,\"ok\":%s,\"status\":%u,\"attempts\":%llu,\"elapsed_ms\":%.2f,"
                        "\"daemon_ms\":%llu,\"error\":\"%s\"}\n",
                    i + 1, r->ok ? "true" : "false", r->status, (unsigned long long)r->attempts,
                    now_ms() - sched, (unsigned long long)r->elapsed_ms, r->code);
            done[i] = 1;
            finished++;
            sc_result_free(r);
        } else if (rc < 0 && rc != -ENOENT) {
            fprintf(stderr, "bench_open: %s\n", strerror(-rc));
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!done[i])
            fprintf(fo, "{\"n\":%zu,\"ok\":false,\"status\":0,\"attempts\":0,\"elapsed_ms\":null,"
                        "\"daemon_ms\":null,\"error\":\"unfinished\"}\n", i + 1);
    fclose(fo);
    sc_client_free(cl);
    return 0;
}
