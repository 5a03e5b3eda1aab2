/* bench.c: instruction-count markers (found by symbol by the TCG plugin) and stack painting.
   Markers are noipa with different bodies so that -O2 cannot fold or inline them, and
   aligned to 16 bytes so that neither straddles QEMU's 1 KiB guest page: a translation block
   that starts inside a marker (after a page break) would count as reaching it again. */
#include "bench.h"

#define PAINT 0xC5C5C5C5u
extern uint32_t __StackLimit[];
volatile uint32_t bench_marker;

__attribute__((noipa, aligned(16))) void bench_begin(void) { bench_marker = 1; }
__attribute__((noipa, aligned(16))) void bench_end(void) { bench_marker = 2; }

__attribute__((noipa)) uint32_t bench_sp(void)
{
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Fill [__StackLimit, sp - 16) with the paint pattern (nothing lives below SP on ARM). */
__attribute__((noipa)) void bench_stack_paint(void)
{
    uint32_t *p = __StackLimit;
    uint32_t *end = (uint32_t *)(bench_sp() - 16u);
    while (p < end) {
        *(volatile uint32_t *)p = PAINT;
        ++p;
    }
}

/* Bytes of stack used below sp_before since the last paint. */
__attribute__((noipa)) uint32_t bench_stack_used(uint32_t sp_before)
{
    uint32_t *p = __StackLimit;
    while (*(volatile uint32_t *)p == PAINT) {
        ++p;
    }
    return sp_before - (uint32_t)p;
}
