/* Error code table: the wire strings are part of the protocol (docs/PROTOCOL.md). */
#include "common/error.h"
#include <string.h>

static const struct { const char *code, *text; } ERRS[SC_ERR_COUNT] = {
    [SC_OK] = {"ok", "success"},
    [SC_BAD_REQUEST] = {"bad_request", "the request is malformed or not allowed"},
    [SC_POOL_FULL] = {"pool_full", "the task pool is at capacity; retry later"},
    [SC_CIRCUIT_OPEN] = {"circuit_open", "the target host's circuit breaker is open"},
    [SC_MAX_ATTEMPTS] = {"max_attempts", "every allowed attempt failed"},
    [SC_TIMEOUT] = {"timeout", "the task's deadline passed before a proxy succeeded"},
    [SC_CANCELLED] = {"cancelled", "the task was cancelled"},
    [SC_TOO_LARGE] = {"too_large", "the request or the response exceeds a size limit"},
    [SC_SHUTTING_DOWN] = {"shutting_down", "the daemon is shutting down"},
    [SC_INTERNAL] = {"internal", "internal error in the daemon"},
    [SC_TOO_MANY_CLIENTS] = {"too_many_clients", "the worker has max_clients connections; retry later"},
};

const char *sc_err_code(sc_err e)
{
    return (unsigned)e < SC_ERR_COUNT ? ERRS[e].code : "internal";
}

const char *sc_strerror(sc_err e)
{
    return (unsigned)e < SC_ERR_COUNT ? ERRS[e].text : "unknown error";
}

sc_err sc_err_from_code(const char *s, unsigned len)
{
    for (int i = 0; i < SC_ERR_COUNT; i++)
        if (strlen(ERRS[i].code) == len && memcmp(ERRS[i].code, s, len) == 0)
            return (sc_err)i;
    return SC_ERR_COUNT;
}
