/*
 * mix.c — which proxy behaves how, decided deterministically.
 *
 * Why its own file: reproducibility is the point of a testing ground. A test that fails with
 * --seed 7 must see the very same farm when re-run: the same behaviour on the same port, the
 * same shuffled proxies.txt. Everything random in the farm therefore draws from the small
 * seeded generator below, never from rand() or the clock.
 *
 * --mix takes percentages (rounded to whole proxies by largest remainder, so they always add
 * up to --proxies) or, with --mix-counts, exact counts.
 */
#include "farm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const beh_names[BEH_COUNT] = {
    [BEH_GOOD] = "good",         [BEH_SLOW] = "slow",     [BEH_FLAKY] = "flaky",
    [BEH_REFUSE] = "refuse",     [BEH_BLACKHOLE] = "blackhole", [BEH_BANNED] = "banned",
    [BEH_CAPTCHA] = "captcha",   [BEH_CUT] = "cut",
};

const char *behaviour_name(enum behaviour b)
{
    return (unsigned)b < BEH_COUNT ? beh_names[b] : "?";
}

int behaviour_from_name(const char *name, size_t len)
{
    for (int i = 0; i < BEH_COUNT; i++)
        if (strlen(beh_names[i]) == len && memcmp(beh_names[i], name, len) == 0)
            return i;
    return -1;
}

void rng_seed(struct rng *r, uint64_t seed)
{
    /* splitmix64 step so that small seeds (0, 1, 2) give unrelated streams. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545F4914F6CDD1Dull;
}

uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    /* Rejection sampling removes modulo bias. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rng_next(r);
    } while (x >= lim);
    return x % n;
}

double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0; /* 2^53 */
}

int mix_parse(const char *spec, bool as_counts, unsigned *nproxies, unsigned counts[BEH_COUNT],
              char *err, size_t errlen)
{
    unsigned long val[BEH_COUNT] = {0};
    bool seen[BEH_COUNT] = {false};
    const char *p = spec;
    unsigned long sum = 0;

    if (!*p) {
        snprintf(err, errlen, "--mix: empty specification");
        return -1;
    }
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end) {
            snprintf(err, errlen, "--mix: '%.*s' is not NAME=VALUE", (int)(end - p), p);
            return -1;
        }
        int b = behaviour_from_name(p, (size_t)(eq - p));
        if (b < 0) {
            snprintf(err, errlen,
                     "--mix: unknown behaviour '%.*s' (good, slow, flaky, refuse, blackhole, "
                     "banned, captcha)",
                     (int)(eq - p), p);
            return -1;
        }
        if (seen[b]) {
            snprintf(err, errlen, "--mix: behaviour '%s' given twice", beh_names[b]);
            return -1;
        }
        seen[b] = true;
        char *num_end;
        errno = 0;
        if (eq + 1 == end || eq[1] < '0' || eq[1] > '9') {
            snprintf(err, errlen, "--mix: bad value '%.*s' for %s", (int)(end - eq - 1), eq + 1,
                     beh_names[b]);
            return -1;
        }
        unsigned long v = strtoul(eq + 1, &num_end, 10);
        if (errno || num_end != end || v > FARM_MAX_PROXIES) {
            snprintf(err, errlen, "--mix: bad value '%.*s' for %s", (int)(end - eq - 1), eq + 1,
                     beh_names[b]);
            return -1;
        }
        val[b] = v;
        sum += v;
        p = *end ? end + 1 : end;
    }

    if (as_counts) {
        if (*nproxies == 0)
            *nproxies = (unsigned)sum;
        if (sum != *nproxies || sum == 0) {
            snprintf(err, errlen, "--mix '%s': counts add up to %lu but --proxies is %u", spec,
                     sum, *nproxies);
            return -1;
        }
        for (int i = 0; i < BEH_COUNT; i++)
            counts[i] = (unsigned)val[i];
        return 0;
    }

    if (sum != 100) {
        snprintf(err, errlen, "--mix '%s': percentages add up to %lu, not 100 (or use --mix-counts)",
                 spec, sum);
        return -1;
    }
    /* Largest remainder: floor every share, hand the leftovers to the largest fractions
     * (ties go to the earlier behaviour, so the result is deterministic). */
    unsigned long rem[BEH_COUNT];
    unsigned given = 0;
    for (int i = 0; i < BEH_COUNT; i++) {
        unsigned long scaled = val[i] * *nproxies;
        counts[i] = (unsigned)(scaled / 100);
        rem[i] = scaled % 100;
        given += counts[i];
    }
    while (given < *nproxies) {
        int best = 0;
        for (int i = 1; i < BEH_COUNT; i++)
            if (rem[i] > rem[best])
                best = i;
        counts[best]++;
        rem[best] = 0;
        given++;
    }
    return 0;
}

void mix_assign(const unsigned counts[BEH_COUNT], enum behaviour *out, unsigned n, struct rng *r)
{
    unsigned k = 0;
    for (int b = 0; b < BEH_COUNT; b++)
        for (unsigned j = 0; j < counts[b] && k < n; j++)
            out[k++] = (enum behaviour)b;
    while (k < n)
        out[k++] = BEH_GOOD;
    for (unsigned i = n; i > 1; i--) { /* Fisher-Yates */
        unsigned j = (unsigned)rng_below(r, i);
        enum behaviour t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}
