/* JSON count maps ({"agent_1":12,"agent_2":3}) of a whole column: keys out, mapped keys in, canonical JSON.
 *
 * A cell is handled here when it is a JSON object of whole non-negative counts as Python's json module reads
 * it: white space (space, tab, CR, LF) anywhere between tokens, keys with any escape (\" \\ \/ \b \f \n \r
 * \t \uXXXX, surrogate pairs joined; decoded to UTF-8), keys in any order and even repeated (their counts
 * are summed, as the per-cell path sums them), counts written as JSON numbers whose value is a whole number
 * of at most 18 digits (12, -0, 12.0, 1.2e1). Anything else (invalid JSON, a lone surrogate, a fraction, a
 * negative count, a longer count, an exponent beyond +-9999) is left to the per-cell Python path, which also
 * raises the errors. Three calls per column (see policy/countmaps.py): scan (which cells are handled here,
 * how many pairs), keys (every pair's decoded key, for Arrow to dictionary-encode and Python to map once per
 * distinct key, and its count), build (each cell's counts summed under their mapped keys, in the mapped keys'
 * order, as canonical JSON or as its quoted CSV cell; from the pairs alone, the text is not read again).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { MAX_COUNT_DIGITS = 18, MAX_EXPONENT = 9999 };
static const uint64_t MAX_COUNT = 999999999999999999ULL; /* 18 nines: what one cell's sum may reach */

static inline int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static inline int64_t skip_space(const uint8_t *s, int64_t n, int64_t p) {
    while (p < n && is_space(s[p])) p++;
    return p;
}

/* The four hex digits at s[p]; 0 if there are not four. */
static int hex4(const uint8_t *s, int64_t n, int64_t p, uint32_t *out) {
    if (p + 4 > n) return 0;
    uint32_t value = 0;
    for (int64_t q = p; q < p + 4; q++) {
        uint8_t c = s[q];
        uint32_t digit;
        if (c >= '0' && c <= '9') digit = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') digit = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') digit = (uint32_t)(c - 'A' + 10);
        else return 0;
        value = value << 4 | digit;
    }
    *out = value;
    return 1;
}

