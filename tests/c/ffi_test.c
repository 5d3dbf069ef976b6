/*
 * The C ABI from C: a real model run checked against the Rust CLI's
 * result, every loading form, the camera-frame path, and every error path.
 *
 *   ffi_test write-inputs DIR   writes DIR/x.npy and DIR/frame.nv21
 *   ffi_test check DIR          runs the tests on DIR/tiny.sqz against
 *                               DIR/out/probs.npy and DIR/fout/probs.npy
 *
 * scripts/test-c.sh builds it plain and with ASan/UBSan and runs it under
 * valgrind too. It closes with "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "squeeze.h"

enum { IN_C = 3, IN_H = 64, IN_W = 64, CLASSES = 10, FRAME_W = 96, FRAME_H = 80 };
#define IN_LEN (IN_C * IN_H * IN_W)

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf(" (last error: %s)\n", sqz_last_error());                   \
        }                                                                      \
    } while (0)

#define EXPECT_STATUS(call, want)                                              \
    do {                                                                       \
        SqzStatus got_ = (call);                                               \
        CHECK(got_ == (want), "%s returned %d, expected %d", #call, (int)got_, \
              (int)(want));                                                    \
        if (got_ == (want) && (want) != SQZ_STATUS_OK)                         \
            CHECK(sqz_last_error()[0] != '\0', "%s left no message", #call);   \
    } while (0)

/* ---- files ---- */

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(data, 1, (size_t)n, f);
    fclose(f);
    return data;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(data, 1, len, f);
    fclose(f);
    return n == len ? 0 : -1;
}

/* A little-endian f32 .npy of shape [1, 3, 64, 64]. */
static int write_npy(const char *path, const float *x, size_t n) {
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (1, %d, %d, %d), }",
                       IN_C, IN_H, IN_W);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hlen = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(x, sizeof(float), n, f);
    fclose(f);
    return 0;
}

/* The f32 payload of a .npy written by squeeze (little-endian, C order). */
static float *read_npy_f32(const char *path, size_t want) {
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    if (!bytes || len < 10) {
        free(bytes);
        return NULL;
    }
    /* Version 1: a 2-byte header length after the 8-byte magic and version. */
    size_t header = 10u + (size_t)(bytes[8] | (bytes[9] << 8));
    float *out = NULL;
    if (len == header + want * sizeof(float)) {
        out = malloc(want * sizeof(float));
        memcpy(out, bytes + header, want * sizeof(float));
    }
    free(bytes);
    return out;
}

/* ---- inputs ---- */

static void make_input(float *x) {
    for (int i = 0; i < IN_LEN; i++) x[i] = (float)((i * 37) % 101) / 100.0f;
}

/* A tightly packed NV21 frame: Y plane, then interleaved V,U rows. */
static void make_nv21(unsigned char *f) {
    for (int y = 0; y < FRAME_H; y++)
        for (int x = 0; x < FRAME_W; x++) f[y * FRAME_W + x] = (unsigned char)((x * 3 + y * 5) % 256);
    unsigned char *vu = f + FRAME_W * FRAME_H;
    for (int y = 0; y < FRAME_H / 2; y++)
        for (int x = 0; x < FRAME_W / 2; x++) {
            vu[y * FRAME_W + 2 * x] = (unsigned char)(96 + (x * 7 + y) % 64);
            vu[y * FRAME_W + 2 * x + 1] = (unsigned char)(160 - (x + y * 3) % 64);
        }
}

enum { NV21_LEN = FRAME_W * FRAME_H * 3 / 2 };

/* ---- helpers ---- */

static float max_diff(const float *a, const float *b, size_t n) {
    float worst = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= worst)) worst = d; /* NaN counts as worst */
    }
    return worst;
}

static SqzStatus run_once(const SqzSession *s, const float *x, float *probs) {
    SqzInput in = {SQZ_DTYPE_F32, x, IN_LEN * sizeof(float)};
    SqzOutput out = {SQZ_DTYPE_F32, probs, CLASSES * sizeof(float)};
    return sqz_session_run(s, &in, 1, &out, 1);
}

