/* The leak scan's lookup keys of identifying values (policy/leakscan.py).
 *
 * Input: values already folded to ASCII (policy/text_fold.py; a byte outside ASCII counts as a separator;
 * the fold keeps ',', '@', '+' and '\'' for this pass). A value's words are its runs of ASCII letters and
 * digits, lower-cased; an apostrophe between two of them joins rather than splits (O'Brien is one word), and
 * in an e-mail's local part a lower-case letter followed by an upper-case one starts a word (AnnaMeier).
 * The keys of one value, each kept once:
 *   - its words joined with nothing between them, so that every separator an attacker might choose (space,
 *     '.', '-', '_', camel case, none) gives the same key;
 *   - an e-mail address (holds '@'): its local part's words joined, and the same without a "+tag";
 *   - of the name (the value, or an e-mail's local part without its tag), after dropping trailing suffix
 *     words (jr, sr, ii, iii, iv, phd, md) while two words or more are left, where it has two words or
 *     more:
 *       - surnames: with a comma, the words before it, joined and each; without one, every word after the
 *         first (never the first alone: a first name is too common a word); each if it has at least
 *         MIN_SURNAME characters, and also without trailing digits if what is left is at least MIN_SURNAME
 *         letters (anna.meier2@...);
 *       - every rotation of its words joined (2 to MAX_ROTATED words: "Meier Anna", "van der Berg Anna");
 *         for more words, the last word first, and with a comma the words after it first.
 * A key counts if it has at least min_chars characters (only digits: min_digits) and the value's joined form
 * is not an upstream placeholder. Of a name of more than MAX_NAME_WORDS words, its first ones are read.
 *
 * With `skeletons`, each key is given as its skeleton instead (a TR39-style reading of ASCII look-alikes:
 * i, l and 1 as one letter, o and 0 as one, rn as m, vv as w, cl as d; see skeleton()), kept if it still has
 * min_chars characters. Output text is compared in skeletons too, and skeleton(skeleton(x)) = skeleton(x),
 * so a key and its look-alikes all meet there: the plain keys are not needed beside them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arrow_view.h"
#include "odeus_native.h"

/* KEY_BYTES_PER_BYTE bounds what one value of n bytes needs: at most 13n of keys (the joined form, local
 * part and untagged local part n each, surnames 4n, rotations 6n), n for a key being made, and n for the
 * joined form kept at the end of the buffer while the value is read. */
enum { MIN_SURNAME = 5, MAX_ROTATED = 6, MAX_NAME_WORDS = 64, KEY_BYTES_PER_BYTE = 16 };

typedef struct {
    int64_t start, end; /* [start, end) in the value, apostrophes inside included */
    int64_t joined;     /* where its characters start in the value's joined form */
} word_span;

typedef struct {
    uint8_t *data;
    int32_t *offsets;
    int64_t written, keys;
    int64_t first_key; /* the first key of the value being read (for keeping each key once) */
    int64_t min_chars, min_digits;
    int skeletons;
    const uint8_t *plain; /* the value's joined form: the other keys are made of its parts */
} key_out;

/* Per byte: its lower-case form if it is an ASCII letter or digit, else 0. */
static uint8_t word_table[256];

static void fill_word_table(void) {
    if (word_table['a']) return; /* filled alike by any thread: no harm in a race */
    for (int c = 0; c < 256; c++) {
        uint8_t folded = 0;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) folded = (uint8_t)c;
        if (c >= 'A' && c <= 'Z') folded = (uint8_t)(c + ('a' - 'A'));
        word_table[c] = folded;
    }
}

static int word_char(uint8_t c) { return word_table[c] != 0; }

