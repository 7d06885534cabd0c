/* Fixed C support of the vectorised kernels (no formula): block sizes, the lo-part
 * switch, CPU dispatch, prefetching and IEEE bit access.  Copied verbatim into symkl/_kernels.c by
 * symkl.codegen.c_target; shipped as package data. */
#define SYMKL_FAST_MIN (0x1p-500)
#define SYMKL_FAST_MAX (0x1p500)
#define SYMKL_FAST_TERM_MAX (0x1p1000)
#define SYMKL_BLOCK 256
/* a lo part, or nothing where `exact` is 0 (the compiler removes its arithmetic) */
#define SYMKL_LO(value) (exact ? (value) : 0.0)

/* One build, three instruction sets where GCC and glibc allow: AVX-512, AVX2 + FMA on
 * CPUs that have them (chosen at load time), the x86-64 baseline elsewhere.  All
 * compute the same bits: no contraction (-ffp-contract=off), fma is exact either way
 * and no approximate instruction is used. */
#ifndef SYMKL_VECTOR /* -DSYMKL_VECTOR= builds one instruction set (the tests do) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define SYMKL_VECTOR __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SYMKL_VECTOR
#endif
#endif

/* a loop over the arguments, unrolled (GCC; elsewhere the compiler decides) */
#if defined(__GNUC__) && !defined(__clang__)
#define SYMKL_UNROLLED _Pragma("GCC unroll 8")
#else
#define SYMKL_UNROLLED
#endif

/* Requests the cache lines of `bytes` bytes from `address` (a hint: no fault, no value
 * changes; nothing where the compiler has no prefetch builtin). */
static inline void symkl_prefetch(const void *address, int64_t bytes) {
#if defined(__GNUC__)
    const char *first = (const char *)address;
    for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(first + offset);
    if (bytes > 0) __builtin_prefetch(first + bytes - 1);
#else
    (void)address;
    (void)bytes;
#endif
}

static inline uint64_t symkl_bits(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline double symkl_from_bits(uint64_t bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}
