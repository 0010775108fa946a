/* fma_peak.c: the fp32 FMA throughput of this CPU, in GFLOP/s, at 1 and 2 threads.
 *
 * Each thread runs 12 independent FMA dependency chains (enough to cover a 4-cycle FMA latency on
 * two FMA ports) on 512-bit (zmm, 16 lanes) and 256-bit (ymm, 8 lanes) registers; one FMA counts
 * as 2 flops per lane. The best of 5 runs of 2^26 loop iterations is reported.
 *
 * Build and run (the command behind `PEAK_GFLOPS_PER_CORE` in crates/cli/src/commands/layers.rs):
 *
 *   gcc -O2 -mavx512f -mfma -pthread benches/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 12
#define ITERS (1L << 26)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile float sink;

/* One thread's loop on VEC registers of LANES floats. The 12 chains are written out so each
 * lives in its own register (a loop over acc[] at -O2 keeps the array in memory and measures
 * store forwarding instead). */
#define FMA_THREAD(NAME, VEC, LANES, SET1, FMADD, STOREU)               \
    static void *NAME(void *arg) {                                      \
        (void)arg;                                                      \
        VEC acc[CHAINS];                                                \
        volatile float av = 0.999999f, bv = 1e-7f;                      \
        VEC a = SET1(av), b = SET1(bv);                                 \
        for (int i = 0; i < CHAINS; i++) acc[i] = SET1((float)i);       \
        for (long n = 0; n < ITERS; n++) {                              \
            acc[0] = FMADD(acc[0], a, b);                               \
            acc[1] = FMADD(acc[1], a, b);                               \
            acc[2] = FMADD(acc[2], a, b);                               \
            acc[3] = FMADD(acc[3], a, b);                               \
            acc[4] = FMADD(acc[4], a, b);                               \
            acc[5] = FMADD(acc[5], a, b);                               \
            acc[6] = FMADD(acc[6], a, b);                               \
            acc[7] = FMADD(acc[7], a, b);                               \
            acc[8] = FMADD(acc[8], a, b);                               \
            acc[9] = FMADD(acc[9], a, b);                               \
            acc[10] = FMADD(acc[10], a, b);                             \
            acc[11] = FMADD(acc[11], a, b);                             \
        }                                                               \
        float s[LANES], t = 0;                                          \
        for (int i = 0; i < CHAINS; i++) {                              \
            STOREU(s, acc[i]);                                          \
            for (int j = 0; j < LANES; j++) t += s[j];                  \
        }                                                               \
        sink = t;                                                       \
        return NULL;                                                    \
    }

FMA_THREAD(zmm, __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
FMA_THREAD(ymm, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)

static double gflops(void *(*body)(void *), int lanes, int threads) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[64];
        double t0 = now();
        for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, body, NULL);
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        double dt = now() - t0;
        double g = 2.0 * lanes * CHAINS * (double)ITERS * threads / dt / 1e9;
        if (g > best) best = g;
    }
    return best;
}

int main(void) {
    for (int threads = 1; threads <= 2; threads++) {
        printf("threads %d: zmm (AVX-512F) %.1f GFLOP/s, ymm (AVX2+FMA) %.1f GFLOP/s\n", threads,
               gflops(zmm, 16, threads), gflops(ymm, 8, threads));
    }
    return 0;
}