/* Writes the word characters of s[from, to) to out, lower-cased; returns the bytes written. */
static int64_t joined(const uint8_t *s, int64_t from, int64_t to, uint8_t *out) {
    int64_t written = 0;
    for (int64_t i = from; i < to; i++) {
        uint8_t c = word_table[s[i]];
        out[written] = c;
        written += c != 0;
    }
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

/* Replaces key[0, size) by its skeleton (never longer); returns its size. Per character first (i and 1 as
 * l, 0 as o), then the pairs rn, vv and cl as m, w and d, left to right, as policy/text_fold.py does. */
static int64_t skeleton(uint8_t *key, int64_t size) {
    int64_t kept = 0;
    for (int64_t i = 0; i < size; i++) {
        uint8_t c = key[i];
        if (c == 'i' || c == '1' || c == '0') {
            key[kept++] = c == '0' ? 'o' : 'l';
            continue;
        }
        if ((c == 'r' || c == 'v' || c == 'c') && i + 1 < size) {
            uint8_t next = key[i + 1];
            uint8_t pair = (c == 'r' && next == 'n')                                       ? 'm'
                           : (c == 'v' && next == 'v')                                     ? 'w'
                           : (c == 'c' && (next == 'l' || next == 'i' || next == '1')) ? 'd'
                                                                                           : 0;
            if (pair) {
                key[kept++] = pair;
                i++;
                continue;
            }
        }
        key[kept++] = c;
    }
    return kept;
}

/* Whether key[0, size) equals a key already kept for this value. */
static int kept_before(const key_out *o, const uint8_t *key, int64_t size) {
    for (int64_t k = o->first_key; k < o->keys; k++) {
        int64_t from = o->offsets[k];
        if (o->offsets[k + 1] - from == size && memcmp(o->data + from, key, (size_t)size) == 0) return 1;
    }
    return 0;
}

/* Keeps the key just written at o->data + o->written (size bytes) if it counts and is new for this value
 * (with `skeletons`: its skeleton, if that has min_chars characters and is new). */
static void keep(key_out *o, int64_t size) {
    uint8_t *key = o->data + o->written;
    if (!counts(key, size, o->min_chars, o->min_digits)) return;
    if (o->skeletons && (size = skeleton(key, size)) < o->min_chars) return;
    if (kept_before(o, key, size)) return;
    o->written += size;
    o->offsets[++o->keys] = (int32_t)o->written;
}

/* Writes the joined form's characters from `from` to `to` as a new key; returns its size. */
static int64_t part(key_out *o, int64_t from, int64_t to) {
    memcpy(o->data + o->written, o->plain + from, (size_t)(to - from));
    return to - from;
}

/* The words of s[0, end) into words[] (at most MAX_NAME_WORDS); camel: a lower-case letter followed by an
 * upper-case one starts a word. Returns their number; words[count].joined is where the last one ends. */
static int64_t name_words(const uint8_t *s, int64_t end, int camel, word_span *words) {
    int64_t count = 0, p = 0, joined_at = 0;
    while (p < end && count < MAX_NAME_WORDS) {
        while (p < end && !word_char(s[p])) p++;
        if (p >= end) break;
        int64_t start = p, start_joined = joined_at;
        while (p < end) {
            if (word_char(s[p])) {
                p++;
                joined_at++;
                if (camel && p < end && s[p - 1] >= 'a' && s[p - 1] <= 'z' && s[p] >= 'A' && s[p] <= 'Z') break;
            } else if (s[p] == '\'' && p + 1 < end && word_char(s[p + 1]))
                p++;
            else
                break;
        }
        words[count].start = start;
        words[count].end = p;
        words[count].joined = start_joined;
        count++;
    }
    words[count].joined = joined_at;
    return count;
}

static int is_suffix(const uint8_t *joined_form, int64_t size) {
    static const char *const suffixes[] = {"jr", "sr", "ii", "iii", "iv", "phd", "md"};
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++)
        if (strlen(suffixes[k]) == (size_t)size && memcmp(suffixes[k], joined_form, (size_t)size) == 0) return 1;
    return 0;
}

/* Keeps the joined form's characters from `from` to `to` as a surname key, if it has at least MIN_SURNAME,
 * and, where it ends in digits after at least MIN_SURNAME letters, the same without them. */
static void keep_surname(key_out *o, int64_t from, int64_t to) {
    if (to - from < MIN_SURNAME) return;
    int64_t letters = to;
    while (letters > from && o->plain[letters - 1] >= '0' && o->plain[letters - 1] <= '9') letters--;
    int only_letters = letters < to && letters - from >= MIN_SURNAME;
    for (int64_t p = from; p < letters && only_letters; p++) only_letters = o->plain[p] >= 'a' && o->plain[p] <= 'z';
    keep(o, part(o, from, to));
    if (only_letters) keep(o, part(o, from, letters));
}

