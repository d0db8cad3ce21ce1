/* CSV lines of a batch: every row's cells, formula-safe and minimally quoted, joined by commas, ending \n.
 *
 * The same text as policy/csvout.py's csv_cells_direct per column and csv_lines for the rows (a test
 * compares them): a "formatted" column (CSV cell text already: count maps) is written as it is; a "text"
 * column's cell gets an apostrophe where policy/formula_guard.py says (in front of a cell that could start a
 * formula, and after a separator inside it that a formula character follows, skipping invisible characters;
 * the tables below are that module's); in text and "quoted" columns a cell holding a quote, comma,
 * semicolon, tab, CR or LF (or, in a text column, an apostrophe: so a guarded one) is quoted with its
 * quotes doubled. Nulls are empty cells.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

enum { COLUMN_FORMATTED = 0, COLUMN_TEXT = 1, COLUMN_QUOTED = 2 }; /* quoted: where needed, no apostrophe */

typedef struct {
    const int32_t *offsets; /* at the column's first row */
    const uint8_t *data;
    const uint8_t *validity; /* NULL: no nulls */
    int64_t bit_offset;
    int64_t mode;
} column_view;

_Static_assert(sizeof(column_view) == 5 * sizeof(int64_t), "a column is passed as five 64-bit numbers");

/* formula_guard.INVISIBLE: closed ranges, in order */
static const uint32_t INVISIBLE[][2] = {
    {0x0000, 0x0020},   {0x0022, 0x0022},   {0x007F, 0x00A0},   {0x00AD, 0x00AD},   {0x034F, 0x034F},
    {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x0890, 0x0891},
    {0x08E2, 0x08E2},   {0x115F, 0x1160},   {0x1680, 0x1680},   {0x17B4, 0x17B5},   {0x180B, 0x180F},
    {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x206F},   {0x2800, 0x2800},   {0x3000, 0x3000},
    {0x3164, 0x3164},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0},   {0xFFF0, 0xFFFB},
    {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
    {0xE0000, 0xE0FFF},
};

