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
 *
 * odeus_leak_key_hashes gives the same keys as 64-bit hashes (key_hash()), made one value at a time, so that
 * a run holds eight bytes per key instead of the key; the scan compares output keys hashed the same way.
 */
#include <pthread.h>
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
    uint8_t *plain; /* the value's joined form: the other keys are made of its parts */
    uint64_t *hashes; /* if not NULL: each key is kept as its key_hash() here instead, hashes[hash_count] */
    int64_t hash_count, first_hash;
    uint64_t seed;
} key_out;

/* Per byte: its lower-case form if it is an ASCII letter or digit, else 0. */
static uint8_t word_table[256];
/* Per byte: how skeleton() reads it on its own (i and 1 as l, 0 as o, any other byte as it is). */
static uint8_t skeleton_table[256];
/* Per character read by skeleton_table: which pair it can start (r: 1, v: 2, c: 4) or end (n: 1, v: 2,
 * l: 4). */
static uint8_t pair_first[256], pair_second[256];

static pthread_once_t tables_filled = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
    for (int c = 0; c < 256; c++) {
        uint8_t folded = 0;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) folded = (uint8_t)c;
        if (c >= 'A' && c <= 'Z') folded = (uint8_t)(c + ('a' - 'A'));
        word_table[c] = folded;
        skeleton_table[c] = c == 'i' || c == '1' ? 'l' : c == '0' ? 'o' : (uint8_t)c;
        pair_first[c] = c == 'r' ? 1 : c == 'v' ? 2 : c == 'c' ? 4 : 0;
        pair_second[c] = c == 'n' ? 1 : c == 'v' ? 2 : c == 'l' ? 4 : 0;
    }
}

/* Fills the tables once; threads calling at the same time wait until they are filled. */
static void fill_word_table(void) { pthread_once(&tables_filled, fill_tables); }

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
    /* One pass without branches reads each character on its own and notes whether a pair follows; most keys
     * hold none and are done. Pairs are found alike in the characters read (r, n, v and c read as
     * themselves; l, i and 1 all as l), and reading twice changes nothing, so the loop below may run on
     * them. */
    unsigned pairs = 0, previous = 0;
    for (int64_t i = 0; i < size; i++) {
        uint8_t c = skeleton_table[key[i]];
        pairs |= previous & pair_second[c];
        previous = pair_first[c];
        key[i] = c;
    }
    if (!pairs) return size;
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

/* A 64-bit hash of key[0, size) under `seed`: one multiply per 8-byte word, then splitmix64's finaliser.
 * Not cryptographic: the leak scan only tests set membership with it inside one process, where equal keys
 * always give equal hashes (a leak is never missed) and a collision can only raise a false alarm. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t key_hash(const uint8_t *key, int64_t size, uint64_t seed) {
    uint64_t h = seed ^ ((uint64_t)size * 0x9e3779b97f4a7c15ULL);
    int64_t at = 0;
    for (; at + 8 <= size; at += 8) {
        uint64_t word;
        memcpy(&word, key + at, 8);
        h = (h ^ word) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (at < size) {
        uint64_t word = 0;
        memcpy(&word, key + at, (size_t)(size - at));
        h = (h ^ word) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    return mix64(h);
}

/* Keeps the key just written at o->data + o->written (size bytes) if it counts and is new for this value
 * (with `skeletons`: its skeleton, if that has min_chars characters and is new). */
