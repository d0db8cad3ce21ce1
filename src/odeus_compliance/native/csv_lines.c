/* CSV lines of a batch: every row's cells, formula-safe and minimally quoted, joined by commas, ending \n.
 *
 * The same text as policy/csvout.py's csv_cells_direct per column and csv_lines for the rows (a test
 * compares them): a "formatted" column (CSV cell text already: count maps) is written as it is; a "text"
 * column's cell starting with = + - @ tab or CR gets a leading apostrophe; in text and
 * "quoted" columns a cell holding a quote, comma, CR or LF is quoted with its quotes doubled. Nulls are
 * empty cells.
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

/* The rows' lines into out, which must hold twice the cells' bytes plus 3 * width + 1 bytes per row (every
 * cell quoted, with an apostrophe, every character a quote). Returns the bytes written. columns: `width`
 * views laid out as five int64 each (offsets, data, validity, bit offset, mode). row_ends (optional): where
 * each row's line ends in out (the caller keeps a batch's lines under 2 GiB). */
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
            int formula = v->mode == COLUMN_TEXT && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
                                                     s[0] == '\t' || s[0] == '\r');
            int quote = 0;
            for (int64_t p = 0; p < n && !quote; p++)
                quote = s[p] == '"' || s[p] == ',' || s[p] == '\r' || s[p] == '\n';
            if (quote) *o++ = '"';
            if (formula) *o++ = '\'';
            if (!quote) {
                memcpy(o, s, (size_t)n);
                o += n;
            } else {
                for (int64_t p = 0; p < n; p++) {
                    if (s[p] == '"') *o++ = '"';
                    *o++ = s[p];
                }
                *o++ = '"';
            }
        }
        *o++ = '\n';
        if (row_ends != NULL) row_ends[r] = (int32_t)(o - out);
    }
    return (int64_t)(o - out);
}
