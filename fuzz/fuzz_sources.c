/*
 * A fetched proxy list, handled the way master/sources.c handles one: cut into lines at '\n'
 * (the whole buffer, NUL bytes included: they are part of the hostile input), each line
 * through paddr_parse, private addresses told apart with paddr_is_private, and each accepted
 * proxy added to a small shared table (reg_proxy_add), which is what the master does with it.
 * src_refresh itself is not called: it needs a master (sources, config, curl) and, after
 * issue 10, name resolution, which a fuzzer must not do.
 *
 * Checked besides the sanitizers:
 *  - a refused line leaves no credentials behind in the output (proxy_addr.c promises it);
 *  - the canonical form (paddr_format) of an accepted line parses again to the same canonical
 *    form: it is the dedupe key and the state file's key, and persist_load parses it back;
 *  - the same proxy written both ways lands in one table slot;
 *  - the redacted form hides a password.
 */
#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PROXIES 64

static void fail(const char *what, const char *line, size_t len, const char *canon)
{
    fprintf(stderr, "fuzz_sources: %s\n  line: '%.*s'\n  canonical: '%s'\n", what, (int)len, line,
            canon ? canon : "");
    abort();
}

static void one_line(shm_table *t, const char *line, size_t len)
{
    shm_proxy_addr a;
    /* poison the output so a result that leaves stale bytes is visible */
    memset(&a, 0xa5, sizeof a);
    paddr_result r = paddr_parse(line, len, &a);
    (void)paddr_strerror(r);
    if (r != PADDR_OK) {
        if (r != PADDR_SKIP && (r < PADDR_SYNTAX || r > PADDR_SKIP))
            fail("result outside paddr_result", line, len, NULL);
        if (a.user[0] || a.pass[0] || a.host[0] || a.port)
            fail("a refused line left fields set", line, len, NULL);
        return;
    }
    if (!a.host[0] || !a.port || a.scheme > PROXY_HTTP)
        fail("accepted without host, port or a known scheme", line, len, NULL);
    (void)paddr_is_private(&a);

    char canon[1024], again[1024], red[1024];
    if (paddr_format(&a, canon, sizeof canon) < 0)
        fail("accepted line has no canonical form", line, len, NULL);
    shm_proxy_addr b;
    paddr_result rb = paddr_parse(canon, strlen(canon), &b);
    if (rb != PADDR_OK)
        fail("canonical form does not parse", line, len, canon);
    if (paddr_format(&b, again, sizeof again) < 0 || strcmp(canon, again) != 0)
        fail("canonical form is not stable", line, len, canon);
    if (paddr_is_private(&a) != paddr_is_private(&b))
        fail("the canonical form changes the private-address verdict", line, len, canon);
    if (paddr_format_redacted(&a, red, sizeof red) < 0)
        fail("no redacted form", line, len, canon);
    if (a.user[0]) {
        char cred[2 * SHM_CRED_MAX + 4];
        snprintf(cred, sizeof cred, ":%s@", a.pass);
        if (strcmp(a.pass, "***") != 0 && strstr(red, cred) != NULL)
            fail("the redacted form shows the password", line, len, canon);
    }

    uint32_t i1 = SHM_NONE, i2 = SHM_NONE;
    int rc = reg_proxy_add(t, &a, 1, 1, 1000, &i1);
    if (rc == -ENOSPC)
        return;
    if (rc < 0)
        fail("reg_proxy_add failed", line, len, canon);
    if (reg_proxy_add(t, &b, 2, 1, 1001, &i2) != 0 || i1 != i2 || reg_proxy_find(t, &a) != i1)
        fail("the line and its canonical form are two proxies", line, len, canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shm_table t;
    int rc = shm_create(&t, FUZZ_MAX_PROXIES, 4);
    if (rc != 0) {
        fprintf(stderr, "fuzz_sources: shm_create: %s\n", strerror(-rc));
        abort();
    }
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* each line in its own allocation of exactly its length: a read past the line is an
         * ASan report, not a silent look at the next line */
        char *line = malloc(len ? len : 1);
        if (!line)
            abort();
        memcpy(line, p, len);
        one_line(&t, line, len);
        free(line);
        p = nl ? nl + 1 : end;
    }
    shm_destroy(&t);
    return 0;
}
