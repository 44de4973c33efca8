/* arena.c - bump allocation from both ends of one caller-provided buffer.
 * Deliberately has no free list and no per-block header: the plan functions size the
 * arena exactly, and a block's size is known to its owner. */
#include "et_arena.h"

et_status et_arena_init(et_arena *a, void *buf, size_t size)
{
    if (!a) return ET_ERR_INVALID;
    if ((!buf && size) || ((uintptr_t)buf & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    a->base = (uint8_t *)buf;
    a->size = size & ~(size_t)(ET_ALIGN - 1); /* keeps tail blocks aligned */
    a->head = 0;
    a->tail = 0;
    a->high_water = 0;
    a->virt = 0;
    return ET_OK;
}

et_status et_arena_init_virtual(et_arena *a, void *base, size_t size)
{
    et_status s;
    if (!base) return ET_ERR_INVALID;
    if ((s = et_arena_init(a, base, size)) != ET_OK) return s;
    a->virt = 1;
    return ET_OK;
}

static void et__arena_note(et_arena *a)
{
    size_t used = a->head + a->tail;
    if (used > a->high_water) a->high_water = used;
}

et_status et_arena_alloc(et_arena *a, size_t bytes, void **out)
{
    size_t n = et_arena_block(bytes);
    if (!a || !out || n < bytes) return ET_ERR_INVALID;
    if (n > a->size - a->head - a->tail) return ET_ERR_NOMEM;
    a->tail += n;
    *out = a->base + a->size - a->tail;
    if (!a->virt) ET_MEMSET(*out, 0, n);
    et__arena_note(a);
    return ET_OK;
}

et_status et_arena_scratch(et_arena *a, size_t bytes, void **out)
{
    size_t n = et_arena_block(bytes);
    if (!a || !out || n < bytes) return ET_ERR_INVALID;
    if (n > a->size - a->head - a->tail) return ET_ERR_NOMEM;
    *out = a->base + a->head;
    a->head += n;
    et__arena_note(a);
    return ET_OK;
}

et_arena_mark et_arena_mark_get(const et_arena *a) { return a->head; }

void et_arena_release(et_arena *a, et_arena_mark m)
{
    if (m <= a->head) a->head = m;
}

size_t et_arena_free_bytes(const et_arena *a) { return a->size - a->head - a->tail; }
