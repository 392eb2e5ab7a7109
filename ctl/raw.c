/* raw: one request given as JSON, the reply printed as JSON (debugging and shell tests). */
#include <getopt.h>
#include <stdio.h>

#include "ctl/cli.h"
#include "ctl/jsonconv.h"

int cmd_raw(const char *sock, int argc, char **argv)
{
    static const struct option L[] = {{"json", no_argument, 0, 'j'}, {"timeout", required_argument, 0, 't'}, {0, 0, 0, 0}};
    int compact = 0, ch;
    uint64_t timeout_ms = 60000;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:jt:", L, NULL)) != -1) {
        if (ch == 'j')
            compact = 1;
        else if (ch == 't') {
            if (cli_seconds_ms("raw", "--timeout", optarg, &timeout_ms))
                return EXIT_USAGE;
        } else
            return cli_bad_option("raw", ch, argv);
    }
    if (optind != argc - 1)
        return cli_usage_error("raw", optind >= argc ? "missing JSON_MAP" : "unexpected argument '%s'",
                               optind < argc ? argv[optind + 1] : "");
    json_error_t jerr;
    json_t *req = json_loads(argv[optind], 0, &jerr);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        return cli_usage_error("raw", "JSON_MAP '%s' is not a JSON object%s%s", argv[optind], req ? "" : ": ",
                               req ? "" : jerr.text);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jc_to_msgpack(req, &pk);
    json_decref(req);
    msgpack_unpacked obj;
    msgpack_unpacked_init(&obj);
    size_t off = 0;
    /* the unpacked request points into sb: both live until the call is done */
    msgpack_unpack_next(&obj, sb.data, sb.size, &off);

    sc_client *c;
    int rc = cli_connect(sock, "raw", 1, 1, &c);
    if (rc) {
        msgpack_unpacked_destroy(&obj);
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    msgpack_unpacked reply;
    char err[256];
    rc = sc_call_object(c, &obj.data, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms, &reply, err, sizeof err);
    msgpack_unpacked_destroy(&obj);
    msgpack_sbuffer_destroy(&sb);
    if (rc) {
        fprintf(stderr, "scatterctl raw: %s\n", err);
        sc_client_free(c);
        return EXIT_FAILED;
    }
    json_t *j = jc_from_msgpack(&reply.data, JC_BIN_BASE64);
    json_dumpf(j, stdout, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    json_decref(j);
    msgpack_unpacked_destroy(&reply);
    sc_client_free(c);
    return EXIT_OK;
}
