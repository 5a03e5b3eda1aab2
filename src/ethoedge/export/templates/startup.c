/* startup.c: minimal Cortex-M startup for QEMU's mps2-an385/an386 boards (ethoedge test
   harness only; see shared/notes/cortex-m4-qemu.md). Vector table, .data copy, .bss zero,
   FPU enable on hard-float builds, semihosting stdio, exit(main()). */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern uint32_t __StackTop[];
extern void initialise_monitor_handles(void);
extern int main(void);

static int semihost(int op, const void *arg)
{
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void _init(void) {}
void _fini(void) {}

__attribute__((noreturn)) void Fault_Handler(void)
{
    semihost(0x04, "*** CPU fault\n");
    for (;;) {
        semihost(0x18, (void *)0x20023);
    }
}

__attribute__((noreturn)) void Reset_Handler(void)
{
    uint32_t *src, *dst;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    src = __data_load__;
    for (dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0;
    }
    initialise_monitor_handles();
    exit(main());
}

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16])(void) = {
    (void (*)(void))__StackTop, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler,
    Fault_Handler};
