/* The leak scan's lookup keys of identifying values (policy/leakscan.py).
 *
 * Input: values already folded to ASCII (policy/text_fold.py; a byte outside ASCII counts as a separator).
 * A value's words are its runs of ASCII letters and digits, lower-cased. The keys of one value are its words
 * joined with nothing between them, so that every separator an attacker might choose (space, '.', '-', '_',
 * camel case, none) gives the same key, and, where they differ from that:
 *   - an e-mail address (holds '@'): its local part's words joined, and the same without a "+tag";
 *   - where the value (an e-mail: its local part without the tag) has two words or more: the last word (a
 *     surname) if it has at least MIN_SURNAME characters, and the last word followed by the others
 *     ("Meier, Anna").
 * A key counts if it has at least min_chars characters (only digits: min_digits) and the value's joined form
 * is not an upstream placeholder.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { MIN_SURNAME = 5 };

static int word_char(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c; }

/* Writes the words of s[from, to) joined to out, lower-cased; returns the bytes written. */
static int64_t joined(const uint8_t *s, int64_t from, int64_t to, uint8_t *out) {
    int64_t written = 0;
    for (int64_t i = from; i < to; i++)
        if (word_char(s[i])) out[written++] = lower(s[i]);
    return written;
}

static int counts(const uint8_t *key, int64_t size, int64_t min_chars, int64_t min_digits) {
    if (size < min_chars) return 0;
    for (int64_t i = 0; i < size; i++)
        if (key[i] < '0' || key[i] > '9') return 1;
    return size >= min_digits;
}

static int is_placeholder(const uint8_t *key, int64_t size, const int32_t *offsets, const uint8_t *data,
                          int64_t placeholders) {
    for (int64_t k = 0; k < placeholders; k++) {
        int64_t place_size = (int64_t)offsets[k + 1] - offsets[k];
        if (place_size == size && memcmp(data + offsets[k], key, (size_t)size) == 0) return 1;
    }
    return 0;
}

/* Keeps the key just written at out_data + *written (size bytes) if it counts and differs from the value's
 * joined form (at out_data + base, base_size bytes; pass base_size -1 for the joined form itself). */
static void keep(uint8_t *out_data, int64_t *written, int32_t *out_offsets, int64_t *keys, int64_t size,
                 int64_t base, int64_t base_size, int64_t min_chars, int64_t min_digits) {
    uint8_t *key = out_data + *written;
    if (!counts(key, size, min_chars, min_digits)) return;
    if (base_size == size && memcmp(out_data + base, key, (size_t)size) == 0) return;
    *written += size;
    out_offsets[++*keys] = (int32_t)*written;
}

/* For each non-null value, its keys (see above) one after another in out_data with out_offsets[keys + 1];
 * out_data must hold 5 times the values' bytes. placeholders: lower-case joined forms. Returns the number of
 * keys. */
int64_t odeus_leak_keys(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                        int64_t count, int64_t min_chars, int64_t min_digits, const int32_t *placeholder_offsets,
                        const uint8_t *placeholder_data, int64_t placeholders, uint8_t *out_data,
                        int32_t *out_offsets) {
    int64_t keys = 0, written = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (arrow_is_null(validity, bit_offset + i)) continue;
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        int64_t base = written;
        int64_t size = joined(s, 0, n, out_data + written);
        if (!counts(out_data + base, size, min_chars, min_digits) ||
            is_placeholder(out_data + base, size, placeholder_offsets, placeholder_data, placeholders))
            continue;
        written += size;
        out_offsets[++keys] = (int32_t)written;
        int64_t at = -1;
        for (int64_t p = 0; p < n; p++)
            if (s[p] == '@') at = p;
        int64_t name_end = n; /* the part that may be a name: an e-mail's local part without its +tag */
        if (at >= 0) {
            name_end = at;
            for (int64_t p = 0; p < at; p++)
                if (s[p] == '+') {
                    name_end = p;
                    break;
                }
            int64_t local = joined(s, 0, at, out_data + written);
            keep(out_data, &written, out_offsets, &keys, local, base, size, min_chars, min_digits);
            if (name_end < at) {
                int64_t untagged = joined(s, 0, name_end, out_data + written);
                keep(out_data, &written, out_offsets, &keys, untagged, base, size, min_chars, min_digits);
            }
        }
        int64_t words = 0, last_start = -1, last_end = -1;
        for (int64_t p = 0; p < name_end; p++) {
            if (word_char(s[p]) && (p == 0 || !word_char(s[p - 1]))) {
                words++;
                last_start = p;
            }
            if (word_char(s[p])) last_end = p + 1;
        }
        if (words < 2) continue;
        int64_t surname = joined(s, last_start, last_end, out_data + written);
        if (surname < MIN_SURNAME) continue;
        int64_t start = written;
        keep(out_data, &written, out_offsets, &keys, surname, base, size, min_chars, min_digits);
        if (written == start) continue;
        memcpy(out_data + written, out_data + start, (size_t)surname);
        int64_t rest = joined(s, 0, last_start, out_data + written + surname);
        keep(out_data, &written, out_offsets, &keys, surname + rest, base, size, min_chars, min_digits);
    }
    return keys;
}
