/* bench.h: measurement markers for the ethoedge cost harness. On the host they do nothing. */
#ifndef ETHOEDGE_BENCH_H
#define ETHOEDGE_BENCH_H
#include <stdint.h>
void bench_begin(void);
void bench_end(void);
void bench_stack_paint(void);
uint32_t bench_stack_used(uint32_t sp_before);
uint32_t bench_sp(void);
#endif
