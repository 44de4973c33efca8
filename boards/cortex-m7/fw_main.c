/* fw_main.c - bare-metal Cortex-M7 firmware: opens the device image compiled into flash
 * (in place, no copy), plans a LoRA session, creates it in a static arena and runs a
 * forward, ET_FW_STEPS fine-tuning steps (forward + backward + SGD) and a second forward.
 * No OS, no heap, no libc: the vector table, the reset handler and the three memory
 * functions the core may call are here. The results land in et_fw_result for a
 * debugger; built with -DET_FW_SEMIHOST (the QEMU run) it also prints them through
 * Arm semihosting and exits, so `make board=cortex-m7 m7-qemu` can check them. */
#include <stddef.h>
#include <stdint.h>
#include "et_image.h"
#include "et_lora.h"

extern const unsigned char et_model_image[];
extern const size_t et_model_image_len;

#ifndef ET_FW_ARENA
#define ET_FW_ARENA (256u * 1024u)
#endif
#ifndef ET_FW_T
#define ET_FW_T 8 /* tokens per sequence (at most the image's context) */
#endif
#ifndef ET_FW_RANK
#define ET_FW_RANK 4 /* adapter rank, on every block */
#endif
#ifndef ET_FW_LAYERS
#define ET_FW_LAYERS 0 /* adapt the last N blocks (0: all) */
#endif
#ifndef ET_FW_STEPS
#define ET_FW_STEPS 5 /* fine-tuning steps (forward + backward + SGD) on one sequence */
#endif
static uint8_t arena_mem[ET_FW_ARENA] __attribute__((aligned(64)));

/** status of each stage (0 ok), the losses before and after one step, the plan */
volatile struct { int open, plan, create, step; float loss0, loss1; uint32_t plan_bytes, high_water; } et_fw_result;

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *a = (uint8_t *)d;
    const uint8_t *b = (const uint8_t *)s;
    while (n--) *a++ = *b++;
    return d;
}
void *memset(void *d, int c, size_t n)
{
    uint8_t *a = (uint8_t *)d;
    while (n--) *a++ = (uint8_t)c;
    return d;
}
void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *a = (uint8_t *)d;
    const uint8_t *b = (const uint8_t *)s;
    if (a < b) while (n--) *a++ = *b++;
    else while (n--) a[n] = b[n];
    return d;
}

#ifdef ET_FW_SEMIHOST
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void put(const char *s) { semihost(0x04, s); }
static void put_int(const char *label, long v)
{
    char b[24];
    int i = 22, neg = v < 0;
    unsigned long u = neg ? (unsigned long)-v : (unsigned long)v;
    b[23] = 0;
    do { b[i--] = (char)('0' + u % 10); u /= 10; } while (u);
    if (neg) b[i--] = '-';
    put(label);
    put(b + i + 1);
}
static void report(void)
{
    put_int("cortex-m7: image open ", et_fw_result.open);
    put_int(", plan ", et_fw_result.plan);
    put_int(", create ", et_fw_result.create);
    put_int(", step ", et_fw_result.step);
    put_int("\ncortex-m7: plan ", (long)et_fw_result.plan_bytes);
    put_int(" bytes, high-water ", (long)et_fw_result.high_water);
    put_int(" bytes; loss x1e6 before ", (long)(et_fw_result.loss0 * 1e6f));
    put_int(", after the SGD steps ", (long)(et_fw_result.loss1 * 1e6f));
    put("\n");
}
static void leave(int ok)
{
    static const uint32_t args[2] = {0x20026u, 0};
    put(ok ? "cortex-m7: ok\n" : "cortex-m7: FAILED\n");
    semihost(0x18, ok ? (const void *)(uintptr_t)0x20026u : (const void *)args);
}
#endif

static int run(void);
int main(void);
int main(void)
{
    int rc = run();
#ifdef ET_FW_SEMIHOST
    report();
    leave(rc == 0 && et_fw_result.high_water == et_fw_result.plan_bytes && et_fw_result.loss1 < et_fw_result.loss0);
#endif
    return rc;
}

static int run(void)
{
    static et_image im;
    static et_lora s;
    et_lora_config lc = {ET_FW_RANK, ET_FW_LAYERS, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_arena a;
    static int tok[ET_FW_T], tgt[ET_FW_T];
    int i, T;
    float l0 = 0, l1 = 0;
    if ((et_fw_result.open = et_image_open(&im, et_model_image, et_model_image_len)) != ET_OK) return 1;
    T = im.cfg.context < ET_FW_T ? im.cfg.context : ET_FW_T;
    if ((et_fw_result.plan = et_lora_plan_compute(&im, &lc, T, &p)) != ET_OK) return 1;
    et_fw_result.plan_bytes = (uint32_t)p.total;
    et_arena_init(&a, arena_mem, sizeof arena_mem);
    if ((et_fw_result.create = et_lora_create(&s, &im, &lc, T, 1, &a)) != ET_OK) return 1;
    for (i = 0; i < T; i++) { tok[i] = (i * 5 + 1) % im.cfg.vocab; tgt[i] = (i * 5 + 6) % im.cfg.vocab; }
    if ((et_fw_result.step = et_lora_loss(&s, tok, tgt, T, &l0)) != ET_OK) return 1;
    for (i = 0; i < ET_FW_STEPS && et_fw_result.step == ET_OK; i++) {
        et_fw_result.step = et_lora_accumulate(&s, tok, tgt, T, 1.0f, 0);
        if (et_fw_result.step == ET_OK) et_fw_result.step = et_lora_step(&s, 0.5f, 0.0f);
    }
    if (et_fw_result.step == ET_OK) et_fw_result.step = et_lora_loss(&s, tok, tgt, T, &l1);
    et_fw_result.loss0 = l0;
    et_fw_result.loss1 = l1;
    et_fw_result.high_water = (uint32_t)a.high_water;
    return 0;
}

// --- start-up

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void et_fw_reset(void);
void et_fw_reset(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss;) *d++ = 0;
    /* CP10 and CP11 full access: the FPU */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n isb");
    (void)main();
    for (;;) __asm__ volatile("wfi");
}

static void hang(void) { for (;;) {} }
#define H ((uintptr_t)hang)
__attribute__((section(".isr_vector"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&_estack, (uintptr_t)et_fw_reset, H, H, H, H, H, 0, 0, 0, 0, H, H, 0, H, H,
};
