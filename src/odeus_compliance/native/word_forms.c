/* The leak scan's word forms of identifying values, for the values that are plain ASCII words.
 *
 * The leak scan compares identifying input values (names, e-mails, ids) with the output in one "word form"
 * (policy/leakscan.py). Most values are ASCII and already words separated by single spaces once lower-cased
 * (usr_0218c0204ac1, anna.meier@example.com, anna meier): their form is their lower case. This finds those
 * in one pass, with the rule of which forms count (long enough, not a short number, not a placeholder), and
 * leaves every other value (non-ASCII, other separators, empty) to the general path in Arrow.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

enum { FORM_NOT_COUNTED = 0, FORM_COUNTED = 1, FORM_GENERAL = 2 };

static int is_alnum(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static int is_word_inner(uint8_t c) {
    return is_alnum(c) || c == '_' || c == '\'' || c == '.' || c == '@' || c == '+' || c == '-';
}

/* Whether lower-cased ASCII text is words of [a-z0-9] (inner characters also _'.@+-) joined by single
 * spaces: the form the general path would leave unchanged. */
static int is_simple(const uint8_t *s, int64_t n) {
    int64_t p = 0;
    while (p < n) {
        int64_t start = p;
        while (p < n && s[p] != ' ') {
            if (!is_word_inner(s[p])) return 0;
            p++;
        }
        if (p == start || !is_alnum(s[start]) || !is_alnum(s[p - 1])) return 0;
        if (p < n) {
            p++; /* one space, then another word must follow */
            if (p == n) return 0;
        }
    }
    return n > 0;
}

static int is_null(const uint8_t *validity, int64_t bit) {
    return validity != NULL && !((validity[bit >> 3] >> (bit & 7)) & 1);
}

/* For each value: flags[i] = 1 if its form is its ASCII lower case and counts (at least min_chars long;
 * only digits: at least min_digits; not one of the placeholders), 0 if it is null or such a form that does
 * not count, 2 if the general path must decide. The counted forms are written one after another to
 * out_data with out_offsets[counted + 1]; placeholders: an Arrow string array of lower-case texts. out_data
 * needs the values' bytes at most. Returns the number of counted forms. */
EXPORT int64_t odeus_ascii_word_forms(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                                      int64_t bit_offset, int64_t count, int64_t min_chars, int64_t min_digits,
                                      const int32_t *placeholder_offsets, const uint8_t *placeholder_data,
                                      int64_t placeholders, uint8_t *flags, uint8_t *out_data,
                                      int32_t *out_offsets) {
    int64_t counted = 0, written = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (is_null(validity, bit_offset + i)) {
            flags[i] = FORM_NOT_COUNTED;
            continue;
        }
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        uint8_t *form = out_data + written;
        int ascii = 1, digits = 1;
        for (int64_t p = 0; p < n; p++) {
            uint8_t c = s[p];
            if (c >= 0x80) {
                ascii = 0;
                break;
            }
            if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + ('a' - 'A'));
            if (c < '0' || c > '9') digits = 0;
            form[p] = c;
        }
        if (!ascii || !is_simple(form, n)) {
            flags[i] = FORM_GENERAL;
            continue;
        }
        int counts = n >= min_chars && (!digits || n >= min_digits);
        for (int64_t k = 0; counts && k < placeholders; k++) {
            int64_t size = (int64_t)placeholder_offsets[k + 1] - placeholder_offsets[k];
            if (size == n && memcmp(placeholder_data + placeholder_offsets[k], form, (size_t)n) == 0) counts = 0;
        }
        flags[i] = counts ? FORM_COUNTED : FORM_NOT_COUNTED;
        if (counts) {
            written += n;
            out_offsets[++counted] = (int32_t)written;
        }
    }
    return counted;
}
