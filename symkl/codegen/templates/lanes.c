/* Summation lanes of the row sums, filled in by symkl.codegen.c_target with the printed
 * TwoSum statements (${next}, ${virtual_term}, ${error_update}, ${total_update},
 * ${total_error_update}, ${total_return}) and the plain lanes' sum (${plain_update}).
 * Fixed C around them (loops, no formula); shipped as package data. */
/* Adds each row's terms (rows of `padded` terms, a multiple of 4) into four TwoSum
 * lanes, lane = index mod 4: the lanes are independent, so SIMD or not, the bits are
 * the same. */
SYMKL_VECTOR static void symkl_lane_sums(int64_t rows, int64_t padded,
        const double *restrict terms, double (*restrict lane_sum)[4],
        double (*restrict lane_error)[4]) {
    for (int64_t i = 0; i < rows; ++i) {
        double sum[4], error[4];
        for (int lane = 0; lane < 4; ++lane) {
            sum[lane] = lane_sum[i][lane];
            error[lane] = lane_error[i][lane];
        }
        for (int64_t c = i * padded; c < (i + 1) * padded; c += 4) {
            for (int lane = 0; lane < 4; ++lane) {
                const double term = terms[c + lane];
${next}
${virtual_term}
${error_update}
                sum[lane] = next;
            }
        }
        for (int lane = 0; lane < 4; ++lane) {
            lane_sum[i][lane] = sum[lane];
            lane_error[i][lane] = error[lane];
        }
    }
}

static double symkl_lanes_total(const double *lane_sum, const double *lane_error) {
    double total = 0.0, error = 0.0;
    for (int lane = 0; lane < 4; ++lane) {
        double rounding;
${total_update}
${total_error_update}
    }
    /* an infinite term (overflow) makes the errors NaN: drop them */
${total_return}
}

/* float32 rows of up to SYMKL_PLAIN_SUM_MAX terms: four plain lanes, no TwoSum.  The
 * terms are >= 0, so the sum's relative error is below k 2^-53 <= 2^-33, a thousandth
 * of a float32 ulp; longer rows keep the TwoSum lanes. */
#define SYMKL_PLAIN_SUM_MAX ((int64_t)1 << 20)
SYMKL_VECTOR static void symkl_lane_sums_plain(int64_t rows, int64_t padded,
        const double *restrict terms, double (*restrict lane_sum)[4]) {
    for (int64_t i = 0; i < rows; ++i) {
        double sum[4];
        for (int lane = 0; lane < 4; ++lane) sum[lane] = lane_sum[i][lane];
        for (int64_t c = i * padded; c < (i + 1) * padded; c += 4) {
            for (int lane = 0; lane < 4; ++lane) {
                const double term = terms[c + lane];
${plain_update}
            }
        }
        for (int lane = 0; lane < 4; ++lane) lane_sum[i][lane] = sum[lane];
    }
}
