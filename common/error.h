/*
 * scatter's error codes: one enum, one fixed string per code (the wire `error` field), one
 * human sentence. Every reply and log line carries the code and a detail message.
 */
#ifndef SCATTER_COMMON_ERROR_H
#define SCATTER_COMMON_ERROR_H

typedef enum {
    ERR_OK = 0,
    ERR_BAD_REQUEST,
    ERR_POOL_FULL,
    ERR_CIRCUIT_OPEN,
    ERR_MAX_ATTEMPTS,
    ERR_TIMEOUT,
    ERR_CANCELLED,
    ERR_TOO_LARGE,
    ERR_SHUTTING_DOWN,
    ERR_INTERNAL,
    ERR_TOO_MANY_CLIENTS,
    ERR_DEAD_LETTER,
    ERR_COUNT
} scatter_err;

/* Wire code: "bad_request", "pool_full", ... ("ok" for ERR_OK). */
const char *err_code(scatter_err e);
/* One human sentence for the code. */
const char *err_text(scatter_err e);
/* Parses a wire code; ERR_COUNT if unknown. */
scatter_err err_from_code(const char *s, unsigned len);

#endif
