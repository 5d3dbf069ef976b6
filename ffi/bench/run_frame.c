/*
 * A camera frame's run through the C ABI, timed: what an app pays per frame
 * at the boundary, compared in docs/BENCHMARKS.md with the Rust Session's
 * `squeeze bench --frame` on the same .sqz (scripts/bench.py).
 *
 *   run_frame MODEL.sqz WIDTH HEIGHT ROTATION RUNS
 *
 * Loads with one thread, feeds one NV21 frame in its planes (read in place)
 * to sqz_session_run_frame with caller-owned output buffers, and prints
 * {"run_frame_p50_ms": M, "runs": N} on one line.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "squeeze.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what) {
    fprintf(stderr, "run_frame: %s: %s\n", what, sqz_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL.sqz WIDTH HEIGHT ROTATION RUNS\n", argv[0]);
        return 2;
    }
    unsigned w = (unsigned)atoi(argv[2]), h = (unsigned)atoi(argv[3]);
    int runs = atoi(argv[5]);
    if (w < 2 || h < 2 || runs < 1) return 2;
    SqzLoadOptions opts = {1, SQZ_ISA_AUTO, false};
    SqzModel *model = NULL;
    SqzSession *session = NULL;
    if (sqz_model_load_path(argv[1], &opts, &model) != SQZ_STATUS_OK) return fail("load");
    if (sqz_session_create(model, &session) != SQZ_STATUS_OK) return fail("session");

    size_t outputs = 0;
    sqz_model_port_count(model, true, &outputs);
    SqzOutput *out = calloc(outputs, sizeof *out);
    for (size_t i = 0; i < outputs; i++) {
        SqzTensorInfo info;
        sqz_model_port_info(model, true, i, &info);
        out[i].dtype = info.dtype;
        out[i].byte_len = info.byte_len;
        out[i].data = malloc(info.byte_len);
    }
    size_t luma = (size_t)w * h, chroma = (size_t)w * (h / 2);
    unsigned char *nv21 = malloc(luma + chroma);
    for (size_t i = 0; i < luma + chroma; i++) nv21[i] = (unsigned char)((i * 7 + i / w * 3) & 0xff);
    SqzFrame frame = {SQZ_PIXEL_FORMAT_YUV420, w, h,
                      {{nv21, luma, w, 1}, {nv21 + luma + 1, chroma - 1, w, 2}, {nv21 + luma, chroma - 1, w, 2}}};
    SqzFrameOptions fo = {{0, 0, 0, 0}, (uint32_t)atoi(argv[4]), false, SQZ_YUV_MATRIX_BT601, SQZ_YUV_RANGE_FULL,
                          SQZ_RESIZE_AREA};

    double *ms = malloc((size_t)runs * sizeof *ms);
    for (int i = -5; i < runs; i++) {
        double t = now_ms();
        if (sqz_session_run_frame(session, &frame, &fo, out, outputs) != SQZ_STATUS_OK) return fail("run");
        if (i >= 0) ms[i] = now_ms() - t;
    }
    qsort(ms, (size_t)runs, sizeof *ms, by_value);
    printf("{\"run_frame_p50_ms\": %.4f, \"runs\": %d}\n", ms[runs / 2], runs);
    for (size_t i = 0; i < outputs; i++) free(out[i].data);
    free(out);
    free(ms);
    free(nv21);
    sqz_session_free(session);
    sqz_model_free(model);
    return 0;
}
