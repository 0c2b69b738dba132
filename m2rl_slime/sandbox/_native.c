/*
 * m2rl_slime.sandbox._native: start one sandboxed program from a slot keeper without copying the keeper.
 *
 * Written by hand because Python can only fork: a fork copies the keeper's page tables (~10 MB of
 * Python image), and until exec each page the child or the keeper touches costs a copy-on-write
 * fault; that is most of the keeper's CPU per program. Here the child is made with
 * clone(CLONE_VM | CLONE_VFORK): it borrows the keeper's memory on its own small stack, the keeper
 * waits until it has exec'd (or failed), and nothing is copied. The fresh namespaces (mount, IPC,
 * cgroup and, where asked, PID) are created by the same clone. The Python path (`_spawner._child`)
 * stays as the reference and the fallback where this extension was not built; the tests hold the two
 * to the same behaviour.
 *
 * spawn(argv, env, cwd, fds, flags, mount_proc, oom_score, rlimits, cpu, uid, seccomp)
 *     -> (pid, None, 0) once the program was exec'd, or (0, stage, errno) if a step before exec failed
 *        (the child is then reaped here). Raises OSError if the clone itself failed.
 *   argv, env: sequences of str/bytes (env as "KEY=value"); cwd: str/bytes
 *   fds:       (stdin, stdout, stderr) descriptors, duplicated onto 0, 1, 2
 *   flags:     CLONE_NEW* flags for the child's clone (0: none, the child starts a new session instead)
 *   mount_proc: mount a fresh /proc (nosuid, nodev, noexec) in the new namespaces (needs CLONE_NEWNS and
 *              CLONE_NEWPID in `flags`; the caller's mount namespace must not propagate to the host's)
 *   oom_score: bytes written to /proc/self/oom_score_adj
 *   rlimits:   sequence of (resource, soft, hard)
 *   cpu:       CPU to pin the child to, or -1
 *   uid:       uid (and gid) to switch to, all supplementary groups dropped, or -1 to keep root
 *   seccomp:   None, or the packed `struct sock_filter` array to install as the last step before exec
 *
 * In the child, in this order: every signal with a handler goes back to its default (and SIGPIPE, SIGXFSZ,
 * which Python ignores), descriptors onto 0/1/2, /proc or setsid, oom_score_adj, rlimits, CPU pin,
 * setgroups/setresgid/setresuid, PR_SET_PDEATHSIG (SIGKILL), PR_SET_NO_NEW_PRIVS, the seccomp filter,
 * chdir, an empty signal mask, execve. Everything the child needs is built before the clone: the child
 * allocates nothing and calls the kernel directly (raw system calls), so it never touches libc state
 * it shares with the keeper. Signals stay blocked in the keeper across the clone, so no handler of the
 * keeper can run on the child's stack.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)
#define MAX_RLIMITS 16
#define SIGSET_BYTES 8 /* the kernel's sigset_t for rt_sigprocmask/rt_sigaction */

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

struct plan {
    char **argv;
    char **envp;
    const char *cwd;
    int fds[3];
    int new_session;
    int mount_proc;
    const char *oom_score;
    size_t oom_len;
    int n_rlimits;
    int rl_resource[MAX_RLIMITS];
    struct rlimit rl_value[MAX_RLIMITS];
    int cpu;
    long uid;
    struct sock_fprog *filter;
    /* written by the child when a step fails (the memory is shared until exec) */
    volatile int failed_stage;
    volatile int failed_errno;
};

enum {
    STAGE_NONE, STAGE_SIGNALS, STAGE_DUP2, STAGE_PROC, STAGE_SETSID, STAGE_OOM, STAGE_RLIMIT, STAGE_AFFINITY,
    STAGE_SETGROUPS, STAGE_SETRESGID, STAGE_SETRESUID, STAGE_PDEATHSIG, STAGE_NO_NEW_PRIVS, STAGE_SECCOMP,
    STAGE_CHDIR, STAGE_SIGMASK, STAGE_EXECVE,
};

static const char *const STAGES[] = {
    "", "signal dispositions", "dup2", "mount /proc", "setsid", "oom_score_adj", "setrlimit",
    "sched_setaffinity", "setgroups", "setresgid", "setresuid", "prctl(PR_SET_PDEATHSIG)",
    "prctl(PR_SET_NO_NEW_PRIVS)", "seccomp filter", "chdir", "signal mask", "execve",
};

/* Raw system calls: -errno on failure, never touching errno (shared with the keeper's thread). */
static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
    unsigned long ret;
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return (long)ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    ret = (unsigned long)x0;
    return (long)ret;
#else
#error "m2rl_slime.sandbox._native supports x86_64 and aarch64"
#endif
}

static inline long sys_n(long nr, long a, long b, long c, long d) { return sys6(nr, a, b, c, d, 0, 0); }

static int fail(struct plan *p, int stage, long ret) {
    p->failed_errno = (int)-ret;
    p->failed_stage = stage;
    sys6(SYS_exit_group, 127, 0, 0, 0, 0, 0);
    return 127;
}

