/* The kernels' thread pool (pool.c). */

#ifndef RNNKIT_POOL_H
#define RNNKIT_POOL_H

#include "kernels.h"

struct task {                      /* one kernel run over the rows [r0, r1) of one call */
    kernel_fn fn;
    const void *call;
    int r0, r1;
};

int pool_start(int threads);       /* make sure `threads` threads (the caller included) exist; returns the count */
int pool_threads(void);
void pool_run(const struct task *tasks, int count);   /* run all tasks; returns when all are done */

#endif
