/* The row sums of one form and one input type, filled in by symkl.codegen.c_target:
 * ${name} and ${suffix} name the kernel, ${ctype} is the input type, ${count} the number
 * of arguments, ${pads} their padding values (whose term is exactly 0), ${prefetch_in_place}
 * whether blocks read in place are prefetched too, ${plain_lanes} when a row may be summed
 * in plain lanes; ${unpack}, ${checks}, ${plain_total} and ${tiny_row} (float64: a row
 * total below 2^-960 recomputed by symkl_tiny_row_*) are printed statements.  Fixed
 * C (no formula; SYMKL_UNROLLED loops over the arguments are unrolled, measured 5-10%
 * faster at k = 16): blocks of SYMKL_BLOCK terms, the vectorised terms, the scalar kernel
 * where needed, the lane sums.  Shipped as package data. */
SYMKL_VECTOR int64_t symkl_kl_${name}_${suffix}(${arguments},
        int64_t rows, int64_t k, ${ctype} *out, int32_t validate) {
    /* argument j, element (r, c) is argument[j][r * row[j] + c * col[j]] */
    const ${ctype} *const argument[${count}] = {${pointers}};
    const int64_t row[${count}] = {${row_strides}}, col[${count}] = {${column_strides}};
    /* padding whose term is exactly 0: equal means, unit scales, zero log-variances */
    static const ${ctype} pad[${count}] = {${pads}};
    ${ctype} buffer[${count}][SYMKL_BLOCK];
    double terms[SYMKL_BLOCK];
    const int64_t width = (k + 3) & ~(int64_t)3;
    /* rows per block and columns per row per block */
    const int64_t group = width <= SYMKL_BLOCK ? SYMKL_BLOCK / width : 1;
    const int64_t step = width <= SYMKL_BLOCK ? width : SYMKL_BLOCK;
    double lane_sum[SYMKL_BLOCK / 4][4], lane_error[SYMKL_BLOCK / 4][4];
    for (int64_t r0 = 0; r0 < rows; r0 += group) {
        const int64_t group_rows = rows - r0 < group ? rows - r0 : group;
        for (int64_t i = 0; i < group_rows; ++i) {
            for (int lane = 0; lane < 4; ++lane) lane_sum[i][lane] = lane_error[i][lane] = 0.0;
        }
        for (int64_t start = 0; start < k; start += step) {
            const int64_t span = k - start < step ? k - start : step;
            const int64_t padded = (span + 3) & ~(int64_t)3;
            /* a block is read in place (no copy; float32: no widening copy either, the
             * block widens on load) where it is contiguous in every argument: unit column
             * strides, no padding, and one row or rows of exactly k.  Measured: 15% less
             * CPU time at k = 512, 5-15% at k = 16 (with the prefetch below) */
            int direct = padded == span;
            SYMKL_UNROLLED
            for (int j = 0; j < ${count}; ++j) {
                direct = direct && col[j] == 1 && (group_rows == 1 || row[j] == span);
            }
            if (${prefetch_in_place} || !direct || group_rows > 1) {
                /* the next block's inputs into cache while this one is computed: the
                 * hardware prefetcher alone leaves these long kernels waiting on memory
                 * (float32 var, k = 512: 4.5 -> 2.6 ns per term, one thread).  Float64
                 * blocks of one row read in place measured slower with it (4.7 -> 5.8 ns
                 * per term at k = 512): there the hardware keeps up and the requests only
                 * queue */
                const int next_same = start + step < k;
                const int64_t next_r0 = next_same ? r0 : r0 + group;
                const int64_t next_start = next_same ? start + step : 0;
                const int64_t next_span = k - next_start < step ? k - next_start : step;
                const int64_t next_rows = next_same ? group_rows
                    : rows - next_r0 < group ? rows - next_r0 : group;
                for (int64_t i = 0; i < next_rows; ++i) {
                    SYMKL_UNROLLED
                    for (int j = 0; j < ${count}; ++j) {
                        if (col[j] == 1) {
                            symkl_prefetch(argument[j] + (next_r0 + i) * row[j] + next_start,
                                next_span * (int64_t)sizeof(${ctype}));
                        }
                    }
                }
            }
            const ${ctype} *input[${count}];
            SYMKL_UNROLLED
            for (int j = 0; j < ${count}; ++j) {
                input[j] = direct ? argument[j] + r0 * row[j] + start : buffer[j];
            }
            for (int64_t i = 0, at = 0; !direct && i < group_rows; ++i, at += padded) {
                SYMKL_UNROLLED
                for (int j = 0; j < ${count}; ++j) {
                    const ${ctype} *source = argument[j] + (r0 + i) * row[j] + start * col[j];
                    /* unit column strides (the usual case) get a loop the compiler
                     * vectorises */
                    if (col[j] == 1) {
                        for (int64_t c = 0; c < span; ++c) buffer[j][at + c] = source[c];
                    } else {
                        for (int64_t c = 0; c < span; ++c) buffer[j][at + c] = source[c * col[j]];
                    }
                    for (int64_t c = span; c < padded; ++c) buffer[j][at + c] = pad[j];
                }
            }
            if (symkl_block_${name}_${suffix}(group_rows * padded, ${inputs}, terms)) {
                /* invalid input, or outside the fast kernel's range */
                for (int64_t i = 0, at = 0; i < group_rows; ++i, at += padded) {
                    for (int64_t c = 0; c < span; ++c) {
                        double value[${count}];
                        SYMKL_UNROLLED
                        for (int j = 0; j < ${count}; ++j) value[j] = input[j][at + c];
${unpack}
                        if (validate) {
                            const int64_t index = (r0 + i) * k + start + c;
${checks}
                        }
                        /* and where the fast term nears overflow: the scalar kernel
                         * is exact about the threshold */
                        if (!symkl_fast_ok_${name}(${values}) || !(terms[at + c] < SYMKL_FAST_TERM_MAX)) {
                            terms[at + c] = symkl_term_${name}(${values});
                        }
                    }
                }
            }
            if (${plain_lanes}) {
                symkl_lane_sums_plain(group_rows, padded, terms, lane_sum);
            } else {
                symkl_lane_sums(group_rows, padded, terms, lane_sum, lane_error);
            }
        }
        for (int64_t i = 0; i < group_rows; ++i) {
            /* the plain lanes' total: four doubles added, then rounded once */
            ${ctype} row_total = ${plain_lanes}
                ? (${ctype})(${plain_total}) : (${ctype})symkl_lanes_total(lane_sum[i], lane_error[i]);${tiny_row}
            out[r0 + i] = row_total;
        }
    }
    return 0;
}
