/* et_arena.h - caller-provided memory arena: the only source of memory in the core.
 *
 * The caller hands over one buffer aligned to ET_ALIGN. Persistent blocks (weights,
 * optimizer state, activations kept across calls) grow down from the tail; scratch
 * blocks grow up from the head and are released with a mark, so a scratch user cannot
 * leak into the persistent region. Every block is rounded up to ET_ALIGN bytes, which
 * is what et_arena_block() reports, so a plan computed with it is exact. Running out
 * is ET_ERR_NOMEM and leaves the arena as it was.
 */
#ifndef ET_ARENA_H
#define ET_ARENA_H

#include "et_conf.h"
#include "et_status.h"

typedef struct et_arena {
    uint8_t *base;     /**< start of the buffer (aligned to ET_ALIGN) */
    size_t size;       /**< bytes in the buffer */
    size_t head;       /**< bytes of scratch in use, from base up */
    size_t tail;       /**< bytes of persistent blocks, from base + size down */
    size_t high_water; /**< largest head + tail ever reached */
    int virt;          /**< device arena: addresses only, never touched by the core */
} et_arena;

/** A scratch mark: the head position to return to. */
typedef size_t et_arena_mark;

/** Bytes an arena takes for one block of @p bytes (rounded up to ET_ALIGN). */
static inline size_t et_arena_block(size_t bytes)
{
    return (bytes + (ET_ALIGN - 1)) & ~(size_t)(ET_ALIGN - 1);
}

/**
 * Takes over a buffer.
 * @param[out] a     the arena
 * @param[in]  buf   buffer aligned to ET_ALIGN (NULL only with size 0)
 * @param[in]  size  its size in bytes
 * @return ET_OK, or ET_ERR_INVALID if buf is misaligned or NULL with size > 0
 */
et_status et_arena_init(et_arena *a, void *buf, size_t size);

/**
 * Takes over an address range of device memory that the core must never read or write
 * (a GPU driver's buffer, or a range of handles it translates): blocks are carved the
 * same way but not zero-filled. @p base must be aligned to ET_ALIGN and non-NULL.
 */
et_status et_arena_init_virtual(et_arena *a, void *base, size_t size);

/**
 * Allocates a persistent block (lives until the arena is re-initialised).
 * @param[in,out] a arena
 * @param[in] bytes size (rounded up to ET_ALIGN)
 * @param[out] out the block, zero-filled (not in a virtual arena); untouched on failure
 * @return ET_OK or ET_ERR_NOMEM
 */
et_status et_arena_alloc(et_arena *a, size_t bytes, void **out);

/** Allocates a scratch block from the head, not zeroed; freed by et_arena_release(). */
et_status et_arena_scratch(et_arena *a, size_t bytes, void **out);

/** The current scratch position, to pass to et_arena_release() later. */
et_arena_mark et_arena_mark_get(const et_arena *a);

/** Frees every scratch block allocated since @p m. */
void et_arena_release(et_arena *a, et_arena_mark m);

/** Bytes still free between head and tail. */
size_t et_arena_free_bytes(const et_arena *a);

#endif /* ET_ARENA_H */
