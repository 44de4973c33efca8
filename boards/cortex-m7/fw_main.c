/* fw_main.c - bare-metal Cortex-M7 firmware: opens the device image compiled into flash
 * (in place, no copy), plans a LoRA session, creates it in a static arena and runs one
 * forward, one fine-tuning step (forward + backward + SGD) and a second forward.
 * No OS, no heap, no libc: the vector table, the reset handler and the three memory
 * functions the core may call are here. The results land in et_fw_result for a
 * debugger (no semihosting: the loss is a float a probe reads). */
#include <stddef.h>
#include <stdint.h>
#include "et_image.h"
#include "et_lora.h"

extern const unsigned char et_model_image[];
extern const size_t et_model_image_len;

#ifndef ET_FW_ARENA
#define ET_FW_ARENA (256u * 1024u)
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

int main(void);
int main(void)
{
    static et_image im;
    static et_lora s;
    et_lora_config lc = {4, 0, 0, ET_LORA_SGD};
    et_lora_plan p;
    et_arena a;
    int tok[8], tgt[8], i, T;
    float l0 = 0, l1 = 0;
    if ((et_fw_result.open = et_image_open(&im, et_model_image, et_model_image_len)) != ET_OK) return 1;
    T = im.cfg.context < 8 ? im.cfg.context : 8;
    if ((et_fw_result.plan = et_lora_plan_compute(&im, &lc, T, &p)) != ET_OK) return 1;
    et_fw_result.plan_bytes = (uint32_t)p.total;
    et_arena_init(&a, arena_mem, sizeof arena_mem);
    if ((et_fw_result.create = et_lora_create(&s, &im, &lc, T, 1, &a)) != ET_OK) return 1;
    for (i = 0; i < T; i++) { tok[i] = (i * 5 + 1) % im.cfg.vocab; tgt[i] = (i * 5 + 6) % im.cfg.vocab; }
    et_fw_result.step = et_lora_accumulate(&s, tok, tgt, T, 1.0f, &l0);
    if (et_fw_result.step == ET_OK) et_fw_result.step = et_lora_step(&s, 0.05f, 0.0f);
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
