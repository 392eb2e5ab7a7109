/*
 * msgpack <-> JSON for scatterctl's --json output and its `raw` command.
 * JSON has no binary type: bin values become base64 strings or are left out (callers choose).
 */
#ifndef SCATTER_CTL_JSONCONV_H
#define SCATTER_CTL_JSONCONV_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { JC_BIN_BASE64, JC_BIN_OMIT } jc_bin_mode;

/* New reference, never NULL unless out of memory. Non-string map keys are rendered as their
 * JSON text; str values that are not valid UTF-8 get U+FFFD for each bad byte; ext becomes null. */
json_t *jc_from_msgpack(const msgpack_object *o, jc_bin_mode bin);

/* Packs a JSON value: integers stay integers (negative as int), reals as float64. 0 or -1. */
int jc_to_msgpack(const json_t *j, msgpack_packer *pk);

/* A JSON string from arbitrary bytes (invalid UTF-8 becomes U+FFFD). */
json_t *jc_string(const char *s, size_t n);

/* Base64 (RFC 4648, with padding) of n bytes into a new NUL-terminated string. */
char *jc_base64(const void *data, size_t n);

/* Decodes base64 (RFC 4648 alphabet, padding optional) of n characters into a new buffer
 * (*out, *len; free it). 0, -EINVAL on a character outside the alphabet or a bad length,
 * -ENOMEM. */
int jc_unbase64(const char *s, size_t n, uint8_t **out, size_t *len);

#endif
