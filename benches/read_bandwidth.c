/* read_bandwidth.c: the DRAM read bandwidth of one core, in GB/s.
 *
 * Sums a 256 MiB array (8x the largest L3 of the project's VMs, so every line comes from DRAM)
 * with four independent 256-bit accumulators, the hardware prefetchers left to stream it; the
 * best of 5 passes is reported. What a kernel that streams its weights from DRAM at batch 1 can
 * pull on one thread (docs/performance.md#spread-weight-prefetch).
 *
 * Build and run:
 *
 *   gcc -O2 -mavx2 benches/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FLOATS ((size_t)64 << 20)
#define PASSES 5

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    float *a = aligned_alloc(64, FLOATS * sizeof(float));
    if (a == NULL) {
        fprintf(stderr, "cannot allocate %zu MiB\n", FLOATS * sizeof(float) >> 20);
        return 1;
    }
    for (size_t i = 0; i < FLOATS; i++) {
        a[i] = (float)(i & 1023);
    }
    double best = 0.0;
    float checksum = 0.0f;
    for (int pass = 0; pass < PASSES; pass++) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        double start = now();
        for (size_t i = 0; i < FLOATS; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
            s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
        }
        double seconds = now() - start;
        float lanes[8];
        _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        checksum += lanes[0];
        double gbs = (double)(FLOATS * sizeof(float)) / seconds / 1e9;
        if (gbs > best) {
            best = gbs;
        }
    }
    /* The checksum keeps the loads from being optimized away. */
    printf("1 thread: %.1f GB/s read (best of %d passes over %zu MiB; checksum %g)\n", best, PASSES,
           FLOATS * sizeof(float) >> 20, (double)checksum);
    free(a);
    return 0;
}
