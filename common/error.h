/*
 * scatter's error codes: one enum, one fixed string per code (the wire `error` field), one
 * human sentence. Every reply and log line carries the code and a detail message.
 */
#ifndef SCATTER_COMMON_ERROR_H
#define SCATTER_COMMON_ERROR_H

typedef enum {
    SC_OK = 0,
    SC_BAD_REQUEST,
    SC_POOL_FULL,
    SC_CIRCUIT_OPEN,
    SC_MAX_ATTEMPTS,
    SC_TIMEOUT,
    SC_CANCELLED,
    SC_TOO_LARGE,
    SC_SHUTTING_DOWN,
    SC_INTERNAL,
    SC_TOO_MANY_CLIENTS,
    SC_ERR_COUNT
} sc_err;

/* Wire code: "bad_request", "pool_full", ... ("ok" for SC_OK). */
const char *sc_err_code(sc_err e);
/* One human sentence for the code. */
const char *sc_strerror(sc_err e);
/* Parses a wire code; SC_ERR_COUNT if unknown. */
sc_err sc_err_from_code(const char *s, unsigned len);

#endif
