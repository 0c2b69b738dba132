/*
 * m2rl_slime.analyze.weights._native: the exact per-block statistics of `analyze weights` in one pass.
 *
 * Written by hand because numpy needs about ten passes over every block (upcast, subtract, mask,
 * 35 BLAS dots, bit packing, popcounts) and the run is bound by them on small machines; this loop reads
 * each stored element once and keeps a chunk of 512 positions in the L1 cache. The numpy kernel
 * (`m2rl_slime.analyze.weights.kernel`) stays the reference: the tests compare the two on every dtype,
 * rule and non-finite case.
 *
 * block_stats(base, experts, dtype, bitwise, eta, group, dot, sq, counts, nonfinite, deltas, masks)
 *   base:      1-D contiguous buffer of n stored elements (BF16 as uint16 bits, F16, F32)
 *   experts:   tuple of E such buffers
 *   dtype:     0 BF16, 1 F16, 2 F32 (all computed in float32; every upcast is exact)
 *   bitwise:   1: changed = (delta != 0); 0: changed = |delta| > eta * max(|w_i|, |w_base|)
 *   group:     elements per permutation group (a multiple of 512)
 *   dot, sq:   writable float64 buffers of E*E: dot[i][j] = sum d_i d_j, sq[i][j] = sum d_i^2 m_j
 *              (d_i = delta_i on its changed mask, 0 elsewhere)
 *   counts:    writable int64 buffer of G*E*E, G = ceil(n / group): |m_i ∧ m_j| per group
 *   nonfinite: writable int64 buffer of E+1: non-finite elements of the base, then of each expert
 *   deltas:    None, or a writable float32 buffer of E*n that receives d (row i: expert i)
 *   masks:     None, or a writable uint8 buffer of E*n that receives the changed masks (0/1)
 *
 * Non-finite elements follow the numpy kernel's checked rule: a non-finite base element makes every
 * delta at that position 0, a non-finite expert element makes its own delta 0. Outputs are overwritten.
 * The GIL is released while the loop runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 512
#define MAX_EXPERTS 64


static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float from_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1fu) {
        u = sign | 0x7f800000u | (man << 13); /* Inf / NaN */
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13); /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign; /* signed zero */
    } else {  /* subnormal: man * 2^-24, exact in float32 */
        float f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* n stored elements from p + start into out (float32), the dtype switch outside the loop */
static inline void to_float(const void *p, int dtype, Py_ssize_t start, Py_ssize_t n, float *restrict out) {
    if (dtype == 0) {
        const uint16_t *restrict h = (const uint16_t *)p + start;
        uint32_t *restrict u = (uint32_t *)out;
        for (Py_ssize_t k = 0; k < n; k++) u[k] = (uint32_t)h[k] << 16;
    } else if (dtype == 1) {
        const uint16_t *h = (const uint16_t *)p + start;
        for (Py_ssize_t k = 0; k < n; k++) out[k] = from_f16(h[k]);
    } else {
        memcpy(out, (const float *)p + start, sizeof(float) * n);
    }
}

/* One expert's chunk: d holds its values on entry and its masked deltas on return; m the changed mask
 * (0/1). A non-finite expert value, or one at a non-finite base position (okb 0, b 0), counts
 * as unchanged (delta 0). Returns the expert's non-finite elements. */
static inline __attribute__((always_inline)) int mask_bitwise(const float *restrict b, const float *restrict okb,
                                                              float *restrict d, float *restrict m,
                                                              Py_ssize_t len) {
    int bad = 0;
    for (Py_ssize_t k = 0; k < len; k++) {
        const int ok = fabsf(d[k]) <= FLT_MAX; /* false for Inf and NaN */
        bad += !ok;
        const float x = (ok && okb[k] != 0.0f) ? d[k] : b[k];
        const float delta = x - b[k];
        m[k] = delta != 0.0f ? 1.0f : 0.0f;
        d[k] = delta;
    }
    return bad;
}

static inline __attribute__((always_inline)) int mask_rule(const float *restrict b, const float *restrict okb,
                                                           float *restrict d, float *restrict m, Py_ssize_t len,
                                                           float eta) {
    int bad = 0;
    for (Py_ssize_t k = 0; k < len; k++) {
        const int ok = fabsf(d[k]) <= FLT_MAX;
        bad += !ok;
        const float x = (ok && okb[k] != 0.0f) ? d[k] : b[k];
        const float delta = x - b[k];
        const float ax = fabsf(x), ab = fabsf(b[k]);
        const int changed = fabsf(delta) > (ax > ab ? ax : ab) * eta;
        m[k] = changed ? 1.0f : 0.0f;
        d[k] = changed ? delta : 0.0f;
    }
    return bad;
}

typedef struct {
    const void *base;
    const void **experts;
    int e, dtype, bitwise;
    float eta;
    Py_ssize_t n, group;
    double *dot, *sq;
    int64_t *counts, *nonfinite;
    float *deltas;     /* optional (NULL) */
    uint8_t *masks;    /* optional (NULL) */
} Job;

/* scratch: b[CHUNK], okb[CHUNK], d/m [e][CHUNK] */
static inline __attribute__((always_inline)) void run_body(const Job *job, float *scratch) {
    const int e = job->e;
    float *b = scratch, *okb = b + CHUNK, *d = okb + CHUNK, *m = d + (size_t)e * CHUNK;
    memset(job->dot, 0, sizeof(double) * e * e);
    memset(job->sq, 0, sizeof(double) * e * e);
    memset(job->counts, 0, sizeof(int64_t) * e * e * ((job->n + job->group - 1) / job->group));
    memset(job->nonfinite, 0, sizeof(int64_t) * (e + 1));
    const float eta = job->eta;
    for (Py_ssize_t start = 0; start < job->n; start += CHUNK) {
        const Py_ssize_t len = job->n - start < CHUNK ? job->n - start : CHUNK;
        int bad = 0;
        to_float(job->base, job->dtype, start, len, b);
        for (Py_ssize_t k = 0; k < len; k++) {
            const int ok = fabsf(b[k]) <= FLT_MAX; /* false for Inf and NaN */
            bad += !ok;
            okb[k] = ok ? 1.0f : 0.0f;
            b[k] = ok ? b[k] : 0.0f;
        }
        job->nonfinite[0] += bad;
        for (int i = 0; i < e; i++) {
            float *di = d + (size_t)i * CHUNK;
            to_float(job->experts[i], job->dtype, start, len, di);
            job->nonfinite[i + 1] += job->bitwise ? mask_bitwise(b, okb, di, m + (size_t)i * CHUNK, len)
                                                  : mask_rule(b, okb, di, m + (size_t)i * CHUNK, len, eta);
            if (job->deltas) memcpy(job->deltas + (size_t)i * job->n + start, di, sizeof(float) * len);
            if (job->masks) {
                const float *mi = m + (size_t)i * CHUNK;
                uint8_t *out = job->masks + (size_t)i * job->n + start;
                for (Py_ssize_t k = 0; k < len; k++) out[k] = (uint8_t)(mi[k] != 0.0f);
            }
        }
        int64_t *cnt = job->counts + (size_t)(start / job->group) * e * e;
        for (int i = 0; i < e; i++) {
            const float *di = d + (size_t)i * CHUNK, *mi = m + (size_t)i * CHUNK;
            for (int j = i; j < e; j++) {
                const float *dj = d + (size_t)j * CHUNK, *mj = m + (size_t)j * CHUNK;
                float s_dot = 0.0f, s_cnt = 0.0f, s_ij = 0.0f, s_ji = 0.0f;
#pragma omp simd reduction(+ : s_dot, s_cnt, s_ij, s_ji)
                for (Py_ssize_t k = 0; k < len; k++) {
                    s_dot += di[k] * dj[k];
                    s_cnt += mi[k] * mj[k];  /* exact: integers below 2^24 */
                    s_ij += (di[k] * di[k]) * mj[k];  /* d^2 recomputed: cheaper than loading it */
                    s_ji += (dj[k] * dj[k]) * mi[k];
                }
                job->dot[i * e + j] += s_dot;
                cnt[i * e + j] += (int64_t)s_cnt;
                if (i != j) {
                    job->sq[i * e + j] += s_ij;
                    job->sq[j * e + i] += s_ji;
                }
            }
        }
    }
    for (int i = 0; i < e; i++) {
        job->sq[i * e + i] = job->dot[i * e + i];
        for (int j = 0; j < i; j++) {
            job->dot[i * e + j] = job->dot[j * e + i];
        }
    }
    const Py_ssize_t groups = (job->n + job->group - 1) / job->group;
    for (Py_ssize_t g = 0; g < groups; g++) {
        int64_t *c = job->counts + (size_t)g * e * e;
        for (int i = 0; i < e; i++)
            for (int j = 0; j < i; j++) c[i * e + j] = c[j * e + i];
    }
}

static void run_baseline(const Job *job, float *scratch) { run_body(job, scratch); }

#if defined(__GNUC__) && defined(__x86_64__)
/* the same loop built for AVX2 + FMA, chosen at run time where the CPU has both (the baseline build
 * targets x86-64's SSE2 so that one wheel runs everywhere) */
__attribute__((target("avx2,fma"))) static void run_avx2(const Job *job, float *scratch) { run_body(job, scratch); }

static void run(const Job *job, float *scratch) {
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        run_avx2(job, scratch);
    else
        run_baseline(job, scratch);
}
#else
static void run(const Job *job, float *scratch) { run_baseline(job, scratch); }
#endif

static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t nbytes, const char *what) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (nbytes >= 0 && view->len != nbytes) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", what, view->len, nbytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *block_stats(PyObject *self, PyObject *args) {
    PyObject *base_obj, *experts_obj, *dot_obj, *sq_obj, *counts_obj, *nf_obj, *deltas_obj, *masks_obj;
    int dtype, bitwise;
    double eta;
    Py_ssize_t group;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!ipdnOOOOOO", &base_obj, &PyTuple_Type, &experts_obj, &dtype, &bitwise, &eta,
                          &group, &dot_obj, &sq_obj, &counts_obj, &nf_obj, &deltas_obj, &masks_obj))
        return NULL;
    const Py_ssize_t e = PyTuple_GET_SIZE(experts_obj);
    if (e < 1 || e > MAX_EXPERTS) return PyErr_Format(PyExc_ValueError, "1 to %d experts, got %zd", MAX_EXPERTS, e);
    if (dtype < 0 || dtype > 2) return PyErr_Format(PyExc_ValueError, "dtype code must be 0, 1 or 2, got %d", dtype);
    if (group < CHUNK || group % CHUNK) return PyErr_Format(PyExc_ValueError, "group must be a multiple of %d", CHUNK);
    const Py_ssize_t item = dtype == 2 ? 4 : 2;
    Py_buffer views[MAX_EXPERTS + 7];
    int held = 0;
    PyObject *result = NULL;
    float *scratch = NULL;
    const void *ptrs[MAX_EXPERTS];
    if (get(base_obj, &views[held], 0, -1, "base") < 0) goto done;
    held++;
    if (views[0].len % item) {
        PyErr_Format(PyExc_ValueError, "base: %zd bytes is not a whole number of elements", views[0].len);
        goto done;
    }
    const Py_ssize_t n = views[0].len / item;
    for (Py_ssize_t i = 0; i < e; i++) {
        if (get(PyTuple_GET_ITEM(experts_obj, i), &views[held], 0, views[0].len, "expert") < 0) goto done;
        ptrs[i] = views[held++].buf;
    }
    const Py_ssize_t groups = n ? (n + group - 1) / group : 0;
    if (get(dot_obj, &views[held++], 1, 8 * e * e, "dot") < 0) { held--; goto done; }
    if (get(sq_obj, &views[held++], 1, 8 * e * e, "sq") < 0) { held--; goto done; }
    if (get(counts_obj, &views[held++], 1, 8 * e * e * groups, "counts") < 0) { held--; goto done; }
    if (get(nf_obj, &views[held++], 1, 8 * (e + 1), "nonfinite") < 0) { held--; goto done; }
    float *deltas = NULL;
    uint8_t *masks = NULL;
    if (deltas_obj != Py_None) {
        if (get(deltas_obj, &views[held++], 1, 4 * e * n, "deltas") < 0) { held--; goto done; }
        deltas = views[held - 1].buf;
    }
    if (masks_obj != Py_None) {
        if (get(masks_obj, &views[held++], 1, e * n, "masks") < 0) { held--; goto done; }
        masks = views[held - 1].buf;
    }
    scratch = malloc(sizeof(float) * CHUNK * (2 + 2 * (size_t)e));
    if (!scratch) { PyErr_NoMemory(); goto done; }
    Job job = {views[0].buf, ptrs, (int)e, dtype, bitwise, (float)eta, n, group,
               views[e + 1].buf, views[e + 2].buf, views[e + 3].buf, views[e + 4].buf, deltas, masks};
    Py_BEGIN_ALLOW_THREADS
    run(&job, scratch);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    free(scratch);
    for (int i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"block_stats", block_stats, METH_VARARGS, "Exact statistics of one block (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "m2rl_slime.analyze.weights._native", "The one-pass block kernel of analyze weights.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
