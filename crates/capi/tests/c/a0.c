/* The C side of tests/c_api.rs: drives every function of include/reparam.h.
 *
 * usage: a0 LOGITS.bin CONV.bin MISSING_CHECKPOINT
 *
 * Creates synthetic RepVGG-A0 (seed 7, 2 threads), runs one deterministic 1x3x224x224 image and
 * writes the 1000 logits to LOGITS.bin; runs one grouped 3x3 conv layer (16 -> 24 channels,
 * groups 2, bias, ReLU) on a 2x16x13x11 input and writes its output to CONV.bin (both raw
 * native-endian f32). Checks the error paths on the way: NULL pointers and a too-small buffer
 * give INVALID_ARGUMENT with a message naming the argument, MISSING_CHECKPOINT gives IO or
 * CHECKPOINT naming the file. Exits 0 only if every check passed.
 *
 * The inputs are integers divided by a power of two, so tests/c_api.rs rebuilds them exactly.
 */
#include "reparam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "a0.c:%d: check failed: %s: ", __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
            failures++;                                                   \
        }                                                                 \
    } while (0)

/* The last error contains `needle`. */
static int error_mentions(const char *needle) {
    const char *message = reparam_last_error();
    return message != NULL && strstr(message, needle) != NULL;
}

static float image_value(size_t i) { return (float)((long)((i * 7919u) % 2001u) - 1000) / 1024.0f; }
static float conv_input_value(size_t i) { return (float)((long)((i * 13u) % 89u) - 44) / 64.0f; }
static float weight_value(size_t i) { return (float)((long)((i * 31u) % 97u) - 48) / 256.0f; }
static float bias_value(size_t o) { return (float)((long)o - 6) / 16.0f; }

static int write_floats(const char *path, const float *values, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "a0.c: cannot open %s\n", path);
        return 0;
    }
    size_t written = fwrite(values, sizeof(float), len, f);
    return fclose(f) == 0 && written == len;
}

static void run_model(const char *logits_path, const char *missing_path) {
    ReparamModel *model = NULL;
    ReparamStatus s = reparam_model_new_synthetic("RepVGG-A0", 7, 2, &model);
    CHECK(s == REPARAM_STATUS_OK && model != NULL, "%s", reparam_last_error());
    if (model == NULL) return;
    CHECK(strcmp(reparam_last_error(), "") == 0, "a success leaves \"%s\"", reparam_last_error());

    size_t classes = 0;
    s = reparam_model_num_classes(model, &classes);
    CHECK(s == REPARAM_STATUS_OK && classes == 1000, "classes %zu: %s", classes, reparam_last_error());

    const size_t len = 3 * 224 * 224;
    float *image = malloc(len * sizeof(float));
    float *logits = malloc(1000 * sizeof(float));
    for (size_t i = 0; i < len; i++) image[i] = image_value(i);

    s = reparam_model_run(NULL, image, 1, 3, 224, 224, logits, 1000);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`model` is NULL"), "%s", reparam_last_error());
    s = reparam_model_run(model, NULL, 1, 3, 224, 224, logits, 1000);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("input_nchw"), "%s", reparam_last_error());
    s = reparam_model_run(model, image, 1, 3, 224, 224, logits, 10);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`logits` holds 10 floats"), "%s",
          reparam_last_error());
    s = reparam_model_num_classes(model, NULL);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`out` is NULL"), "%s", reparam_last_error());

    s = reparam_model_run(model, image, 1, 3, 224, 224, logits, 1000);
    CHECK(s == REPARAM_STATUS_OK, "%s", reparam_last_error());
    if (s == REPARAM_STATUS_OK) CHECK(write_floats(logits_path, logits, 1000), "writing %s", logits_path);

    ReparamModel *missing = NULL;
    s = reparam_model_load(missing_path, 1, &missing);
    CHECK((s == REPARAM_STATUS_IO || s == REPARAM_STATUS_CHECKPOINT) && missing == NULL &&
              error_mentions(missing_path),
          "status %d: %s", (int)s, reparam_last_error());
    s = reparam_model_new_synthetic("RepVGG-Z9", 7, 1, &missing);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && missing == NULL && error_mentions("RepVGG-Z9"), "%s",
          reparam_last_error());

    free(logits);
    free(image);
    reparam_model_free(model);
    reparam_model_free(NULL);
}

static void run_conv(const char *conv_path) {
    ReparamConvDesc desc = {16, 24, 1, 1, 2, 1, 2};
    const size_t weight_len = 24 * (16 / 2) * 9;
    float *weight = malloc(weight_len * sizeof(float));
    float bias[24];
    for (size_t i = 0; i < weight_len; i++) weight[i] = weight_value(i);
    for (size_t o = 0; o < 24; o++) bias[o] = bias_value(o);

    ReparamConv3x3 *conv = NULL;
    ReparamConvDesc bad = desc;
    bad.groups = 3;
    ReparamStatus s = reparam_conv3x3_new(&bad, weight, bias, &conv);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && conv == NULL && error_mentions("groups"), "%s",
          reparam_last_error());
    s = reparam_conv3x3_new(&desc, NULL, bias, &conv);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`weight` is NULL"), "%s", reparam_last_error());

    s = reparam_conv3x3_new(&desc, weight, bias, &conv);
    CHECK(s == REPARAM_STATUS_OK && conv != NULL, "%s", reparam_last_error());
    free(weight);
    if (conv == NULL) return;

    size_t oh = 0, ow = 0, out_len = 0;
    s = reparam_conv3x3_output_size(conv, 2, 13, 11, &oh, &ow, &out_len);
    CHECK(s == REPARAM_STATUS_OK && oh == 13 && ow == 11 && out_len == 2 * 24 * 13 * 11,
          "%zu x %zu, %zu: %s", oh, ow, out_len, reparam_last_error());

    const size_t in_len = 2 * 16 * 13 * 11;
    float *input = malloc(in_len * sizeof(float));
    float *output = malloc(out_len * sizeof(float));
    for (size_t i = 0; i < in_len; i++) input[i] = conv_input_value(i);
    s = reparam_conv3x3_run(conv, input, 2, 13, 11, output, out_len - 1);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`output` holds"), "%s", reparam_last_error());
    s = reparam_conv3x3_run(conv, input, 2, 0, 11, output, out_len);
    CHECK(s == REPARAM_STATUS_INVALID_ARGUMENT && error_mentions("`h`"), "%s", reparam_last_error());
    s = reparam_conv3x3_run(conv, input, 2, 13, 11, output, out_len);
    CHECK(s == REPARAM_STATUS_OK, "%s", reparam_last_error());
    if (s == REPARAM_STATUS_OK) CHECK(write_floats(conv_path, output, out_len), "writing %s", conv_path);

    free(output);
    free(input);
    reparam_conv3x3_free(conv);
    reparam_conv3x3_free(NULL);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s LOGITS.bin CONV.bin MISSING_CHECKPOINT\n", argv[0]);
        return 2;
    }
    run_model(argv[1], argv[3]);
    run_conv(argv[2]);
    if (failures > 0) {
        fprintf(stderr, "a0.c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("a0.c: all checks passed\n");
    return 0;
}
