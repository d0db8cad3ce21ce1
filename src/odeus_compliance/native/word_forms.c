/* The leak scan's word forms of identifying values, for the values that are already plain words.
 *
 * The leak scan compares identifying input values (names, e-mails, ids) with the output in one "word form"
 * (policy/leakscan.py). Most values, once lower-cased (by Arrow), are words joined by single spaces
 * (usr_0218c0204ac1, anna.meier@example.com, björn fischer): their form is their lower case, ß as ss. This
 * finds those in one pass, with the rule of which forms count (long enough, not a short number, not a
 * placeholder), and leaves every other value (other separators, scripts not classified here, empty) to
 * the general path in Arrow.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { FORM_NOT_COUNTED = 0, FORM_COUNTED = 1, FORM_GENERAL = 2 };
enum { CHAR_OTHER = 0, CHAR_ALNUM = 1, CHAR_INNER = 2, CHAR_SHARP_S = 3 };

/* What one character of lower-cased text is to a word: a letter, mark or digit (\p{L}, \p{M}, \p{N}) that
 * may begin and end a word, an inner character (_'.@+-), or anything else (the general path decides).
 * Beyond ASCII only ranges that are letters, marks or digits throughout: Latin-1's letters, Latin
 * Extended-A, -B and Additional, the combining diacritical marks, Greek's letters, Cyrillic but for U+0482,
 * Arabic's letters, marks and digits, kana, the CJK ideographs of Unicode 8, Hangul syllables. ß is a
 * letter whose form is "ss". A test
 * compares every one of these characters with the general path. */
static int char_class(uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return CHAR_ALNUM;
    if (c == '_' || c == '\'' || c == '.' || c == '@' || c == '+' || c == '-') return CHAR_INNER;
    if (c < 0xC0) return CHAR_OTHER;
    if (c == 0xDF) return CHAR_SHARP_S;
    if (c <= 0xFF) return (c == 0xD7 || c == 0xF7) ? CHAR_OTHER : CHAR_ALNUM;
    if (c <= 0x24F) return CHAR_ALNUM;
    if (c >= 0x300 && c <= 0x36F) return CHAR_ALNUM;
    if (c == 0x386 || (c >= 0x388 && c <= 0x3CE && c != 0x38B && c != 0x38D && c != 0x3A2)) return CHAR_ALNUM;
    if (c >= 0x400 && c <= 0x4FF && c != 0x482) return CHAR_ALNUM;
    if (c >= 0x1E00 && c <= 0x1EFF) return CHAR_ALNUM; /* Latin Extended Additional (Vietnamese) */
    if ((c >= 0x620 && c <= 0x669) || (c >= 0x66E && c <= 0x6D3)) return CHAR_ALNUM; /* Arabic */
    if ((c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) || c == 0x30FC) return CHAR_ALNUM;
    if (c >= 0x4E00 && c <= 0x9FD5) return CHAR_ALNUM; /* CJK ideographs of Unicode 8 */
    if (c >= 0xAC00 && c <= 0xD7A3) return CHAR_ALNUM; /* Hangul syllables */
    return CHAR_OTHER;
}

/* The code point at s[*at] (valid UTF-8: Arrow checked it), advancing past it; a sequence cut short by the
 * value's end (never in checked text) reads as U+FFFD, which no word holds. */
static uint32_t next_char(const uint8_t *s, int64_t n, int64_t *at) {
    uint8_t b = s[*at];
    if (b < 0x80) {
        *at += 1;
        return b;
    }
    int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
    if (*at + extra >= n) {
        *at = n;
        return 0xFFFD;
    }
    uint32_t c = b & (0x3F >> extra);
    for (int k = 1; k <= extra; k++) c = (c << 6) | (s[*at + k] & 0x3F);
    *at += 1 + extra;
    return c;
}

/* The form of one lower-cased value, written to out (at most 2 bytes per byte of ß, else as long as the
 * value): its words joined by single spaces as they are, ß as ss. Returns its length in characters, or -1 if
 * the value is not such words (the general path decides); *digits: whether it is only ASCII digits. */
static int64_t simple_form(const uint8_t *s, int64_t n, uint8_t *out, int64_t *out_size, int *digits) {
    int64_t p = 0, written = 0, chars = 0;
    int previous = -1; /* class of the previous character; -1 at a word's start */
    *digits = 1;
    while (p < n) {
        int64_t start = p;
        uint32_t c = next_char(s, n, &p);
        if (c == ' ') {
            if (previous != CHAR_ALNUM && previous != CHAR_SHARP_S) return -1; /* a word must end in one */
            if (p == n) return -1;
            out[written++] = ' ';
            chars++;
            previous = -1;
            *digits = 0;
            continue;
        }
        int kind = char_class(c);
        if (kind == CHAR_OTHER || (previous == -1 && kind == CHAR_INNER)) return -1;
        if (c < '0' || c > '9') *digits = 0;
        if (kind == CHAR_SHARP_S) {
            out[written++] = 's';
            out[written++] = 's';
            chars += 2;
        } else {
            memcpy(out + written, s + start, (size_t)(p - start));
            written += p - start;
            chars++;
        }
        previous = kind;
    }
    if (previous != CHAR_ALNUM && previous != CHAR_SHARP_S) return -1; /* empty, or ends in _'.@+- */
    *out_size = written;
    return chars;
}

/* For each lower-cased value: flags[i] = 1 if it is words joined by single spaces (see simple_form) and its
 * form counts (at least min_chars characters; only ASCII digits: at least min_digits; not a placeholder),
 * 0 if it is null or such a form that does not count, 2 if the general path must decide. The counted forms
 * are written one after another to out_data (twice the values' bytes at most) with
 * out_offsets[counted + 1]; placeholders: an Arrow string array of lower-case texts. Returns the number of
 * counted forms. */
int64_t odeus_word_forms(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                                int64_t bit_offset, int64_t count, int64_t min_chars, int64_t min_digits,
                                const int32_t *placeholder_offsets, const uint8_t *placeholder_data,
                                int64_t placeholders, uint8_t *flags, uint8_t *out_data, int32_t *out_offsets) {
    int64_t counted = 0, written = 0;
    out_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (arrow_is_null(validity, bit_offset + i)) {
            flags[i] = FORM_NOT_COUNTED;
            continue;
        }
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i], size = 0;
        uint8_t *form = out_data + written;
        int digits;
        int64_t chars = simple_form(s, n, form, &size, &digits);
        if (chars < 0) {
            flags[i] = FORM_GENERAL;
            continue;
        }
        int counts = chars >= min_chars && (!digits || chars >= min_digits);
        for (int64_t k = 0; counts && k < placeholders; k++) {
            int64_t place_size = (int64_t)placeholder_offsets[k + 1] - placeholder_offsets[k];
            if (place_size == size && memcmp(placeholder_data + placeholder_offsets[k], form, (size_t)size) == 0)
                counts = 0;
        }
        flags[i] = counts ? FORM_COUNTED : FORM_NOT_COUNTED;
        if (counts) {
            written += size;
            out_offsets[++counted] = (int32_t)written;
        }
    }
    return counted;
}