/* UTF-8 of a code point (no surrogates), written to out unless NULL; its size. */
static int64_t put_utf8(uint8_t *out, uint32_t c) {
    if (c < 0x80) {
        if (out != NULL) out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        if (out != NULL) {
            out[0] = (uint8_t)(0xC0 | c >> 6);
            out[1] = (uint8_t)(0x80 | (c & 0x3F));
        }
        return 2;
    }
    if (c < 0x10000) {
        if (out != NULL) {
            out[0] = (uint8_t)(0xE0 | c >> 12);
            out[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
            out[2] = (uint8_t)(0x80 | (c & 0x3F));
        }
        return 3;
    }
    if (out != NULL) {
        out[0] = (uint8_t)(0xF0 | c >> 18);
        out[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
        out[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        out[3] = (uint8_t)(0x80 | (c & 0x3F));
    }
    return 4;
}

/* The key string at s[*at] (its opening quote), decoded to UTF-8 into out unless NULL; advances past its
 * closing quote. Returns the decoded size (never more than the text's), or -1 if the text is not a JSON
 * string or holds a lone surrogate (left to Python, which keeps or refuses it). */
static int64_t read_key(const uint8_t *s, int64_t n, int64_t *at, uint8_t *out) {
    int64_t p = *at, size = 0;
    if (p >= n || s[p] != '"') return -1;
    p++;
    for (;;) {
        int64_t run = p;
        while (p < n && s[p] != '"' && s[p] != '\\' && s[p] >= 0x20) p++;
        if (out != NULL) memcpy(out + size, s + run, (size_t)(p - run));
        size += p - run;
        if (p >= n || s[p] < 0x20) return -1; /* unterminated, or a raw control character */
        if (s[p] == '"') break;
        if (p + 1 >= n) return -1;
        uint32_t c;
        switch (s[p + 1]) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                if (!hex4(s, n, p + 2, &c)) return -1;
                p += 4;
                if (c >= 0xDC00 && c <= 0xDFFF) return -1; /* a low surrogate alone */
                if (c >= 0xD800 && c <= 0xDBFF) {          /* a high one: its low one must follow */
                    uint32_t low;
                    if (p + 8 > n || s[p + 2] != '\\' || s[p + 3] != 'u' || !hex4(s, n, p + 4, &low) ||
                        low < 0xDC00 || low > 0xDFFF)
                        return -1;
                    c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                break;
            default: return -1;
        }
        p += 2;
        size += put_utf8(out != NULL ? out + size : NULL, c);
    }
    *at = p + 1;
    return size;
}

/* The JSON number at s[*at] if its value is a whole number in [0, MAX_COUNT] (-0, 12.0 and 1.2e1 are:
 * Python reads them as whole counts too); advances past it. 0 otherwise (the per-cell path decides). The
 * number ends where Python's scanner ends it: "1." and "1e" end before the "." or "e", which the caller then
 * finds where a "," or "}" belongs. */
static int read_count(const uint8_t *s, int64_t n, int64_t *at, uint64_t *value) {
    int64_t p = *at;
    int negative = p < n && s[p] == '-';
    if (negative) p++;
    int64_t int_start = p;
    if (p < n && s[p] == '0') {
        p++;
    } else if (p < n && s[p] >= '1' && s[p] <= '9') {
        while (p < n && is_digit(s[p])) p++;
    } else {
        return 0;
    }
    int64_t int_end = p, frac_start = p, frac_end = p;
    if (p + 1 < n && s[p] == '.' && is_digit(s[p + 1])) {
        frac_start = ++p;
        while (p < n && is_digit(s[p])) p++;
        frac_end = p;
    }
    int64_t exponent = 0;
    if (p + 1 < n && (s[p] == 'e' || s[p] == 'E')) {
        int64_t q = p + 1;
        int exponent_negative = 0;
        if (q < n && (s[q] == '+' || s[q] == '-')) exponent_negative = s[q++] == '-';
        if (q < n && is_digit(s[q])) {
            while (q < n && is_digit(s[q])) {
                if (exponent <= MAX_EXPONENT) exponent = exponent * 10 + (s[q] - '0');
                q++;
            }
            if (exponent > MAX_EXPONENT) return 0;
            if (exponent_negative) exponent = -exponent;
            p = q;
        }
    }
    /* the digits int_start..int_end then frac_start..frac_end, the point moved by the exponent: the first
     * `whole` of them make the integer, every one after it must be 0 */
    int64_t int_digits = int_end - int_start, digits = int_digits + (frac_end - frac_start);
    int64_t whole = int_digits + exponent;
    uint64_t v = 0;
    int significant = 0;
    for (int64_t i = 0; i < digits; i++) {
        int d = (i < int_digits ? s[int_start + i] : s[frac_start + i - int_digits]) - '0';
        if (i >= whole) {
            if (d != 0) return 0; /* a fraction */
            continue;
        }
        if (v == 0 && d == 0) continue;
        if (++significant > MAX_COUNT_DIGITS) return 0;
        v = v * 10 + (uint64_t)d;
    }
    for (int64_t i = digits; i < whole && v != 0; i++) {
        if (++significant > MAX_COUNT_DIGITS) return 0;
        v *= 10;
    }
    if (negative && v != 0) return 0;
    *value = v;
    *at = p;
    return 1;
}

/* One cell: its number of pairs if it is a JSON object of whole counts this file handles, else -1. With
 * key_data, appends each pair's decoded key at key_data + *written and its end to key_ends[pair]; with
 * counts, each pair's count to counts[pair] (room for the pairs the scan found). */
static int32_t walk_cell(const uint8_t *s, int64_t n, uint8_t *key_data, int64_t *written, int32_t *key_ends,
                         uint64_t *counts) {
    int64_t p = skip_space(s, n, 0);
    if (p >= n || s[p] != '{') return -1;
    p = skip_space(s, n, p + 1);
    int32_t pairs = 0;
    if (p < n && s[p] == '}') {
        p++;
    } else {
        for (;;) {
            int64_t size = read_key(s, n, &p, key_data != NULL ? key_data + *written : NULL);
            if (size < 0) return -1;
            p = skip_space(s, n, p);
            if (p >= n || s[p] != ':') return -1;
            p = skip_space(s, n, p + 1);
            uint64_t count;
            if (!read_count(s, n, &p, &count) || pairs == INT32_MAX) return -1;
            if (key_data != NULL) {
                *written += size;
                key_ends[pairs] = (int32_t)*written;
            }
            if (counts != NULL) counts[pairs] = count;
            pairs++;
            p = skip_space(s, n, p);
            if (p < n && s[p] == ',') {
                p = skip_space(s, n, p + 1);
                continue;
            }
            if (p < n && s[p] == '}') {
                p++;
                break;
            }
            return -1;
        }
    }
    return skip_space(s, n, p) == n ? pairs : -1;
}

/* out_pairs[i]: pairs of cell i (0 for a null cell or an empty object), -1 if not handled here. Returns the
 * pairs of the handled cells in all, or -1 if that does not fit Arrow's 32-bit offsets. */
int64_t odeus_count_maps_scan(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                              int64_t bit_offset, int64_t count, int32_t *out_pairs) {
    int64_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        int32_t pairs = arrow_is_null(validity, bit_offset + i)
                            ? 0
                            : walk_cell(data + offsets[i], (int64_t)offsets[i + 1] - offsets[i], NULL, NULL,
                                        NULL, NULL);
        out_pairs[i] = pairs;
        if (pairs > 0) total += pairs;
    }
    return total > INT32_MAX - 1 ? -1 : total;
}

/* Every pair's decoded key, cell after cell, as an Arrow string array: key_offsets[pairs + 1], key_data (at
 * most the cells' bytes: decoding never lengthens a key); and its count, counts[pairs]. Cells with
 * pairs[i] <= 0 are skipped. Returns 0, or -4 if a cell is not what the scan found. */
int odeus_count_maps_keys(const int32_t *offsets, const uint8_t *data, int64_t count, const int32_t *pairs,
                          int32_t *key_offsets, uint8_t *key_data, uint64_t *counts) {
    int64_t k = 0, written = 0;
    key_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (pairs[i] <= 0) continue;
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        if (walk_cell(data + offsets[i], n, key_data, &written, key_offsets + k + 1, counts + k) != pairs[i])
            return -4; /* not the array the scan saw */
        k += pairs[i];
    }
    return 0;
}

typedef struct {
    int32_t rank;
    uint64_t count;
} ranked_pair;

static int64_t decimal_size(uint64_t v) {
    int64_t size = 1;
    while (v >= 10) {
        v /= 10;
        size++;
    }
    return size;
}

static uint8_t *put_decimal(uint8_t *o, uint64_t v, int64_t size) {
    for (int64_t at = size - 1; at >= 0; at--) {
        o[at] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
    return o + size;
}

/* Each handled cell again, from its pairs (pairs[i] of them: per pair its distinct key, key_index, and its
 * count, counts, as the keys call gave them), under the mapped keys (mapped_offsets/mapped_data, by rank:
 * the mapped keys sorted, each as it goes between the quotes: JSON-escaped, and with csv != 0 its quotes
 * doubled too) in rank order, the counts of pairs whose keys map to one summed: {"key":count,...}, or with
 * csv != 0 the quoted CSV cell "{""key"":count,...}". A cell without pairs becomes {} (the caller puts a null
 * cell's null back), an unhandled one (pairs[i] < 0) an empty string. rank: per distinct key. first_row
 * (optional): per distinct key, the lowest cell holding it (caller fills with -1). out_data NULL: only
 * measure. Returns the output's bytes; -1 if a summed count would pass 18 digits (the caller goes cell by
 * cell), -2 if the output would not fit 32-bit offsets, -3 if memory ran out. */
int64_t odeus_count_maps_build(const int32_t *pairs, int64_t count, const uint64_t *counts,
                               const int32_t *key_index, const int32_t *rank, const int32_t *mapped_offsets,
                               const uint8_t *mapped_data, int csv, int32_t *first_row, uint8_t *out_data,
                               int32_t *out_offsets) {
    int32_t most = 0;
    for (int64_t i = 0; i < count; i++)
        if (pairs[i] > most) most = pairs[i];
    ranked_pair *cell_pairs = malloc(sizeof(ranked_pair) * (size_t)(most > 0 ? most : 1));
    if (cell_pairs == NULL) return -3;
    const int quote = csv ? 2 : 1; /* a structural quote is doubled inside a quoted CSV cell */
    int64_t written = 0, k = 0, status = 0;
    for (int64_t i = 0; i < count && status == 0; i++) {
        if (out_offsets != NULL) out_offsets[i] = (int32_t)written;
        if (pairs[i] <= 0) {
            if (pairs[i] == 0) {
                if (out_data != NULL) memcpy(out_data + written, "{}", 2);
                written += 2;
            }
            continue;
        }
        int32_t kept = 0; /* pairs after summing, in rank order: insertion sort, cells hold a handful */
        for (int32_t j = 0; j < pairs[i]; j++, k++) {
            int32_t r = rank[key_index[k]];
            if (first_row != NULL && first_row[key_index[k]] < 0) first_row[key_index[k]] = (int32_t)i;
            int32_t at = kept;
            while (at > 0 && cell_pairs[at - 1].rank > r) at--;
            if (at > 0 && cell_pairs[at - 1].rank == r) {
                cell_pairs[at - 1].count += counts[k]; /* both at most MAX_COUNT: no overflow */
                if (cell_pairs[at - 1].count > MAX_COUNT) status = -1;
                continue;
            }
            memmove(cell_pairs + at + 1, cell_pairs + at, sizeof(ranked_pair) * (size_t)(kept - at));
            cell_pairs[at] = (ranked_pair){r, counts[k]};
            kept++;
        }
        if (status != 0) break;
        int64_t size = csv ? 2 : 0; /* the cell's own quotes */
        size += 2;                  /* { } */
        for (int32_t j = 0; j < kept; j++) {
            int32_t r = cell_pairs[j].rank;
            int64_t key_size = (int64_t)mapped_offsets[r + 1] - mapped_offsets[r];
            size += quote + key_size + quote + 1 + decimal_size(cell_pairs[j].count); /* "key":count */
        }
        size += kept - 1; /* commas */
        if (out_data != NULL) {
            uint8_t *o = out_data + written;
            if (csv) *o++ = '"';
            *o++ = '{';
            for (int32_t j = 0; j < kept; j++) {
                int32_t r = cell_pairs[j].rank;
                if (j > 0) *o++ = ',';
                for (int q = 0; q < quote; q++) *o++ = '"';
                int64_t key_size = (int64_t)mapped_offsets[r + 1] - mapped_offsets[r];
                memcpy(o, mapped_data + mapped_offsets[r], (size_t)key_size);
                o += key_size;
                for (int q = 0; q < quote; q++) *o++ = '"';
                *o++ = ':';
                o = put_decimal(o, cell_pairs[j].count, decimal_size(cell_pairs[j].count));
            }
            *o++ = '}';
            if (csv) *o++ = '"';
        }
        written += size;
        if (written > INT32_MAX) status = -2;
    }
    free(cell_pairs);
    if (status != 0) return status;
    if (out_offsets != NULL) out_offsets[count] = (int32_t)written;
    return written;
}
