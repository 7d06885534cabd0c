/* The read probe's function, once per input type (${suffix}: f64 or f32, ${ctype}: double
 * or float); symkl.codegen.c_target substitutes both.  No formula: a sum. */
SYMKL_VECTOR double symkl_read_sum_${suffix}(const ${ctype} *x, int64_t n) {
    double partial[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int lane = 0; lane < 8; ++lane) partial[lane] += (double)x[i + lane];
    }
    double total = 0.0;
    for (; i < n; ++i) total += (double)x[i];
    for (int lane = 0; lane < 8; ++lane) total += partial[lane];
    return total;
}