/* Runs a freshly loaded model once and compares with the reference. */
static void check_model_runs(SqzModel *m, const char *how, const float *x, const float *want) {
    CHECK(m != NULL, "%s: no model", how);
    if (!m) return;
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    float probs[CLASSES] = {0};
    EXPECT_STATUS(run_once(s, x, probs), SQZ_STATUS_OK);
    float d = max_diff(probs, want, CLASSES);
    CHECK(d <= 1e-5f, "%s: outputs differ from the Rust CLI by %g", how, d);
    sqz_session_free(s);
}

/* ---- tests ---- */

static void test_info(const SqzModel *m) {
    size_t n = 0;
    EXPECT_STATUS(sqz_model_port_count(m, false, &n), SQZ_STATUS_OK);
    CHECK(n == 1, "input count %zu", n);
    EXPECT_STATUS(sqz_model_port_count(m, true, &n), SQZ_STATUS_OK);
    CHECK(n == 1, "output count %zu", n);
    SqzTensorInfo info;
    EXPECT_STATUS(sqz_model_port_info(m, false, 0, &info), SQZ_STATUS_OK);
    CHECK(strcmp(info.name, "image") == 0, "input name %s", info.name);
    CHECK(info.dtype == SQZ_DTYPE_F32 && info.rank == 4 && info.shape[0] == 1 && info.shape[1] == 3 &&
              info.shape[2] == 64 && info.shape[3] == 64 && info.byte_len == IN_LEN * sizeof(float),
          "input info");
    EXPECT_STATUS(sqz_model_port_info(m, true, 0, &info), SQZ_STATUS_OK);
    CHECK(info.rank == 2 && info.shape[1] == CLASSES && info.byte_len == CLASSES * sizeof(float),
          "output info");
    EXPECT_STATUS(sqz_model_port_info(m, true, 1, &info), SQZ_STATUS_INVALID_ARGUMENT);
    SqzModelMetadata meta;
    EXPECT_STATUS(sqz_model_metadata(m, &meta), SQZ_STATUS_OK);
    CHECK(meta.name != NULL && meta.producer != NULL && strstr(meta.producer, "squeeze") != NULL,
          "metadata producer %s", meta.producer ? meta.producer : "(null)");
    const char *label = NULL;
    EXPECT_STATUS(sqz_model_label(m, meta.label_count, &label), SQZ_STATUS_INVALID_ARGUMENT);
}

static void test_runs(const SqzModel *m, const float *x, const float *want) {
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    float probs[CLASSES] = {0};
    for (int round = 0; round < 3; round++) {
        EXPECT_STATUS(run_once(s, x, probs), SQZ_STATUS_OK);
        float d = max_diff(probs, want, CLASSES);
        CHECK(d <= 1e-5f, "caller buffers, run %d: %g off the Rust CLI", round, d);
    }
    SqzInput in = {SQZ_DTYPE_F32, x, IN_LEN * sizeof(float)};
    SqzOutputs *outs = NULL;
    EXPECT_STATUS(sqz_session_run_owned(s, &in, 1, &outs), SQZ_STATUS_OK);
    size_t n = 0;
    EXPECT_STATUS(sqz_outputs_count(outs, &n), SQZ_STATUS_OK);
    CHECK(n == 1, "owned outputs %zu", n);
    SqzTensorView view;
    EXPECT_STATUS(sqz_outputs_get(outs, 0, &view), SQZ_STATUS_OK);
    CHECK(view.dtype == SQZ_DTYPE_F32 && view.byte_len == CLASSES * sizeof(float) && view.rank == 2,
          "owned view");
    if (view.byte_len == CLASSES * sizeof(float))
        CHECK(max_diff((const float *)view.data, want, CLASSES) <= 1e-5f, "owned outputs differ");
    EXPECT_STATUS(sqz_outputs_get(outs, 1, &view), SQZ_STATUS_INVALID_ARGUMENT);
    sqz_outputs_free(outs);
    /* A NULL output buffer skips that output. */
    SqzOutput skip = {SQZ_DTYPE_F32, NULL, 0};
    EXPECT_STATUS(sqz_session_run(s, &in, 1, &skip, 1), SQZ_STATUS_OK);
    sqz_session_free(s);
}