/* Keeps the words from `first` on, then those before it, joined. */
static void keep_rotation(key_out *o, const word_span *words, int64_t count, int64_t first) {
    int64_t size = part(o, words[first].joined, words[count].joined);
    memcpy(o->data + o->written + size, o->plain + words[0].joined, (size_t)(words[first].joined - words[0].joined));
    keep(o, size + words[first].joined - words[0].joined);
}

/* For each non-null value, its keys (see above) one after another in out_data with out_offsets[keys + 1].
 * out_data holds out_capacity bytes (below 2^31), out_offsets one more entry than out_capacity / min_chars;
 * the values are read while at least KEY_BYTES_PER_BYTE times the next value's bytes are left, and
 * *values_done says how many were (all of them, unless the space ran out). placeholders: lower-case joined
 * forms. Returns the number of keys. */
int64_t odeus_leak_keys(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                        int64_t count, int64_t min_chars, int64_t min_digits, int skeletons,
                        const int32_t *placeholder_offsets, const uint8_t *placeholder_data, int64_t placeholders,
                        uint8_t *out_data, int64_t out_capacity, int32_t *out_offsets, int64_t *values_done) {
    key_out o = {out_data, out_offsets, 0, 0, 0, min_chars < 1 ? 1 : min_chars, min_digits, skeletons, NULL};
    word_span words[MAX_NAME_WORDS + 1];
    fill_word_table();
    out_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (arrow_is_null(validity, bit_offset + i)) continue;
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        if (o.written + KEY_BYTES_PER_BYTE * n > out_capacity) {
            *values_done = i;
            return o.keys;
        }
        uint8_t *plain = out_data + out_capacity - n; /* above anything this value's keys reach */
        o.plain = plain;
        o.first_key = o.keys;
        int64_t size = joined(s, 0, n, plain);
        if (!counts(plain, size, o.min_chars, min_digits) ||
            is_placeholder(plain, size, placeholder_offsets, placeholder_data, placeholders))
            continue;
        keep(&o, part(&o, 0, size));
        int64_t at = -1;
        for (int64_t p = n - 1; p >= 0 && at < 0; p--)
            if (s[p] == '@') at = p;
        int64_t name_end = n; /* the part that may be a name: an e-mail's local part without its +tag */
        if (at >= 0) {
            name_end = at;
            for (int64_t p = 0; p < at; p++)
                if (s[p] == '+') {
                    name_end = p;
                    break;
                }
            keep(&o, joined(s, 0, at, o.data + o.written));
            if (name_end < at) keep(&o, joined(s, 0, name_end, o.data + o.written));
        }
        int64_t count_words = name_words(s, name_end, at >= 0, words);
        /* word k is plain[words[k].joined, words[k + 1].joined): dropping the last word leaves where the one
         * before it ends */
        while (count_words > 1 && is_suffix(plain + words[count_words - 1].joined,
                                            words[count_words].joined - words[count_words - 1].joined))
            count_words--;
        if (count_words < 2) continue;
        int64_t before_comma = 0; /* words before the first comma: the surname */
        for (int64_t p = 0; p < name_end; p++)
            if (s[p] == ',') {
                while (before_comma < count_words && words[before_comma].start < p) before_comma++;
                break;
            }
        if (before_comma >= count_words) before_comma = 0;
        if (before_comma > 0) {
            if (before_comma > 1) keep_surname(&o, words[0].joined, words[before_comma].joined);
            for (int64_t k = 0; k < before_comma; k++) keep_surname(&o, words[k].joined, words[k + 1].joined);
        } else
            for (int64_t k = 1; k < count_words; k++) keep_surname(&o, words[k].joined, words[k + 1].joined);
        if (count_words <= MAX_ROTATED)
            for (int64_t first = 0; first < count_words; first++) keep_rotation(&o, words, count_words, first);
        else {
            keep_rotation(&o, words, count_words, count_words - 1);
            if (before_comma > 0) keep_rotation(&o, words, count_words, before_comma);
        }
    }
    *values_done = count;
    return o.keys;
}