static int child(void *arg) {
    struct plan *p = arg;
    long r;
    for (int sig = 1; sig < 65; sig++) {
        struct kernel_sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sys_n(SYS_rt_sigaction, sig, 0, (long)&sa, SIGSET_BYTES) < 0) continue; /* not a real signal */
        int ignored = sa.handler == (void *)SIG_IGN;
        if (sa.handler == (void *)SIG_DFL || (ignored && sig != SIGPIPE && sig != SIGXFSZ)) continue;
        struct kernel_sigaction dfl = {(void *)SIG_DFL, 0, 0, 0};
        r = sys_n(SYS_rt_sigaction, sig, (long)&dfl, 0, SIGSET_BYTES);
        if (r < 0) return fail(p, STAGE_SIGNALS, r);
    }
    for (int i = 0; i < 3; i++) {
        if (p->fds[i] == i) {
            r = sys_n(SYS_fcntl, i, F_SETFD, 0, 0);
        } else {
            r = sys_n(SYS_dup3, p->fds[i], i, 0, 0);
        }
        if (r < 0) return fail(p, STAGE_DUP2, r);
    }
    if (p->mount_proc) {
        r = sys6(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, 0);
        if (r < 0) return fail(p, STAGE_PROC, r);
    }
    if (p->new_session) {
        r = sys_n(SYS_setsid, 0, 0, 0, 0);
        if (r < 0) return fail(p, STAGE_SETSID, r);
    }
    r = sys_n(SYS_openat, AT_FDCWD, (long)"/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0);
    if (r < 0) return fail(p, STAGE_OOM, r);
    {
        int fd = (int)r;
        r = sys_n(SYS_write, fd, (long)p->oom_score, (long)p->oom_len, 0);
        sys_n(SYS_close, fd, 0, 0, 0);
        if (r < 0) return fail(p, STAGE_OOM, r);
    }
    for (int i = 0; i < p->n_rlimits; i++) {
        r = sys_n(SYS_prlimit64, 0, p->rl_resource[i], (long)&p->rl_value[i], 0);
        if (r < 0) return fail(p, STAGE_RLIMIT, r);
    }
    if (p->cpu >= 0) {
        unsigned long mask[16] = {0};
        mask[p->cpu / (8 * sizeof(unsigned long))] = 1UL << (p->cpu % (8 * sizeof(unsigned long)));
        r = sys_n(SYS_sched_setaffinity, 0, sizeof mask, (long)mask, 0);
        if (r < 0) return fail(p, STAGE_AFFINITY, r);
    }
    if (p->uid >= 0) {
        r = sys_n(SYS_setgroups, 0, 0, 0, 0);
        if (r < 0) return fail(p, STAGE_SETGROUPS, r);
        r = sys_n(SYS_setresgid, p->uid, p->uid, p->uid, 0);
        if (r < 0) return fail(p, STAGE_SETRESGID, r);
        r = sys_n(SYS_setresuid, p->uid, p->uid, p->uid, 0);
        if (r < 0) return fail(p, STAGE_SETRESUID, r);
    }
    r = sys6(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
    if (r < 0) return fail(p, STAGE_PDEATHSIG, r);
    r = sys6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
    if (r < 0) return fail(p, STAGE_NO_NEW_PRIVS, r);
    if (p->filter != NULL) {
        r = sys6(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (long)p->filter, 0, 0, 0);
        if (r < 0) return fail(p, STAGE_SECCOMP, r);
    }
    r = sys_n(SYS_chdir, (long)p->cwd, 0, 0, 0);
    if (r < 0) return fail(p, STAGE_CHDIR, r);
    unsigned long empty = 0;
    r = sys_n(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, SIGSET_BYTES);
    if (r < 0) return fail(p, STAGE_SIGMASK, r);
    r = sys_n(SYS_execve, (long)p->argv[0], (long)p->argv, (long)p->envp, 0);
    return fail(p, STAGE_EXECVE, r);
}

/* One stack for every child: spawn holds the GIL from start to end and the keeper waits until the
 * child has exec'd, so two children never run on it at once. */
static char *stack_top;

static int ensure_stack(void) {
    if (stack_top != NULL) return 0;
    long page = sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, STACK_SIZE + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return -1;
    if (mprotect(base, page, PROT_NONE) != 0) { /* guard page below the stack */
        munmap(base, STACK_SIZE + page);
        return -1;
    }
    stack_top = base + STACK_SIZE + page;
    return 0;
}

/* A NULL-terminated array of the encoded strings of `seq`; the bytes objects are kept in `*keep`. */
static char **string_array(PyObject *seq, const char *what, PyObject **keep) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    PyObject *list = PyList_New(n);
    if (out == NULL || list == NULL) {
        Py_DECREF(fast);
        PyMem_Free(out);
        Py_XDECREF(list);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *encoded = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i), &encoded)) {
            Py_DECREF(fast);
            Py_DECREF(list);
            PyMem_Free(out);
            return NULL;
        }
        PyList_SET_ITEM(list, i, encoded);
        out[i] = PyBytes_AS_STRING(encoded);
    }
    Py_DECREF(fast);
    *keep = list;
    return out;
}

