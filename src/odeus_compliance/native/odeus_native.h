/* The native helpers' interface: the one place their signatures are declared.
 *
 * Every .c file includes this header, so a definition that differs from it fails to compile; the build
 * (hatch_build.py) hands the same declarations to cffi in API mode, whose generated wrapper calls each
 * function through this prototype, so Python can never call one with another signature. Only plain
 * declarations below the marker: cffi reads them.
 */
#ifndef ODEUS_NATIVE_H
#define ODEUS_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* cffi: declarations */

/* SHA-256 (hex) of the sources and headers the library was built from. */
const char *odeus_native_source(void);

/* For each of `count` strings (Arrow layout: offsets[count + 1] into data), the token
 *   token_prefix + first `chars` base32 characters of HMAC-SHA-256(key, message_prefix + string)
 * written to out_data at i * (token_prefix_size + chars), with out_offsets[count + 1] to match.
 * Returns 0, -1 on bad sizes, -2 if OpenSSL failed. */
int odeus_hmac_tokens(const uint8_t *key, size_t key_size, const uint8_t *message_prefix,
                      size_t message_prefix_size, const int32_t *offsets, const uint8_t *data, int64_t count,
                      const uint8_t *token_prefix, size_t token_prefix_size, int chars, uint8_t *out_data,
                      int32_t *out_offsets);

/* Count maps (count_maps.c): pairs per cell, their keys, and the rebuilt maps. */
int64_t odeus_count_maps_scan(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                              int64_t bit_offset, int64_t count, int32_t *out_pairs);
int odeus_count_maps_keys(const int32_t *offsets, const uint8_t *data, int64_t count, const int32_t *pairs,
                          int32_t *key_offsets, uint8_t *key_data, uint64_t *counts);
int64_t odeus_count_maps_build(const int32_t *pairs, int64_t count, const uint64_t *counts,
                               const int32_t *key_index, const int32_t *rank, const int32_t *mapped_offsets,
                               const uint8_t *mapped_data, int csv, int32_t *first_row, uint8_t *out_data,
                               int32_t *out_offsets);

/* A batch's CSV lines (csv_lines.c). */
int64_t odeus_csv_lines(const int64_t *columns, int64_t width, int64_t rows, uint8_t *out, int32_t *row_ends);

/* The leak scan's lookup keys of identifying values (leak_keys.c). */
int64_t odeus_leak_keys(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                        int64_t count, int64_t min_chars, int64_t min_digits, int skeletons,
                        const int32_t *placeholder_offsets, const uint8_t *placeholder_data, int64_t placeholders,
                        uint8_t *out_data, int64_t out_capacity, int32_t *out_offsets, int64_t *values_done);

/* The same keys as 64-bit hashes, for set membership within one process (leak_keys.c). */
int64_t odeus_leak_key_hashes(const int32_t *offsets, const uint8_t *data, const uint8_t *validity,
                              int64_t bit_offset, int64_t count, int64_t min_chars, int64_t min_digits,
                              int skeletons, const int32_t *placeholder_offsets, const uint8_t *placeholder_data,
                              int64_t placeholders, uint64_t seed, uint8_t *scratch, int64_t scratch_capacity,
                              int32_t *scratch_offsets, uint64_t *out_hashes, int64_t hash_capacity,
                              uint64_t *recent, int64_t recent_slots, int64_t *values_done);
void odeus_text_hashes(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                       int64_t count, uint64_t seed, uint64_t *out_hashes);

/* The leak scan's ASCII fold of texts (fold_texts.c). */
int64_t odeus_fold_texts(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, int64_t bit_offset,
                         int64_t count, const uint8_t *slot_lengths, const uint8_t *slot_data, int64_t slots,
                         int keep_punctuation, uint8_t *out_data, int32_t *out_offsets, uint8_t *unresolved,
                         uint32_t *missing, int64_t missing_capacity, int64_t *missing_count, uint8_t *seen);

/* cffi: end */

#endif
