/* ethoedge_batch.h: many windows at once on a host (shipped with ethoedge; host only: it
   allocates its scratch with malloc). The same integers as <prefix>_classify of the exported
   model, window by window, computed batch-major: the GRU gate accumulators of a block of
   ETHOEDGE_BATCH_BLOCK windows as int32 or int64 arrays [row][window], each weight broadcast
   across the block, so that the compiler vectorises the innermost loop across windows. The
   element-wise gate update and the head are the kernel library's own (ethoedge_kernels.h).

   The model is read through its const ethoedge_model_t only: ethoedge_batch_new copies the
   weights into row-major order by applying the library's mat-vec (ops->layer) to unit
   vectors, so it does not depend on the kernels' tile layout. */
#ifndef ETHOEDGE_BATCH_H
#define ETHOEDGE_BATCH_H

#include <stdint.h>

#include "ethoedge_kernels.h"

#define ETHOEDGE_BATCH_BLOCK 32 /* windows computed together */

typedef struct ethoedge_batch_s ethoedge_batch_t;

/* The batch form of model m (which must outlive it), or 0 if out of memory. */
ethoedge_batch_t *ethoedge_batch_new(const ethoedge_model_t *m);
void ethoedge_batch_free(ethoedge_batch_t *b);

/* on = 1 (the default of ethoedge_batch_new): the AVX2 kernels where the CPU has them and the
   model allows them (x86 hosts); 0: the plain loops. The same integers either way. Returns
   which AVX2 kernels now run, a bit mask: 1 the mat-vecs, 2 the gate update (3: both; 0:
   none). Not while another thread classifies with b. */
int ethoedge_batch_set_simd(ethoedge_batch_t *b, int on);

/* scores (n x C int32) of n windows x (n x n_samples x 3 int16, samples-major, as
   <prefix>_classify takes one). Returns 0, or -1 if out of memory (scores then unset). */
int ethoedge_classify_batch(const ethoedge_batch_t *b, int64_t n, int n_samples,
                            const int16_t *x, int32_t *scores);

#endif /* ETHOEDGE_BATCH_H */