static void test_load_forms(const char *sqz, const float *x, const float *want) {
    size_t len = 0;
    unsigned char *bytes = read_file(sqz, &len);
    CHECK(bytes != NULL && len > 0, "read %s", sqz);
    if (!bytes) return;
    SqzModel *m = NULL;

    /* Copied: the buffer goes before the model is used. */
    unsigned char *copy = malloc(len);
    memcpy(copy, bytes, len);
    EXPECT_STATUS(sqz_model_load_buffer(copy, len, SQZ_BUFFER_MODE_COPY, NULL, &m), SQZ_STATUS_OK);
    free(copy);
    check_model_runs(m, "buffer, copied", x, want);
    sqz_model_free(m);

    /* Borrowed: the buffer outlives the model. */
    m = NULL;
    EXPECT_STATUS(sqz_model_load_buffer(bytes, len, SQZ_BUFFER_MODE_BORROW, NULL, &m), SQZ_STATUS_OK);
    check_model_runs(m, "buffer, borrowed", x, want);
    sqz_model_free(m);

    /* A region of a bigger file, as an uncompressed asset inside an APK. */
    char region[] = "/tmp/sqz-region-XXXXXX";
    int fd = mkstemp(region);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) {
        unsigned char prefix[4099];
        memset(prefix, 0xA5, sizeof prefix);
        CHECK(write(fd, prefix, sizeof prefix) == (ssize_t)sizeof prefix, "write prefix");
        CHECK(write(fd, bytes, len) == (ssize_t)len, "write model");
        CHECK(write(fd, prefix, 100) == 100, "write trailer");
        m = NULL;
        SqzLoadOptions opts = {1, SQZ_ISA_AUTO, true};
        EXPECT_STATUS(sqz_model_load_fd(fd, sizeof prefix, len, &opts, &m), SQZ_STATUS_OK);
        close(fd); /* the model keeps its own mapping */
        check_model_runs(m, "file descriptor region", x, want);
        sqz_model_free(m);
        fd = open(region, O_RDONLY);
        m = NULL;
        EXPECT_STATUS(sqz_model_load_fd(fd, sizeof prefix, len + 200, NULL, &m), SQZ_STATUS_INVALID_ARGUMENT);
        EXPECT_STATUS(sqz_model_load_fd(fd, 0, 0, NULL, &m), SQZ_STATUS_INVALID_MODEL);
        EXPECT_STATUS(sqz_model_load_fd(-1, 0, 0, NULL, &m), SQZ_STATUS_INVALID_ARGUMENT);
        CHECK(m == NULL, "a failed load wrote its out-parameter");
        close(fd);
        unlink(region);
    }
    free(bytes);
}

