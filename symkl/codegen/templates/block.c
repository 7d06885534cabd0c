/* The vectorised loop over one block of a form's terms, filled in by
 * symkl.codegen.c_target: ${name}, ${suffix} and ${ctype} as in row_sums.c, ${pointers}
 * the block's arguments, ${loaded} their elements c as doubles, ${exact} 1 to keep the lo
 * parts (float64) or 0 to drop them (float32: double precision alone leaves 29 bits to
 * spare).  Returns nonzero where a term needs the scalar kernel.  Fixed C (no formula). */
SYMKL_VECTOR static int64_t symkl_block_${name}_${suffix}(int64_t n, ${pointers},
        double *restrict terms) {
    int64_t slow = 0;
    for (int64_t c = 0; c < n; ++c) {
        terms[c] = symkl_fast_term_${name}(${loaded}, ${exact});
        slow |= !symkl_fast_ok_${name}(${loaded});
    }
    /* a loop of its own: mixed with the above, GCC does not vectorise either */
    for (int64_t c = 0; c < n; ++c) slow |= !(terms[c] < SYMKL_FAST_TERM_MAX);
    return slow;
}
