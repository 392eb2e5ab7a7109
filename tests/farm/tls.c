/*
 * tls.c — the server context of the farm's TLS targets (--tls-target).
 *
 * Why: scatter fetches https URLs too (through CONNECT tunnels and per-host ca_file), and
 * those paths need a target that speaks TLS and still measures the per-source interval. The
 * HTTPS target is the plain target behind a TLS layer (target.c); this file only builds the
 * one SSL_CTX they share.
 *
 * The certificate is either the operator's (--tls-cert/--tls-key, PEM) or generated at start:
 * an EC P-256 key and a self-signed certificate whose CN is the first TLS target's IP and
 * whose subjectAltName lists every TLS target IP, so a client that trusts DIR/tls-ca.pem
 * (curl --cacert) verifies the target by the address it dialled. The key never leaves the
 * process; a fresh one is made on every start, so no secret sits in the repository or in DIR.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#define CERT_DAYS 365
#define SESSION_CACHE 1024

/* The first queued OpenSSL error as text (and the queue emptied), for one clear message. */
static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "unknown OpenSSL error";
    ERR_error_string_n(e, buf, n);
    return buf;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* "IP:a,IP:b": every distinct TLS target address once. */
static void san_list(const struct farm *f, char *out, size_t n, char *first, size_t flen)
{
    size_t len = 0;
    out[0] = first[0] = '\0';
    for (unsigned i = 0; i < f->o.ntargets; i++) {
        if (!f->o.target_tls[i])
            continue;
        bool seen = false;
        for (unsigned j = 0; j < i; j++)
            seen |= f->o.target_tls[j] &&
                    f->o.targets[j].sin_addr.s_addr == f->o.targets[i].sin_addr.s_addr;
        if (seen)
            continue;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &f->o.targets[i].sin_addr, ip, sizeof ip);
        if (!first[0])
            snprintf(first, flen, "%s", ip);
        len += (size_t)snprintf(out + len, n - len, "%sIP:%s", len ? "," : "", ip);
    }
}

/* A self-signed certificate for the TLS target addresses; also the CA clients trust. */
static int generate(struct farm *f, SSL_CTX *ctx, char *err, size_t errlen)
{
    char why[256];
    char san[FARM_MAX_TARGETS * 24], cn[INET_ADDRSTRLEN];
    san_list(f, san, sizeof san, cn, sizeof cn);
    int rc = -EIO;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    BIO *mem = BIO_new(BIO_s_mem());
    if (!key || !x || !serial || !mem) {
        snprintf(err, errlen, "cannot create the TLS key and certificate: %s",
                 ssl_reason(why, sizeof why));
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || !BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400) ||
        !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"scatter-farm",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) ||
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
        add_ext(x, NID_subject_alt_name, san) < 0 || !X509_sign(x, key, EVP_sha256())) {
        snprintf(err, errlen, "cannot build the self-signed certificate for %s: %s", san,
                 ssl_reason(why, sizeof why));
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        snprintf(err, errlen, "cannot use the generated certificate: %s",
                 ssl_reason(why, sizeof why));
        goto out;
    }
    char *pem;
    long plen;
    if (!PEM_write_bio_X509(mem, x) || (plen = BIO_get_mem_data(mem, &pem)) <= 0) {
        snprintf(err, errlen, "cannot encode the certificate as PEM: %s",
                 ssl_reason(why, sizeof why));
        goto out;
    }
    f->tls_ca_pem = strndup(pem, (size_t)plen);
    if (!f->tls_ca_pem) {
        snprintf(err, errlen, "out of memory for the certificate");
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
out:
    BIO_free(mem);
    BN_free(serial);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static int load(struct farm *f, SSL_CTX *ctx, char *err, size_t errlen)
{
    char why[256];
    if (SSL_CTX_use_certificate_chain_file(ctx, f->o.tls_cert) != 1) {
        snprintf(err, errlen, "bad value '%s' for --tls-cert: cannot load a PEM certificate: %s",
                 f->o.tls_cert, ssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, f->o.tls_key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "bad value '%s' for --tls-key: cannot load a PEM private key: %s",
                 f->o.tls_key, ssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "bad value '%s' for --tls-key: it does not match --tls-cert '%s'",
                 f->o.tls_key, f->o.tls_cert);
        ERR_clear_error();
        return -EINVAL;
    }
    return 0;
}

int tls_setup(struct farm *f, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create the TLS context: %s", ssl_reason(why, sizeof why));
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A client that closes without close_notify ends the stream like a TCP FIN does on the
     * plain target; renegotiation is a second handshake an attacker could drive forever. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* Partial writes drain the response buffer like send(); released buffers keep an idle
     * keep-alive connection near the plain target's footprint. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE);
    int rc = f->o.tls_cert ? load(f, ctx, err, errlen) : generate(f, ctx, err, errlen);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    f->tls_ctx = ctx;
    return 0;
}

void tls_free(struct farm *f)
{
    SSL_CTX_free(f->tls_ctx);
    f->tls_ctx = NULL;
    free(f->tls_ca_pem);
    f->tls_ca_pem = NULL;
}