static void test_frame(const SqzModel *m, const char *dir) {
    char *ref = path_in(dir, "fout/probs.npy");
    float *want = read_npy_f32(ref, CLASSES);
    CHECK(want != NULL, "read %s", ref);
    free(ref);
    if (!want) return;
    unsigned char nv21[NV21_LEN];
    make_nv21(nv21);
    /* The same frame in planes with padded rows, as a camera delivers it. */
    enum { Y_STRIDE = FRAME_W + 32, C_STRIDE = FRAME_W + 16 };
    unsigned char *y = calloc((size_t)Y_STRIDE * FRAME_H, 1);
    unsigned char *vu = calloc((size_t)C_STRIDE * (FRAME_H / 2), 1);
    for (int r = 0; r < FRAME_H; r++) memcpy(y + r * Y_STRIDE, nv21 + r * FRAME_W, FRAME_W);
    for (int r = 0; r < FRAME_H / 2; r++)
        memcpy(vu + r * C_STRIDE, nv21 + FRAME_W * FRAME_H + r * FRAME_W, FRAME_W);
    size_t c_len = (size_t)C_STRIDE * (FRAME_H / 2 - 1) + FRAME_W; /* Android's last-row cut */
    SqzFrame frame = {
        SQZ_PIXEL_FORMAT_YUV420, FRAME_W, FRAME_H,
        {{y, (size_t)Y_STRIDE * FRAME_H, Y_STRIDE, 1}, {vu + 1, c_len - 1, C_STRIDE, 2}, {vu, c_len - 1, C_STRIDE, 2}},
    };
    SqzFrameOptions opts;
    memset(&opts, 0, sizeof opts);
    opts.rotation_degrees = 90;
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    float probs[CLASSES] = {0};
    SqzOutput out = {SQZ_DTYPE_F32, probs, sizeof probs};
    EXPECT_STATUS(sqz_session_run_frame(s, &frame, &opts, &out, 1), SQZ_STATUS_OK);
    float d = max_diff(probs, want, CLASSES);
    CHECK(d <= 1e-5f, "frame run differs from the Rust CLI by %g", d);

    /* Bad frames. */
    SqzFrame bad = frame;
    bad.planes[0].row_stride = FRAME_W - 1;
    EXPECT_STATUS(sqz_session_run_frame(s, &bad, &opts, &out, 1), SQZ_STATUS_FRAME);
    bad = frame;
    bad.planes[1].byte_len = 10;
    EXPECT_STATUS(sqz_session_run_frame(s, &bad, &opts, &out, 1), SQZ_STATUS_FRAME);
    bad = frame;
    bad.planes[2].pixel_stride = 0;
    EXPECT_STATUS(sqz_session_run_frame(s, &bad, &opts, &out, 1), SQZ_STATUS_FRAME);
    bad = frame;
    bad.planes[2].data = NULL;
    EXPECT_STATUS(sqz_session_run_frame(s, &bad, &opts, &out, 1), SQZ_STATUS_NULL_POINTER);
    bad = frame;
    bad.format = 42;
    EXPECT_STATUS(sqz_session_run_frame(s, &bad, &opts, &out, 1), SQZ_STATUS_INVALID_ARGUMENT);
    /* RGBA read with a pixel stride too short for its alpha byte. */
    unsigned char rgba[16 * 16 * 4];
    memset(rgba, 128, sizeof rgba);
    SqzFrame packed = {SQZ_PIXEL_FORMAT_RGBA, 16, 16, {{rgba, sizeof rgba, 16 * 3, 3}, {0}, {0}}};
    EXPECT_STATUS(sqz_session_run_frame(s, &packed, NULL, &out, 1), SQZ_STATUS_FRAME);
    packed.planes[0].row_stride = 16 * 4;
    packed.planes[0].pixel_stride = 4;
    EXPECT_STATUS(sqz_session_run_frame(s, &packed, NULL, &out, 1), SQZ_STATUS_OK);
    SqzFrameOptions rot = opts;
    rot.rotation_degrees = 45;
    EXPECT_STATUS(sqz_session_run_frame(s, &frame, &rot, &out, 1), SQZ_STATUS_FRAME);
    SqzFrameOptions crop = opts;
    crop.crop.x = FRAME_W - 4;
    crop.crop.width = 8;
    crop.crop.height = 8;
    EXPECT_STATUS(sqz_session_run_frame(s, &frame, &crop, &out, 1), SQZ_STATUS_FRAME);
    EXPECT_STATUS(sqz_session_run_frame(s, NULL, &opts, &out, 1), SQZ_STATUS_NULL_POINTER);
    /* Still good after the failures. */
    EXPECT_STATUS(sqz_session_run_frame(s, &frame, &opts, &out, 1), SQZ_STATUS_OK);
    CHECK(max_diff(probs, want, CLASSES) <= 1e-5f, "frame run after failures");
    sqz_session_free(s);
    free(y);
    free(vu);
    free(want);
}