static PyObject *spawn(PyObject *self, PyObject *args) {
    PyObject *argv_obj, *env_obj, *cwd_obj, *rl_obj, *seccomp_obj;
    int flags, mount_proc, cpu;
    long uid;
    const char *oom;
    Py_ssize_t oom_len;
    struct plan p;
    memset(&p, 0, sizeof p);
    if (!PyArg_ParseTuple(args, "OOO(iii)ipy#Oil" "O", &argv_obj, &env_obj, &cwd_obj, &p.fds[0], &p.fds[1],
                          &p.fds[2], &flags, &mount_proc, &oom, &oom_len, &rl_obj, &cpu, &uid, &seccomp_obj))
        return NULL;
    if (flags & ~(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWPID)) {
        PyErr_SetString(PyExc_ValueError, "spawn: flags may only hold CLONE_NEWNS, NEWIPC, NEWCGROUP, NEWPID");
        return NULL;
    }
    if (mount_proc && (flags & (CLONE_NEWNS | CLONE_NEWPID)) != (CLONE_NEWNS | CLONE_NEWPID)) {
        PyErr_SetString(PyExc_ValueError, "spawn: mount_proc needs CLONE_NEWNS and CLONE_NEWPID");
        return NULL;
    }
    if (cpu < -1 || cpu >= 16 * 64) {
        PyErr_SetString(PyExc_ValueError, "spawn: cpu must be -1 (no pin) or in [0, 1024)");
        return NULL;
    }
    if (uid < -1 || uid > 0xfffffffeL) {
        PyErr_SetString(PyExc_ValueError, "spawn: uid must be -1 (keep) or a valid uid");
        return NULL;
    }
    PyObject *argv_keep = NULL, *env_keep = NULL, *cwd_bytes = NULL, *result = NULL;
    Py_buffer filter_buf = {0};
    struct sock_fprog prog;
    p.argv = string_array(argv_obj, "spawn: argv must be a sequence", &argv_keep);
    if (p.argv == NULL) goto done;
    if (p.argv[0] == NULL) {
        PyErr_SetString(PyExc_ValueError, "spawn: argv is empty");
        goto done;
    }
    p.envp = string_array(env_obj, "spawn: env must be a sequence", &env_keep);
    if (p.envp == NULL) goto done;
    if (!PyUnicode_FSConverter(cwd_obj, &cwd_bytes)) goto done;
    p.cwd = PyBytes_AS_STRING(cwd_bytes);
    p.new_session = flags == 0;
    p.mount_proc = mount_proc;
    p.oom_score = oom;
    p.oom_len = (size_t)oom_len;
    p.cpu = cpu;
    p.uid = uid;
    {
        PyObject *fast = PySequence_Fast(rl_obj, "spawn: rlimits must be a sequence");
        if (fast == NULL) goto done;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        if (n > MAX_RLIMITS) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "spawn: too many rlimits");
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned long long soft, hard;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "iKK;spawn: an rlimit is (resource, soft, hard)",
                                  &p.rl_resource[i], &soft, &hard)) {
                Py_DECREF(fast);
                goto done;
            }
            p.rl_value[i].rlim_cur = soft;
            p.rl_value[i].rlim_max = hard;
        }
        p.n_rlimits = (int)n;
        Py_DECREF(fast);
    }
    if (seccomp_obj != Py_None) {
        if (PyObject_GetBuffer(seccomp_obj, &filter_buf, PyBUF_SIMPLE) != 0) goto done;
        if (filter_buf.len == 0 || filter_buf.len % sizeof(struct sock_filter) != 0 ||
            filter_buf.len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
            PyErr_SetString(PyExc_ValueError, "spawn: seccomp must be a packed sock_filter array");
            goto done;
        }
        prog.len = (unsigned short)(filter_buf.len / sizeof(struct sock_filter));
        prog.filter = filter_buf.buf;
        p.filter = &prog;
    }
    if (ensure_stack() != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        /* The keeper is suspended until the child exec'd or exited (CLONE_VFORK). */
        int pid = clone(child, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD | flags, &p);
        int clone_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0) {
            errno = clone_errno;
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        if (p.failed_stage != STAGE_NONE) {
            int status;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            result = Py_BuildValue("(isi)", 0, STAGES[p.failed_stage], p.failed_errno);
        } else {
            result = Py_BuildValue("(iOi)", pid, Py_None, 0);
        }
    }
done:
    if (filter_buf.obj != NULL) PyBuffer_Release(&filter_buf);
    PyMem_Free(p.argv);
    PyMem_Free(p.envp);
    Py_XDECREF(argv_keep);
    Py_XDECREF(env_keep);
    Py_XDECREF(cwd_bytes);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS,
     "spawn(argv, env, cwd, fds, flags, mount_proc, oom_score, rlimits, cpu, uid, seccomp) -> (pid, stage, errno)\n\n"
     "Start one sandboxed program with clone(CLONE_VM | CLONE_VFORK); see the module's source for the steps."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Native program start for the sandbox keepers.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
