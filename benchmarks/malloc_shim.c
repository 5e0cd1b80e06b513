/* LD_PRELOAD heap tracker for benchmarks/memory.py: counts live bytes (malloc_usable_size) and
 * their peak across malloc/calloc/realloc/free and the aligned allocators. Read through ctypes:
 * shim_live(), shim_peak(), shim_reset_peak(). Built with gcc at benchmark time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stddef.h>
#include <string.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static long live, peak;
static char boot[1 << 16];
static size_t boot_used;

static void init(void) {
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
}
static int from_boot(void *p) { return (char *)p >= boot && (char *)p < boot + sizeof boot; }
static void *track(void *p) {
    if (p) {
        long now = __atomic_add_fetch(&live, (long)malloc_usable_size(p), __ATOMIC_RELAXED);
        if (now > peak) peak = now;
    }
    return p;
}
static void untrack(void *p) {
    if (p) __atomic_sub_fetch(&live, (long)malloc_usable_size(p), __ATOMIC_RELAXED);
}
void *malloc(size_t n) {
    if (!real_malloc) init();
    return track(real_malloc(n));
}
void *calloc(size_t a, size_t b) {
    if (!real_calloc) { /* dlsym itself may call calloc: serve it from a static buffer */
        void *p = boot + boot_used;
        boot_used += (a * b + 15) & ~(size_t)15;
        return p;
    }
    return track(real_calloc(a, b));
}
void *realloc(void *p, size_t n) {
    if (!real_realloc) init();
    if (from_boot(p)) { void *q = malloc(n); memcpy(q, p, n); return q; }
    untrack(p);
    return track(real_realloc(p, n));
}
void free(void *p) {
    if (!p || from_boot(p)) return;
    if (!real_free) init();
    untrack(p);
    real_free(p);
}
int posix_memalign(void **out, size_t align, size_t n) {
    if (!real_posix_memalign) init();
    int rc = real_posix_memalign(out, align, n);
    if (rc == 0) track(*out);
    return rc;
}
void *aligned_alloc(size_t align, size_t n) {
    if (!real_aligned_alloc) init();
    return track(real_aligned_alloc(align, n));
}
void *memalign(size_t align, size_t n) {
    if (!real_memalign) init();
    return track(real_memalign(align, n));
}
long shim_live(void) { return live; }
long shim_peak(void) { return peak; }
void shim_reset_peak(void) { peak = live; }