static void test_load_errors(const char *dir, const char *sqz) {
    SqzModel *m = NULL;
    EXPECT_STATUS(sqz_model_load_path("/nonexistent/model.sqz", NULL, &m), SQZ_STATUS_IO);
    EXPECT_STATUS(sqz_model_load_path(NULL, NULL, &m), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_model_load_path(sqz, NULL, NULL), SQZ_STATUS_NULL_POINTER);
    SqzLoadOptions bad_isa = {0, 77, false};
    EXPECT_STATUS(sqz_model_load_path(sqz, &bad_isa, &m), SQZ_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL, "a failed load wrote its out-parameter");

    size_t len = 0;
    unsigned char *bytes = read_file(sqz, &len);
    if (!bytes) return;
    /* Corrupt: bytes flipped in the middle (a checksum catches it). */
    unsigned char *corrupt = malloc(len);
    memcpy(corrupt, bytes, len);
    for (size_t i = len / 2; i < len / 2 + 16 && i < len; i++) corrupt[i] ^= 0x5A;
    char *path = path_in(dir, "corrupt.sqz");
    write_file(path, corrupt, len);
    EXPECT_STATUS(sqz_model_load_path(path, NULL, &m), SQZ_STATUS_INVALID_MODEL);
    EXPECT_STATUS(sqz_model_load_buffer(corrupt, len, SQZ_BUFFER_MODE_COPY, NULL, &m), SQZ_STATUS_INVALID_MODEL);
    free(path);
    /* Truncated. */
    path = path_in(dir, "truncated.sqz");
    write_file(path, bytes, len / 2);
    EXPECT_STATUS(sqz_model_load_path(path, NULL, &m), SQZ_STATUS_INVALID_MODEL);
    EXPECT_STATUS(sqz_model_load_buffer(bytes, len / 2, SQZ_BUFFER_MODE_BORROW, NULL, &m), SQZ_STATUS_INVALID_MODEL);
    EXPECT_STATUS(sqz_model_load_buffer(bytes, 7, SQZ_BUFFER_MODE_COPY, NULL, &m), SQZ_STATUS_INVALID_MODEL);
    EXPECT_STATUS(sqz_model_load_buffer(NULL, 10, SQZ_BUFFER_MODE_COPY, NULL, &m), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_model_load_buffer(bytes, len, 9, NULL, &m), SQZ_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL, "a failed load wrote its out-parameter");
    free(path);
    free(corrupt);
    free(bytes);

    /* The last error's copy-out: full length, cut and NUL-terminated. */
    size_t full = sqz_last_error_copy(NULL, 0);
    CHECK(full == strlen(sqz_last_error()) && full > 8, "last error length %zu", full);
    char small[8];
    size_t got = sqz_last_error_copy(small, sizeof small);
    CHECK(got == full && small[7] == '\0' && strncmp(small, sqz_last_error(), 7) == 0, "cut copy");
}

