/* HMAC-SHA-256 pseudonym tokens for a whole column at once.
 *
 * Called through ctypes (which releases the GIL), one call per batch of distinct values: the per-value cost
 * in Python (two hash-state copies, three digests, base32) was the policy engine's largest single cost.
 * Plain C with no Python API, so nothing here can leak a reference or touch the interpreter.
 *
 * SHA-256 (FIPS 180-4) twice: with the x86 SHA extensions when the CPU has them, else in portable C. The
 * tests compare both with Python's hashlib and the token with policy.crypto.format_token.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define ODEUS_X86 1
#endif

#include "arrow_view.h"

#ifndef ODEUS_NATIVE_SOURCE
#define ODEUS_NATIVE_SOURCE "unknown"
#endif

/* Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
    0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
    0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Initial state: the fractional parts of the square roots of the first eight primes. */
static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

typedef void (*compress_fn)(uint32_t h[8], const uint8_t block[64]);

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t h[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        const uint8_t *p = block + 4 * i;
        w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

#ifdef ODEUS_X86
/* The SHA extensions keep the state as two registers, ABEF and CDGH, and do two rounds per instruction. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_sha_extensions(uint32_t h[8],
                                                                                const uint8_t block[64]) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i low = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);  /* CDAB */
    __m128i high = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B); /* EFGH */
    __m128i abef = _mm_alignr_epi8(low, high, 8);
    __m128i cdgh = _mm_blend_epi16(high, low, 0xF0);
    const __m128i abef_start = abef, cdgh_start = cdgh;
    __m128i w[4]; /* the last four groups of four schedule words */
    for (int i = 0; i < 16; i++) {
        __m128i words;
        if (i < 4) {
            words = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * i)), byte_swap);
        } else {
            /* W[t..t+3] = sigma1 part (msg2) of W[t-16] + sigma0(W[t-15]) (msg1) + W[t-7] */
            __m128i partial = _mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i - 3) & 3]),
                                            _mm_alignr_epi8(w[(i - 1) & 3], w[(i - 2) & 3], 4));
            words = _mm_sha256msg2_epu32(partial, w[(i - 1) & 3]);
        }
        w[i & 3] = words;
        __m128i message = _mm_add_epi32(words, _mm_load_si128((const __m128i *)&K[4 * i]));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(message, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_start);
    cdgh = _mm_add_epi32(cdgh, cdgh_start);
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(feba, dchg, 0xF0)); /* DCBA: h0..h3 */
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(dchg, feba, 8));    /* HGFE: h4..h7 */
}

static int cpu_has_sha_extensions(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return ssse3 && sse41 && ((ebx >> 29) & 1);
}
#endif

static compress_fn choose(int portable) {
#ifdef ODEUS_X86
    if (!portable && cpu_has_sha_extensions()) return compress_sha_extensions;
#endif
    (void)portable;
    return compress_portable;
}

typedef struct {
    uint32_t h[8];
    uint8_t buffer[64];
    size_t used;     /* bytes in buffer */
    uint64_t length; /* bytes hashed so far, buffer included */
    compress_fn compress;
} sha256;

static void sha256_start(sha256 *s, compress_fn compress) {
    memcpy(s->h, H0, sizeof H0);
    s->used = 0;
    s->length = 0;
    s->compress = compress;
}

static void sha256_add(sha256 *s, const uint8_t *data, size_t size) {
    if (size == 0) return; /* data may then be NULL (an empty Arrow buffer) */
    s->length += size;
    if (s->used) {
        size_t take = 64 - s->used < size ? 64 - s->used : size;
        memcpy(s->buffer + s->used, data, take);
        s->used += take;
        data += take;
        size -= take;
        if (s->used < 64) return;
        s->compress(s->h, s->buffer);
        s->used = 0;
    }
    for (; size >= 64; data += 64, size -= 64) s->compress(s->h, data);
    memcpy(s->buffer, data, size);
    s->used = size;
}

static void sha256_digest(sha256 *s, uint8_t out[32]) {
    uint64_t bits = s->length * 8;
    s->buffer[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->buffer + s->used, 0, 64 - s->used);
        s->compress(s->h, s->buffer);
        s->used = 0;
    }
    memset(s->buffer + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++) s->buffer[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    s->compress(s->h, s->buffer);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static const char BASE32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* The first `chars` base32 characters (RFC 4648 alphabet, lower case) of a 32-byte MAC. */
static void base32_head(const uint8_t mac[32], uint8_t *out, int chars) {
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

EXPORT const char *odeus_native_source(void) { return ODEUS_NATIVE_SOURCE; }

EXPORT int odeus_native_sha_extensions(void) { return choose(0) != compress_portable; }

/* SHA-256 of one message (for the tests of both implementations). */
EXPORT void odeus_sha256(const uint8_t *data, size_t size, uint8_t out[32], int portable) {
    sha256 s;
    sha256_start(&s, choose(portable));
    sha256_add(&s, data, size);
    sha256_digest(&s, out);
}

/* For each of `count` strings (Arrow layout: offsets[count + 1] into data), the token
 *   token_prefix + first `chars` base32 characters of HMAC-SHA-256(key, message_prefix + string)
 * written to out_data at i * (token_prefix_size + chars), with out_offsets[count + 1] to match.
 * The caller sizes the outputs; the offsets are those of an array Arrow built (so in range). Returns 0, or -1
 * on bad sizes. */
EXPORT int odeus_hmac_tokens(const uint8_t *key, size_t key_size, const uint8_t *message_prefix,
                             size_t message_prefix_size, const int32_t *offsets, const uint8_t *data,
                             int64_t count, const uint8_t *token_prefix, size_t token_prefix_size, int chars,
                             uint8_t *out_data, int32_t *out_offsets, int portable) {
    if (chars < 1 || chars > 51 || count < 0) return -1;
    compress_fn compress = choose(portable);
    uint8_t block[64] = {0};
    if (key_size > 64) {
        sha256 s;
        sha256_start(&s, compress);
        sha256_add(&s, key, key_size);
        sha256_digest(&s, block);
    } else {
        memcpy(block, key, key_size);
    }
    uint8_t pad[64];
    sha256 inner, outer;
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    sha256_start(&inner, compress);
    sha256_add(&inner, pad, 64);
    sha256_add(&inner, message_prefix, message_prefix_size);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    sha256_start(&outer, compress);
    sha256_add(&outer, pad, 64);
    memset(block, 0, sizeof block);
    memset(pad, 0, sizeof pad);

    const int64_t width = (int64_t)token_prefix_size + chars;
    uint8_t digest[32];
    for (int64_t i = 0; i < count; i++) {
        sha256 s = inner;
        sha256_add(&s, data + offsets[i], (size_t)(offsets[i + 1] - offsets[i]));
        sha256_digest(&s, digest);
        s = outer;
        sha256_add(&s, digest, 32);
        sha256_digest(&s, digest);
        uint8_t *token = out_data + i * width;
        memcpy(token, token_prefix, token_prefix_size);
        base32_head(digest, token + token_prefix_size, chars);
        out_offsets[i] = (int32_t)(i * width);
    }
    out_offsets[count] = (int32_t)(count * width);
    memset(digest, 0, sizeof digest);
    memset(&inner, 0, sizeof inner);
    memset(&outer, 0, sizeof outer);
    return 0;
}
