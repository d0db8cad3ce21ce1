/* JSON count maps ({"agent_1":12,"agent_2":3}) of a whole column: keys out, mapped keys in, canonical JSON.
 *
 * Only cells of the compact shape are handled here: an object of "key":count pairs with no whitespace, no
 * escapes or control characters in keys, and counts that are 0 or up to 18 digits without a leading zero.
 * Anything else is left to the per-cell Python path (which also raises the errors). Three calls per column
 * (see policy/countmaps.py): scan (which cells are compact, how many pairs), keys (every pair's key, for
 * Arrow to dictionary-encode and Python to map once per distinct key), build (each cell's pairs under their
 * mapped keys, in the mapped keys' order, as JSON or as its quoted CSV cell).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { MAX_COUNT_DIGITS = 18 };

typedef struct {
    int64_t key_start, key_size, count_start, count_size;
} pair_span;

/* The pair at s[*at] (just after '{' or ','); advances past it. 0 if the text there is not a compact pair. */
static int next_pair(const uint8_t *s, int64_t n, int64_t *at, pair_span *pair) {
    int64_t p = *at;
    if (p >= n || s[p] != '"') return 0;
    pair->key_start = ++p;
    while (p < n && s[p] != '"') {
        if (s[p] == '\\' || s[p] < 0x20) return 0;
        p++;
    }
    if (p >= n) return 0;
    pair->key_size = p - pair->key_start;
    p++;
    if (p >= n || s[p] != ':') return 0;
    pair->count_start = ++p;
    if (p < n && s[p] == '0') {
        p++;
    } else if (p < n && s[p] >= '1' && s[p] <= '9') {
        while (p < n && s[p] >= '0' && s[p] <= '9') p++;
        if (p - pair->count_start > MAX_COUNT_DIGITS) return 0;
    } else {
        return 0;
    }
    pair->count_size = p - pair->count_start;
    *at = p;
    return 1;
}

/* The number of pairs of a compact cell, or -1. */
static int32_t compact_pairs(const uint8_t *s, int64_t n) {
    if (n < 2 || s[0] != '{' || s[n - 1] != '}') return -1;
    if (n == 2) return 0;
    int64_t p = 1;
    int32_t pairs = 0;
    pair_span pair;
    for (;;) {
        if (!next_pair(s, n, &p, &pair) || pairs == INT32_MAX) return -1;
        pairs++;
        if (p == n - 1) return pairs;
        if (s[p] != ',') return -1;
        p++;
    }
}

/* out_pairs[i]: pairs of cell i (0 for a null cell or {}), -1 if not compact. Returns the pairs of the compact
 * cells in all, or -1 if that does not fit Arrow's 32-bit offsets. */
int64_t odeus_count_maps_scan(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                                     int64_t bit_offset, int64_t count, int32_t *out_pairs) {
    int64_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        int32_t pairs = arrow_is_null(validity, bit_offset + i)
                            ? 0
                            : compact_pairs(data + offsets[i], (int64_t)offsets[i + 1] - offsets[i]);
        out_pairs[i] = pairs;
        if (pairs > 0) total += pairs;
    }
    return total > INT32_MAX - 1 ? -1 : total;
}

/* Every pair's key, cell after cell, as an Arrow string array: key_offsets[pairs + 1], key_data (at most the
 * cells' bytes). Cells with pairs[i] <= 0 are skipped. Returns 0, or -4 if a cell is not what the scan found. */
int odeus_count_maps_keys(const int32_t *offsets, const uint8_t *data, int64_t count,
                                 const int32_t *pairs, int32_t *key_offsets, uint8_t *key_data) {
    int64_t k = 0, written = 0;
    pair_span pair = {0, 0, 0, 0};
    key_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (pairs[i] <= 0) continue;
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i], p = 1;
        for (int32_t j = 0; j < pairs[i]; j++) {
            if (!next_pair(s, n, &p, &pair)) return -4; /* not the array the scan saw */
            p++;                                         /* past ',' or onto the closing '}' */
            memcpy(key_data + written, s + pair.key_start, (size_t)pair.key_size);
            written += pair.key_size;
            key_offsets[++k] = (int32_t)written;
        }
    }
    return 0;
}

typedef struct {
    int32_t rank;
    const uint8_t *count;
    int64_t count_size;
} ranked_pair;