static void test_misuse(const SqzModel *m, const float *x) {
    size_t n;
    EXPECT_STATUS(sqz_model_port_count(NULL, false, &n), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_model_port_count(m, false, NULL), SQZ_STATUS_NULL_POINTER);
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(NULL, &s), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    float probs[CLASSES];
    SqzInput in = {SQZ_DTYPE_F32, x, IN_LEN * sizeof(float)};
    SqzOutput out = {SQZ_DTYPE_F32, probs, sizeof probs};
    SqzInput short_in = {SQZ_DTYPE_F32, x, IN_LEN * sizeof(float) - 4};
    EXPECT_STATUS(sqz_session_run(s, &short_in, 1, &out, 1), SQZ_STATUS_BUFFER_SIZE);
    SqzOutput long_out = {SQZ_DTYPE_F32, probs, sizeof probs + 4};
    EXPECT_STATUS(sqz_session_run(s, &in, 1, &long_out, 1), SQZ_STATUS_BUFFER_SIZE);
    SqzInput wrong_type = {SQZ_DTYPE_I32, x, IN_LEN * sizeof(float)};
    EXPECT_STATUS(sqz_session_run(s, &wrong_type, 1, &out, 1), SQZ_STATUS_DTYPE);
    SqzInput no_type = {99, x, IN_LEN * sizeof(float)};
    EXPECT_STATUS(sqz_session_run(s, &no_type, 1, &out, 1), SQZ_STATUS_INVALID_ARGUMENT);
    SqzInput null_data = {SQZ_DTYPE_F32, NULL, IN_LEN * sizeof(float)};
    EXPECT_STATUS(sqz_session_run(s, &null_data, 1, &out, 1), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_session_run(s, NULL, 1, &out, 1), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_session_run(s, &in, 0, &out, 1), SQZ_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(sqz_session_run(s, &in, 1, &out, 0), SQZ_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(sqz_session_run(NULL, &in, 1, &out, 1), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_session_run_owned(s, &in, 1, NULL), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(sqz_outputs_count(NULL, &n), SQZ_STATUS_NULL_POINTER);
    EXPECT_STATUS(run_once(s, x, probs), SQZ_STATUS_OK);
    sqz_session_free(s);
    sqz_session_free(NULL);
    sqz_model_free(NULL);
    sqz_outputs_free(NULL);
}

/* Two threads on one session: each call either runs or is refused busy. */
struct race {
    const SqzSession *session;
    const float *x;
    int ok, busy, other;
    volatile int *stop;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void *racer(void *arg) {
    struct race *r = arg;
    float probs[CLASSES];
    double deadline = now() + 20.0;
    while (!*r->stop && now() < deadline) {
        SqzStatus st = run_once(r->session, r->x, probs);
        if (st == SQZ_STATUS_OK)
            r->ok++;
        else if (st == SQZ_STATUS_BUSY)
            r->busy++;
        else
            r->other++;
        if (r->busy > 0 && r->ok > 0) *r->stop = 1;
    }
    return NULL;
}

static void test_two_threads(const SqzModel *m, const float *x) {
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    volatile int stop = 0;
    struct race a = {s, x, 0, 0, 0, &stop}, b = {s, x, 0, 0, 0, &stop};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, racer, &a);
    pthread_create(&tb, NULL, racer, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.other + b.other == 0, "%d calls neither ran nor were busy", a.other + b.other);
    CHECK(a.busy + b.busy > 0, "no busy status in %d runs from two threads", a.ok + b.ok);
    CHECK(a.ok + b.ok > 0, "no run succeeded");
    sqz_session_free(s);
}

/* A session outlives its model's handle. */
static void test_session_outlives_model(const char *sqz, const float *x, const float *want) {
    SqzModel *m = NULL;
    SqzLoadOptions opts = {2, SQZ_ISA_AUTO, false};
    EXPECT_STATUS(sqz_model_load_path(sqz, &opts, &m), SQZ_STATUS_OK);
    SqzSession *s = NULL;
    EXPECT_STATUS(sqz_session_create(m, &s), SQZ_STATUS_OK);
    sqz_model_free(m);
    float probs[CLASSES] = {0};
    EXPECT_STATUS(run_once(s, x, probs), SQZ_STATUS_OK);
    CHECK(max_diff(probs, want, CLASSES) <= 1e-5f, "model handle freed before its session");
    sqz_session_free(s);
}

static int write_inputs(const char *dir) {
    float *x = malloc(IN_LEN * sizeof(float));
    make_input(x);
    char *p = path_in(dir, "x.npy");
    int rc = write_npy(p, x, IN_LEN);
    free(p);
    free(x);
    unsigned char nv21[NV21_LEN];
    make_nv21(nv21);
    p = path_in(dir, "frame.nv21");
    rc |= write_file(p, nv21, sizeof nv21);
    free(p);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write-inputs") == 0) return write_inputs(argv[2]);
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: %s write-inputs DIR | check DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[2];
    CHECK(sqz_version()[0] != '\0', "empty version");
    char *sqz = path_in(dir, "tiny.sqz");
    char *ref = path_in(dir, "out/probs.npy");
    float *want = read_npy_f32(ref, CLASSES);
    float *x = malloc(IN_LEN * sizeof(float));
    make_input(x);
    CHECK(want != NULL, "read %s", ref);
    SqzModel *m = NULL;
    EXPECT_STATUS(sqz_model_load_path(sqz, NULL, &m), SQZ_STATUS_OK);
    if (m && want) {
        test_info(m);
        test_runs(m, x, want);
        test_load_forms(sqz, x, want);
        test_frame(m, dir);
        test_misuse(m, x);
        test_two_threads(m, x);
        test_session_outlives_model(sqz, x, want);
    }
    test_load_errors(dir, sqz);
    sqz_model_free(m);
    free(x);
    free(want);
    free(ref);
    free(sqz);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
