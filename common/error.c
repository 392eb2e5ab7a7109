/* Error code table: the wire strings are part of the protocol (docs/PROTOCOL.md). */
#include "common/error.h"
#include <string.h>

static const struct { const char *code, *text; } ERRS[ERR_COUNT] = {
    [ERR_OK] = {"ok", "success"},
    [ERR_BAD_REQUEST] = {"bad_request", "the request is malformed or not allowed"},
    [ERR_POOL_FULL] = {"pool_full", "the task pool is at capacity; retry later"},
    [ERR_CIRCUIT_OPEN] = {"circuit_open", "the target host's circuit breaker is open"},
    [ERR_MAX_ATTEMPTS] = {"max_attempts", "every allowed attempt failed"},
    [ERR_TIMEOUT] = {"timeout", "the task's deadline passed before a proxy succeeded"},
    [ERR_CANCELLED] = {"cancelled", "the task was cancelled"},
    [ERR_TOO_LARGE] = {"too_large", "the request or the response exceeds a size limit"},
    [ERR_SHUTTING_DOWN] = {"shutting_down", "the daemon is shutting down"},
    [ERR_INTERNAL] = {"internal", "internal error in the daemon"},
    [ERR_TOO_MANY_CLIENTS] = {"too_many_clients", "the worker has max_clients connections; retry later"},
    [ERR_DEAD_LETTER] = {"dead_letter", "a stream task delivered redis_max_deliveries times was never answered"},
};

const char *err_code(scatter_err e)
{
    return (unsigned)e < ERR_COUNT ? ERRS[e].code : "internal";
}

const char *err_text(scatter_err e)
{
    return (unsigned)e < ERR_COUNT ? ERRS[e].text : "unknown error";
}

scatter_err err_from_code(const char *s, unsigned len)
{
    for (int i = 0; i < ERR_COUNT; i++)
        if (strlen(ERRS[i].code) == len && memcmp(ERRS[i].code, s, len) == 0)
            return (scatter_err)i;
    return ERR_COUNT;
}
