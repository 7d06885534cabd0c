/* One float64 row of ${name} whose total is below 2^-960, filled in by
 * symkl.codegen.c_target: every term there may be below half the smallest subnormal, so the
 * terms are recomputed times 2^1000 (symkl_tiny_term_${name}, fact tiny-term-scaled), added
 * with TwoSum (the sum and error updates are printed statements) and scaled back
 * once (the printed return): a single rounding into the subnormal range.  Fixed C otherwise
 * (no formula); argument j, element (r, c) is argument[j][r * row[j] + c * col[j]]. */
static double symkl_tiny_row_${name}(const double *const argument[${count}],
        const int64_t row[${count}], const int64_t col[${count}], int64_t r, int64_t k) {
    double sum = 0.0, error = 0.0;
    for (int64_t c = 0; c < k; ++c) {
        double value[${count}];
        SYMKL_UNROLLED
        for (int j = 0; j < ${count}; ++j) value[j] = argument[j][r * row[j] + c * col[j]];
${unpack}
        const double term = symkl_tiny_term_${name}(${values});
        double lo;
${sum_update}
${error_update}
    }
${total_return}
}