static int is_invisible(uint32_t c) {
    size_t lo = 0, hi = sizeof INVISIBLE / sizeof INVISIBLE[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < INVISIBLE[mid][0]) hi = mid;
        else if (c > INVISIBLE[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* formula_guard.SEPARATORS */
static int is_separator(uint32_t c) {
    return c == ';' || c == '\t' || c == '\n' || c == 0x0B || c == 0x0C || c == '\r' || c == 0x1C || c == 0x1D ||
           c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
}

/* formula_guard.FORMULA_STARTS */
static int is_formula(uint32_t c) {
    return c == '=' || c == '+' || c == '-' || c == '@' || c == 0x2212 || c == 0xFE62 || c == 0xFE63 ||
           c == 0xFE66 || c == 0xFE6B || c == 0xFF0B || c == 0xFF0D || c == 0xFF1D || c == 0xFF20;
}

/* The code point at s[at] (at < n) and its length in *size; a byte that starts no valid sequence is taken
 * as U+FFFD of one byte (Arrow strings are valid UTF-8: this only keeps the reads in bounds). */
static uint32_t decode(const uint8_t *s, int64_t n, int64_t at, int64_t *size) {
    uint8_t b = s[at];
    int64_t len = b < 0x80 ? 1 : b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
    if (len == 0 || at + len > n) {
        *size = 1;
        return b < 0x80 ? b : 0xFFFD;
    }
    uint32_t c = len == 1 ? b : len == 2 ? (uint32_t)(b & 0x1F) : len == 3 ? (uint32_t)(b & 0x0F) : (uint32_t)(b & 0x07);
    for (int64_t k = 1; k < len; k++) {
        if ((s[at + k] & 0xC0) != 0x80) {
            *size = 1;
            return 0xFFFD;
        }
        c = (c << 6) | (s[at + k] & 0x3F);
    }
    *size = len;
    return c;
}

/* Whether s[at..n) starts, after invisible characters (separators not among them where `inner`), with a
 * formula character. */
static int formula_ahead(const uint8_t *s, int64_t n, int64_t at, int inner) {
    while (at < n) {
        int64_t size;
        uint32_t c = decode(s, n, at, &size);
        if (is_formula(c)) return 1;
        if (!is_invisible(c) || (inner && is_separator(c))) return 0;
        at += size;
    }
    return 0;
}

/* Byte classes: 1 needs quotes, 2 may start a separator (the ASCII ones, and the lead bytes of U+0085 and
 * U+2028/U+2029), 4 needs quotes in a text cell (an apostrophe may be a guard: text read back and written
 * again gives the same bytes). */
static const uint8_t byte_class[256] = {
    ['"'] = 1, [','] = 1, [';'] = 3, ['\t'] = 3, ['\r'] = 3, ['\n'] = 3, [0x0B] = 2, [0x0C] = 2,
    [0x1C] = 2, [0x1D] = 2, [0x1E] = 2, [0xC2] = 2, [0xE2] = 2, ['\''] = 4,
};

/* The guard after the character at s[p], if it is a separator a formula follows: the separator's length,
 * else 0. */
static int64_t guard_after(const uint8_t *s, int64_t n, int64_t p) {
    int64_t size;
    uint32_t c = decode(s, n, p, &size);
    return is_separator(c) && formula_ahead(s, n, p + size, 1) ? size : 0;
}

/* The rows' lines into out, which must hold twice the cells' bytes plus 3 * width + 1 bytes per row (every
 * cell quoted with its apostrophe, and each quote or inner apostrophe paid by a character of its own).
 * Returns the bytes written. columns: `width` views laid out as five int64 each (offsets, data, validity,
 * bit offset, mode). row_ends (optional): where each row's line ends in out (the caller keeps a batch's
 * lines under 2 GiB). */
int64_t odeus_csv_lines(const int64_t *columns, int64_t width, int64_t rows, uint8_t *out,
                               int32_t *row_ends) {
    const column_view *views = (const column_view *)columns;
    uint8_t *o = out;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < width; c++) {
            const column_view *v = &views[c];
            if (c > 0) *o++ = ',';
            if (arrow_is_null(v->validity, v->bit_offset + r)) continue;
            int64_t n = (int64_t)v->offsets[r + 1] - v->offsets[r];
            if (n == 0) continue; /* the data buffer may even be absent */
            const uint8_t *s = v->data + v->offsets[r];
            if (v->mode == COLUMN_FORMATTED) {
                memcpy(o, s, (size_t)n);
                o += n;
                continue;
            }
            int text = v->mode == COLUMN_TEXT;
            int front = text && (s[0] == '\t' || s[0] == '\r' || formula_ahead(s, n, 0, 0));
            int quote = front, separators = 0, quoting = text ? 5 : 1;
            for (int64_t p = 0; p < n; p++) {
                quote |= byte_class[s[p]] & quoting;
                separators |= byte_class[s[p]] & 2;
            }
            int inner = 0;
            if (text && separators)
                for (int64_t p = 0; p < n && !inner; p++)
                    inner = (byte_class[s[p]] & 2) && guard_after(s, n, p);
            quote |= inner;
            if (quote) *o++ = '"';
            if (front) *o++ = '\'';
            if (!quote) {
                memcpy(o, s, (size_t)n);
                o += n;
                continue;
            }
            for (int64_t p = 0; p < n;) {
                int64_t guarded = inner && (byte_class[s[p]] & 2) ? guard_after(s, n, p) : 0;
                if (guarded) {
                    memcpy(o, s + p, (size_t)guarded); /* a separator holds no quote */
                    o += guarded;
                    p += guarded;
                    *o++ = '\'';
                    continue;
                }
                if (s[p] == '"') *o++ = '"';
                *o++ = s[p++];
            }
            *o++ = '"';
        }
        *o++ = '\n';
        if (row_ends != NULL) row_ends[r] = (int32_t)(o - out);
    }
    return (int64_t)(o - out);
}
