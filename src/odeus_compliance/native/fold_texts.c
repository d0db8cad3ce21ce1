/* The leak scan's ASCII fold of texts, with a table of code points filled by Python (policy/text_fold.py).
 *
 * Folding is per code point (policy/text_fold.py says how each one folds), so a text's fold is its code
 * points' folds joined. ASCII folds here: letters to lower case, digits as they are, everything else to a
 * space. Other code points are looked up in a table of `slots` entries of SLOT bytes each: slot_lengths[c]
 * is the fold's length, or UNKNOWN (not computed yet) or TOO_LONG (longer than a slot). A value holding such
 * a code point, or one beyond the table, is flagged unresolved; unknown code points are reported (each at
 * most once per call) so that Python can compute them and call again. With keep_punctuation, the ASCII
 * characters that tell the parts of a name or address apart (',' '@' '+' '\'') are kept as they are, and
 * the apostrophes U+2019, U+2018 and U+02BC read as '\'', for native/leak_keys.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { SLOT = 8, UNKNOWN = 255, TOO_LONG = 254 };

/* The code point at s[*at] of valid UTF-8 (Arrow checked it), advancing past it. */
static uint32_t read_char(const uint8_t *s, int64_t n, int64_t *at) {
    uint8_t b = s[*at];
    if (b < 0x80) {
        *at += 1;
        return b;
    }
    int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
    if (*at + extra >= n) { /* cut short by the value's end: never in checked text */
        *at = n;
        return 0xFFFD;
    }
    uint32_t c = b & (0x3F >> extra);
    for (int k = 1; k <= extra; k++) c = (c << 6) | (s[*at + k] & 0x3F);
    *at += 1 + extra;
    return c;
}

static uint8_t ascii_fold(uint8_t c, int keep_punctuation) {
    if (c >= 'A' && c <= 'Z') return (uint8_t)(c + ('a' - 'A'));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return c;
    if (keep_punctuation && (c == ',' || c == '@' || c == '+' || c == '\'')) return c;
    return ' ';
}

/* Folds every non-null value into out_data (4 times the values' bytes at most: a code point of 2 bytes or
 * more folds to at most SLOT), out_offsets[count + 1];
 * unresolved[i] = 1 where value i needs Python. missing: up to missing_capacity distinct unknown code points
 * below `slots`, their number in *missing_count (a bitmap of seen ones is kept in `seen`, slots / 8 bytes,
 * zeroed by the caller). Returns the number of unresolved values. */
int64_t odeus_fold_texts(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                         int64_t count, const uint8_t *slot_lengths, const uint8_t *slot_data, int64_t slots,
                         int keep_punctuation, uint8_t *out_data, int32_t *out_offsets, uint8_t *unresolved,
                         uint32_t *missing, int64_t missing_capacity, int64_t *missing_count, uint8_t *seen) {
    int64_t written = 0, flagged = 0;
    *missing_count = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        unresolved[i] = 0;
        if (!arrow_is_null(validity, bit_offset + i)) {
            const uint8_t *s = data + offsets[i];
            int64_t n = (int64_t)offsets[i + 1] - offsets[i], at = 0;
            while (at < n) {
                uint32_t c = read_char(s, n, &at);
                if (c < 0x80) {
                    out_data[written++] = ascii_fold((uint8_t)c, keep_punctuation);
                    continue;
                }
                if (keep_punctuation && (c == 0x2019 || c == 0x2018 || c == 0x02BC)) {
                    out_data[written++] = '\'';
                    continue;
                }
                uint8_t length = c < (uint32_t)slots ? slot_lengths[c] : UNKNOWN;
                if (length == UNKNOWN || length == TOO_LONG) {
                    unresolved[i] = 1;
                    if (length == UNKNOWN && c < (uint32_t)slots && !((seen[c >> 3] >> (c & 7)) & 1) &&
                        *missing_count < missing_capacity) {
                        seen[c >> 3] |= (uint8_t)(1u << (c & 7));
                        missing[(*missing_count)++] = c;
                    }
                    continue;
                }
                memcpy(out_data + written, slot_data + (int64_t)c * SLOT, length);
                written += length;
            }
        }
        flagged += unresolved[i];
        out_offsets[i + 1] = (int32_t)written;
    }
    return flagged;
}