/* Each compact cell again, its keys replaced by their mapped keys (mapped_offsets/mapped_data, by rank: the
 * mapped keys sorted) and its pairs in rank order: {"key":count,...}, or with csv != 0 the quoted CSV cell
 * "{""key"":count,...}" (the mapped keys hold no quote; the caller checks). {} stays {} and null or
 * non-compact cells (pairs[i] <= 0) become empty strings. key_index: per pair, its distinct key; rank: per
 * distinct key. first_row (optional): per distinct key, the lowest cell holding it (caller fills with -1).
 * out_data NULL: only measure. Returns the output's bytes; -1 if in some cell two keys map to the same key
 * (their counts must be summed: the caller goes cell by cell), -2 if the output would not fit 32-bit
 * offsets, -3 if memory ran out, -4 if a cell is not what the scan found. */
int64_t odeus_count_maps_build(const int32_t *offsets, const uint8_t *data, int64_t count,
                                      const int32_t *pairs, const int32_t *key_index, const int32_t *rank,
                                      const int32_t *mapped_offsets, const uint8_t *mapped_data, int csv,
                                      int32_t *first_row, uint8_t *out_data, int32_t *out_offsets) {
    int32_t most = 0;
    for (int64_t i = 0; i < count; i++)
        if (pairs[i] > most) most = pairs[i];
    ranked_pair *cell_pairs = malloc(sizeof(ranked_pair) * (size_t)(most > 0 ? most : 1));
    if (cell_pairs == NULL) return -3;
    const int quote = csv ? 2 : 1; /* a structural quote is doubled inside a quoted CSV cell */
    int64_t written = 0, k = 0, status = 0;
    pair_span pair = {0, 0, 0, 0};
    for (int64_t i = 0; i < count && status == 0; i++) {
        if (out_offsets != NULL) out_offsets[i] = (int32_t)written;
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        if (pairs[i] <= 0) {
            if (pairs[i] == 0 && n == 2) { /* {} (a null cell has no text here) */
                if (out_data != NULL) memcpy(out_data + written, "{}", 2);
                written += 2;
            }
            continue;
        }
        int64_t p = 1;
        for (int32_t j = 0; j < pairs[i]; j++, k++) {
            if (!next_pair(s, n, &p, &pair)) {
                status = -4; /* not the array the scan saw */
                break;
            }
            p++;
            int32_t r = rank[key_index[k]];
            if (first_row != NULL && first_row[key_index[k]] < 0) first_row[key_index[k]] = (int32_t)i;
            /* insertion sort: cells hold a handful of pairs */
            int32_t at = j;
            while (at > 0 && cell_pairs[at - 1].rank > r) {
                cell_pairs[at] = cell_pairs[at - 1];
                at--;
            }
            if (at > 0 && cell_pairs[at - 1].rank == r) {
                status = -1;
                break;
            }
            cell_pairs[at] = (ranked_pair){r, s + pair.count_start, pair.count_size};
        }
        if (status != 0) break;
        int64_t size = csv ? 2 : 0; /* the cell's own quotes */
        size += 2;                  /* { } */
        for (int32_t j = 0; j < pairs[i]; j++) {
            int32_t r = cell_pairs[j].rank;
            int64_t key_size = (int64_t)mapped_offsets[r + 1] - mapped_offsets[r];
            size += quote + key_size + quote + 1 + cell_pairs[j].count_size; /* "key":count */
        }
        size += pairs[i] - 1; /* commas */
        if (out_data != NULL) {
            uint8_t *o = out_data + written;
            if (csv) *o++ = '"';
            *o++ = '{';
            for (int32_t j = 0; j < pairs[i]; j++) {
                int32_t r = cell_pairs[j].rank;
                if (j > 0) *o++ = ',';
                for (int q = 0; q < quote; q++) *o++ = '"';
                int64_t key_size = (int64_t)mapped_offsets[r + 1] - mapped_offsets[r];
                memcpy(o, mapped_data + mapped_offsets[r], (size_t)key_size);
                o += key_size;
                for (int q = 0; q < quote; q++) *o++ = '"';
                *o++ = ':';
                memcpy(o, cell_pairs[j].count, (size_t)cell_pairs[j].count_size);
                o += cell_pairs[j].count_size;
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