static void keep(key_out *o, int64_t size) {
    uint8_t *key = o->data + o->written;
    if (!counts(key, size, o->min_chars, o->min_digits)) return;
    if (o->skeletons && (size = skeleton(key, size)) < o->min_chars) return;
    if (o->hashes != NULL) { /* the key's bytes are not needed again: the next key is made over them */
        uint64_t h = key_hash(key, size, o->seed);
        for (int64_t k = o->first_hash; k < o->hash_count; k++)
            if (o->hashes[k] == h) return;
        o->hashes[o->hash_count++] = h;
        return;
    }
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

/* Keeps the keys of the value s[0, n) (see above), the first at o->data + o->written; o->plain must have
 * room for n bytes above anything its keys reach. */
static void value_keys(key_out *o, const uint8_t *s, int64_t n, const int32_t *placeholder_offsets,
                       const uint8_t *placeholder_data, int64_t placeholders) {
    word_span words[MAX_NAME_WORDS + 1];
    o->first_key = o->keys;
    int64_t size = joined(s, 0, n, o->plain);
    if (!counts(o->plain, size, o->min_chars, o->min_digits) ||
        is_placeholder(o->plain, size, placeholder_offsets, placeholder_data, placeholders))
        return;
    keep(o, part(o, 0, size));
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
        keep(o, joined(s, 0, at, o->data + o->written));
        if (name_end < at) keep(o, joined(s, 0, name_end, o->data + o->written));
    }
    int64_t count_words = name_words(s, name_end, at >= 0, words);
    /* word k is plain[words[k].joined, words[k + 1].joined): dropping the last word leaves where the one
     * before it ends */
    while (count_words > 1 && is_suffix(o->plain + words[count_words - 1].joined,
                                        words[count_words].joined - words[count_words - 1].joined))
        count_words--;
    if (count_words < 2) return;
    int64_t before_comma = 0; /* words before the first comma: the surname */
    for (int64_t p = 0; p < name_end; p++)
        if (s[p] == ',') {
            while (before_comma < count_words && words[before_comma].start < p) before_comma++;
            break;
        }
    if (before_comma >= count_words) before_comma = 0;
    if (before_comma > 0) {
        if (before_comma > 1) keep_surname(o, words[0].joined, words[before_comma].joined);
        for (int64_t k = 0; k < before_comma; k++) keep_surname(o, words[k].joined, words[k + 1].joined);
    } else
        for (int64_t k = 1; k < count_words; k++) keep_surname(o, words[k].joined, words[k + 1].joined);
    if (count_words <= MAX_ROTATED)
        for (int64_t first = 0; first < count_words; first++) keep_rotation(o, words, count_words, first);
    else {
        keep_rotation(o, words, count_words, count_words - 1);
        if (before_comma > 0) keep_rotation(o, words, count_words, before_comma);
    }
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
    key_out o = {out_data, out_offsets, 0, 0, 0, min_chars < 1 ? 1 : min_chars, min_digits, skeletons, NULL,
                 NULL, 0, 0, 0};
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
        o.plain = out_data + out_capacity - n; /* above anything this value's keys reach */
        value_keys(&o, s, n, placeholder_offsets, placeholder_data, placeholders);
    }
    *values_done = count;
    return o.keys;
}

/* As odeus_leak_keys, but each key is given as its key_hash() under `seed`, in out_hashes (hash_capacity
 * entries), each once per value: the keys themselves are made one at a time in `scratch` (scratch_capacity
 * bytes, at least KEY_BYTES_PER_BYTE times the longest value's bytes; scratch_offsets: one entry). Values
 * are read while the next one's keys surely fit (KEY_BYTES_PER_BYTE times its bytes / min_chars + 1
 * hashes); *values_done says how many were. A hash is left out where `recent` (recent_slots entries, a
 * power of two, zeroed by the caller, kept between calls for the same keys) shows it was given before; the
 * caller keeps all it was given. Returns the number of hashes. */
int64_t odeus_leak_key_hashes(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                              int64_t bit_offset, int64_t count, int64_t min_chars, int64_t min_digits,
                              int skeletons, const int32_t *placeholder_offsets, const uint8_t *placeholder_data,
                              int64_t placeholders, uint64_t seed, uint8_t *scratch, int64_t scratch_capacity,
                              int32_t *scratch_offsets, uint64_t *out_hashes, int64_t hash_capacity,
                              uint64_t *recent, int64_t recent_slots, int64_t *values_done) {
    key_out o = {scratch,   scratch_offsets, 0, 0, 0, min_chars < 1 ? 1 : min_chars, min_digits, skeletons, NULL,
                 out_hashes, 0,              0, seed};
    fill_word_table();
    scratch_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        if (arrow_is_null(validity, bit_offset + i)) continue;
        const uint8_t *s = data + offsets[i];
        int64_t n = (int64_t)offsets[i + 1] - offsets[i];
        if (KEY_BYTES_PER_BYTE * n > scratch_capacity ||
            o.hash_count + KEY_BYTES_PER_BYTE * n / o.min_chars + 1 > hash_capacity) {
            *values_done = i;
            return o.hash_count;
        }
        o.written = 0;
        o.first_hash = o.hash_count;
        o.plain = scratch + scratch_capacity - n;
        value_keys(&o, s, n, placeholder_offsets, placeholder_data, placeholders);
        int64_t kept = o.first_hash; /* the value's hashes, but those recently given */
        for (int64_t k = o.first_hash; k < o.hash_count; k++) {
            uint64_t h = out_hashes[k];
            uint64_t *slot = &recent[(h >> 17) & (uint64_t)(recent_slots - 1)];
            if (*slot == h && h != 0) continue; /* given already: names share surnames and first names */
            *slot = h;
            out_hashes[kept++] = h;
        }
        o.hash_count = kept;
    }
    *values_done = count;
    return o.hash_count;
}

/* Each non-null string's key_hash() under `seed` in out_hashes[i] (0 for a null one). */
void odeus_text_hashes(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                       int64_t count, uint64_t seed, uint64_t *out_hashes) {
    for (int64_t i = 0; i < count; i++)
        out_hashes[i] = arrow_is_null(validity, bit_offset + i)
                            ? 0
                            : key_hash(data + offsets[i], (int64_t)offsets[i + 1] - offsets[i], seed);
}
