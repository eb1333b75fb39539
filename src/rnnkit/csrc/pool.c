/* A persistent pool of worker threads, made once and reused by every kernel call.

   A job is a list of tasks (a kernel, its call, a block of batch rows); the calling thread and
   the workers take tasks from a shared counter until none is left, so a thread slowed down by
   another program on its core simply takes fewer tasks, and no thread waits for another between
   time steps. Starting threads for every call cost small models a third of their speed, hence
   the pool. Subnormal numbers are flushed to zero (FTZ/DAZ) inside the kernels only: the workers
   set it once, the calling thread sets it around its own tasks and restores it after. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FTZ_DAZ 0x8040u                                /* MXCSR flush-to-zero and denormals-are-zero */
static unsigned flush_denormals(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | FTZ_DAZ);
    return old;
}
static void restore_fp_state(unsigned old) { _mm_setcsr(old); }
#else
static unsigned flush_denormals(void) { return 0; }
static void restore_fp_state(unsigned old) { (void)old; }
#endif

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;   /* one job at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int n_workers = 0;
static unsigned long generation = 0;                   /* bumped for every job */
static const struct task *job_tasks = NULL;
static int job_count = 0, next_task = 0, tasks_left = 0;

/* take and run tasks until none is left; called with `lock` held, returns with it held */
static void work(void) {
    while (next_task < job_count) {
        const struct task *t = &job_tasks[next_task++];
        pthread_mutex_unlock(&lock);
        t->fn(t->call, t->r0, t->r1);
        pthread_mutex_lock(&lock);
        if (--tasks_left == 0) pthread_cond_broadcast(&done);
    }
}

static void *worker(void *unused) {
    (void)unused;
    flush_denormals();                                 /* this thread only runs kernels */
    pthread_mutex_lock(&lock);
    unsigned long seen = generation;
    for (;;) {
        while (generation == seen) pthread_cond_wait(&wake, &lock);
        seen = generation;
        work();
    }
    return NULL;
}

int pool_threads(void) { return n_workers + 1; }

int pool_start(int threads) {
    pthread_mutex_lock(&lock);
    int want = threads - 1;
    while (n_workers < want) {
        pthread_t th;
        if (pthread_create(&th, NULL, worker, NULL) != 0) break;
        pthread_detach(th);
        n_workers++;
    }
    pthread_mutex_unlock(&lock);
    return n_workers + 1;
}

void pool_run(const struct task *tasks, int count) {
    unsigned old = flush_denormals();
    if (count == 1 || n_workers == 0) {                /* nothing to share: no hand-over cost */
        for (int i = 0; i < count; i++) tasks[i].fn(tasks[i].call, tasks[i].r0, tasks[i].r1);
        restore_fp_state(old);
        return;
    }
    pthread_mutex_lock(&job_lock);
    pthread_mutex_lock(&lock);
    job_tasks = tasks;
    job_count = count;
    next_task = 0;
    tasks_left = count;
    generation++;
    pthread_cond_broadcast(&wake);
    work();                                            /* the calling thread takes tasks too */
    while (tasks_left > 0) pthread_cond_wait(&done, &lock);
    job_tasks = NULL;
    job_count = 0;
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&job_lock);
    restore_fp_state(old);
}
