/*
 * scatter.ini as the daemon reads it: cfg_load on a file holding the input (a memfd, named by
 * its /proc/self/fd path, so nothing touches the disk). A file that loads is then used the
 * ways the daemon uses a config: the effective settings printed (--print-config), a host
 * looked up, and the reload check against the defaults.
 *
 * Checked besides the sanitizers: an error always comes with a message, and the printed
 * effective config of a file that loaded loads again to the same settings (--print-config
 * output is meant to be a working scatter.ini), unless a string value holds a '"', which
 * iniparser's syntax cannot express.
 */
#include "common/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    char *text;
    size_t len;
} printed;

static int load_bytes(scatter_config *c, const void *data, size_t size, char *err, size_t cap)
{
    int fd = memfd_create("fuzz_config.ini", MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz_config: memfd_create");
        abort();
    }
    const char *p = data;
    size_t left = size;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            perror("fuzz_config: write");
            abort();
        }
        p += w;
        left -= (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    err[0] = '\0';
    int rc = cfg_load(c, path, err, cap);
    close(fd);
    return rc;
}

/* iniparser has no escapes: a double-quoted value ends at the next '"', so a string setting
 * that holds one cannot be printed as a value that loads back. Such configs are left out of
 * the round trip (and still go through everything else). */
static int printable_as_ini(const printed *o)
{
    const char *line = o->text, *end = o->text + o->len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *q = memchr(line, '"', (size_t)(le - line));
        if (line[0] != ';' && q && le - q >= 2 && le[-1] == '"' && memchr(q + 1, '"', (size_t)(le - q - 2)))
            return 0;
        line = nl ? nl + 1 : end;
    }
    return 1;
}

static printed print_effective(const scatter_config *c)
{
    printed o = {0};
    FILE *f = open_memstream(&o.text, &o.len);
    if (!f)
        abort();
    cfg_print(c, f, 1);
    fclose(f);
    return o;
}

/* What the daemon does with a config that loaded; aborts on a broken promise. */
static void use_loaded(const scatter_config *c)
{
    (void)cfg_host_for(c, "example.com");
    if (c->n_hosts)
        (void)cfg_host_for(c, c->hosts[c->n_hosts - 1].name);
    scatter_config *other = malloc(sizeof *other);
    if (!other)
        abort();
    cfg_defaults(other);
    char changed[1024];
    scatter_config *merged = malloc(sizeof *merged);
    if (!merged)
        abort();
    (void)cfg_reload_merge(other, c, merged, changed, sizeof changed);
    free(merged);

    printed first = print_effective(c);
    if (printable_as_ini(&first)) {
        char err[1024];
        if (load_bytes(other, first.text, first.len, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_config: the effective config printed for a file that loads does not load: %s\n"
                            "--- printed ---\n%s\n", err, first.text);
            abort();
        }
        printed second = print_effective(other);
        if (first.len != second.len || memcmp(first.text, second.text, first.len) != 0) {
            fprintf(stderr, "fuzz_config: printing, loading and printing again changes the settings\n"
                            "--- first ---\n%s\n--- second ---\n%s\n", first.text, second.text);
            abort();
        }
        free(second.text);
    }
    free(first.text);
    free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* on the stack (cfg_print keeps one there too): a fresh 1.4 MB heap block per run, never
     * reused soon because of ASan's quarantine, made the run four times slower in page faults */
    scatter_config c;
    char err[1024];
    if (load_bytes(&c, data, size, err, sizeof err) == 0) {
        use_loaded(&c);
    } else if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0') {
        fprintf(stderr, "fuzz_config: cfg_load failed without a message\n");
        abort();
    }
    return 0;
}
