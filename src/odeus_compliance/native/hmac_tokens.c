/* HMAC-SHA-256 pseudonym tokens for a whole column at once, with OpenSSL's libcrypto.
 *
 * Called without the GIL (cffi releases it), one call per batch of distinct values: the per-value cost in
 * Python (hash-state copies, digests, base32) was the policy engine's largest single cost. The MAC itself is
 * OpenSSL's (EVP_MAC "HMAC" over SHA-256); this file only walks the Arrow column and writes base32. The
 * tests compare every token with Python's hmac and the RFC 4231 vectors.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "odeus_native.h"

#ifndef ODEUS_NATIVE_SOURCE
#define ODEUS_NATIVE_SOURCE "unknown"
#endif

enum { MAC_SIZE = 32, MAX_CHARS = 51 };

static const char BASE32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* The first `chars` base32 characters (RFC 4648 alphabet, lower case) of a 32-byte MAC. */
static void base32_head(const uint8_t mac[MAC_SIZE], uint8_t *out, int chars) {
    uint32_t pending = 0;
    int bits = 0, next = 0;
    for (int k = 0; k < chars; k++) {
        if (bits < 5) {
            pending = (pending << 8) | mac[next++];
            bits += 8;
        }
        bits -= 5;
        out[k] = (uint8_t)BASE32[(pending >> bits) & 31];
        pending &= (1u << bits) - 1;
    }
}

const char *odeus_native_source(void) { return ODEUS_NATIVE_SOURCE; }

/* A context keyed once: each value restarts it with EVP_MAC_init(NULL key), which OpenSSL implements as a
 * copy of the already padded key's state, so the key's two blocks are hashed once per call, not per value. */
static EVP_MAC_CTX *keyed_context(const uint8_t *key, size_t key_size) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *context = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (context == NULL) return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* OpenSSL takes a NULL key as "keep the previous one": an empty key needs a non-NULL pointer */
    static const uint8_t no_key = 0;
    if (EVP_MAC_init(context, key_size ? key : &no_key, key_size, params) != 1) {
        EVP_MAC_CTX_free(context);
        return NULL;
    }
    return context;
}

/* HMAC(key, prefix + value) into digest, from a context keyed by keyed_context. */
static int one_mac(EVP_MAC_CTX *context, const uint8_t *prefix, size_t prefix_size, const uint8_t *value,
                   size_t size, uint8_t digest[MAC_SIZE]) {
    size_t written = 0;
    return EVP_MAC_init(context, NULL, 0, NULL) == 1 &&
           (prefix_size == 0 || EVP_MAC_update(context, prefix, prefix_size) == 1) &&
           (size == 0 || EVP_MAC_update(context, value, size) == 1) &&
           EVP_MAC_final(context, digest, &written, MAC_SIZE) == 1 && written == MAC_SIZE;
}

int odeus_hmac_tokens(const uint8_t *key, size_t key_size, const uint8_t *message_prefix,
                      size_t message_prefix_size, const int32_t *offsets, const uint8_t *data, int64_t count,
                      const uint8_t *token_prefix, size_t token_prefix_size, int chars, uint8_t *out_data,
                      int32_t *out_offsets) {
    if (chars < 1 || chars > MAX_CHARS || count < 0) return -1;
    EVP_MAC_CTX *context = keyed_context(key, key_size);
    if (context == NULL) return -2;
    const int64_t width = (int64_t)token_prefix_size + chars;
    uint8_t digest[MAC_SIZE];
    int status = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!one_mac(context, message_prefix, message_prefix_size, data + offsets[i],
                     (size_t)(offsets[i + 1] - offsets[i]), digest)) {
            status = -2;
            break;
        }
        uint8_t *token = out_data + i * width;
        memcpy(token, token_prefix, token_prefix_size);
        base32_head(digest, token + token_prefix_size, chars);
        out_offsets[i] = (int32_t)(i * width);
    }
    out_offsets[count] = (int32_t)(count * width);
    OPENSSL_cleanse(digest, sizeof digest);
    EVP_MAC_CTX_free(context);
    return status;
}
