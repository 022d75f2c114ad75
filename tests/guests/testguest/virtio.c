/* The virtio-mmio driver core: discovery, negotiation, split virtqueues.
 * Polled from ring 3; see virtio.h for why and how. */
#include "virtio.h"

#include "arch.h"
#include "guest.h"

#define TAG "vireo testguest: virtio: "

/* ------------------------------------------------------------ memory */
static uint64_t alloc_cursor;

void *guest_alloc(uint64_t bytes)
{
    const struct vireo_boot_info *bi = boot_info();
    if (!alloc_cursor) alloc_cursor = (bi->free_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    bytes = (bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (alloc_cursor + bytes > bi->free_end || alloc_cursor + bytes < alloc_cursor) return NULL;
    void *p = (void *)(uintptr_t)alloc_cursor;
    alloc_cursor += bytes;
    memset(p, 0, bytes);
    return p;
}

uint64_t guest_alloc_cursor(void)
{
    if (!alloc_cursor) guest_alloc(0);
    return alloc_cursor;
}

/* ------------------------------------------------------------ registers */
uint32_t vmmio_read(const struct virtio_dev *d, uint32_t off)
{
    return *(volatile uint32_t *)(d->base + off);
}

void vmmio_write(const struct virtio_dev *d, uint32_t off, uint32_t v)
{
    *(volatile uint32_t *)(d->base + off) = v;
}

/* A 64-bit config field read as two 32-bit halves, retried if the device
 * changed its config in between (§2.5.1: ConfigGeneration). */
uint64_t vconfig_read64(const struct virtio_dev *d, uint32_t off)
{
    for (;;) {
        uint32_t gen = vmmio_read(d, VMMIO_CONFIG_GENERATION);
        uint64_t lo = vmmio_read(d, VMMIO_CONFIG + off);
        uint64_t hi = vmmio_read(d, VMMIO_CONFIG + off + 4);
        if (vmmio_read(d, VMMIO_CONFIG_GENERATION) == gen) return lo | (hi << 32);
    }
}

bool virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *out)
{
    const struct vireo_boot_info *bi = boot_info();
    for (unsigned i = 0; i < bi->mmio_count; i++) {
        struct virtio_dev d = {.base = (uintptr_t)(bi->mmio_base + i * VIREO_VIRTIO_MMIO_SIZE), .index = i};
        if (vmmio_read(&d, VMMIO_MAGIC) != 0x74726976u || vmmio_read(&d, VMMIO_VERSION) != 2) continue;
        d.device_id = vmmio_read(&d, VMMIO_DEVICE_ID);
        if (d.device_id != device_id) continue;
        if (nth-- == 0) {
            *out = d;
            return true;
        }
    }
    return false;
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted, uint64_t required, const char *who)
{
    vmmio_write(d, VMMIO_STATUS, 0);
    vmmio_write(d, VMMIO_STATUS, VSTATUS_ACK);
    vmmio_write(d, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER);
    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = vmmio_read(d, VMMIO_DEVICE_FEATURES);
    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)vmmio_read(d, VMMIO_DEVICE_FEATURES) << 32;
    if ((offered & required) != required) {
        cprintf(TAG "%s: device offers features 0x%lx, missing required 0x%lx\n", who, (unsigned long)offered,
                (unsigned long)(required & ~offered));
        return false;
    }
    d->features = offered & wanted;
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 0);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)d->features);
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 1);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
    vmmio_write(d, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_FEATURES_OK);
    if (!(vmmio_read(d, VMMIO_STATUS) & VSTATUS_FEATURES_OK)) {
        cprintf(TAG "%s: device refused features 0x%lx\n", who, (unsigned long)d->features);
        return false;
    }
    return true;
}

bool virtq_init(struct virtio_dev *d, struct virtq *q, uint16_t index, uint16_t max_size, unsigned indirect_entries)
{
    memset(q, 0, sizeof *q);
    vmmio_write(d, VMMIO_QUEUE_SEL, index);
    uint32_t max = vmmio_read(d, VMMIO_QUEUE_NUM_MAX);
    if (!max) {
        cprintf(TAG "queue %u does not exist\n", index);
        return false;
    }
    uint16_t size = 1;
    while ((uint32_t)size * 2 <= max && size * 2 <= max_size) size = (uint16_t)(size * 2);
    /* desc table, then avail ring, then (page aligned) the used ring */
    uint64_t desc_bytes = 16ull * size, avail_bytes = 6 + 2ull * size;
    uint64_t used_off = (desc_bytes + avail_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint8_t *mem = guest_alloc(used_off + 6 + 8ull * size);
    if (!mem) {
        cprintf(TAG "out of memory for queue %u\n", index);
        return false;
    }
    q->dev = d;
    q->index = index;
    q->size = size;
    q->desc = (volatile struct vq_desc *)mem;
    q->avail = (volatile uint16_t *)(mem + desc_bytes);
    q->used = (volatile uint32_t *)(mem + used_off);
    q->event_idx = d->features & VBIT(VF_EVENT_IDX);
    for (uint16_t i = 0; i < size; i++) q->desc[i].next = (uint16_t)(i + 1);
    q->free_head = 0;
    q->num_free = size;
    if (indirect_entries && (d->features & VBIT(VF_INDIRECT_DESC))) {
        q->indirect_tables = guest_alloc(16ull * indirect_entries * size);
        if (q->indirect_tables) {
            q->indirect = true;
            q->indirect_max = indirect_entries;
        }
    }
    uint64_t da = (uintptr_t)q->desc, aa = (uintptr_t)q->avail, ua = (uintptr_t)q->used;
    vmmio_write(d, VMMIO_QUEUE_NUM, size);
    vmmio_write(d, VMMIO_QUEUE_DESC_LOW, (uint32_t)da);
    vmmio_write(d, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(da >> 32));
    vmmio_write(d, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)aa);
    vmmio_write(d, VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(aa >> 32));
    vmmio_write(d, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)ua);
    vmmio_write(d, VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(ua >> 32));
    vmmio_write(d, VMMIO_QUEUE_READY, 1);
    if (vmmio_read(d, VMMIO_QUEUE_READY) != 1) {
        cprintf(TAG "device refused queue %u\n", index);
        return false;
    }
    /* No interrupts can be delivered here: ask for none. With EVENT_IDX the
     * device reads used_event instead; half the index space away means "not
     * for a long time" (one interrupt per 32768 completions at most). */
    q->avail[0] = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    q->avail[2 + size] = 0x8000;
    q->notifies = 0;
    q->notify_cycles = 0;
    return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
    vmmio_write(d, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_FEATURES_OK | VSTATUS_DRIVER_OK);
}

int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n_out, unsigned n_in)
{
    unsigned n = n_out + n_in;
    if (!n) return -1;
    if (q->indirect && n > 1 && n <= q->indirect_max) {
        if (!q->num_free) return -1;
        uint16_t head = q->free_head;
        volatile struct vq_desc *t = q->indirect_tables + (uint64_t)head * q->indirect_max;
        for (unsigned i = 0; i < n; i++) {
            t[i].addr = bufs[i].addr;
            t[i].len = bufs[i].len;
            t[i].flags = (uint16_t)((i + 1 < n ? VDESC_NEXT : 0) | (i >= n_out ? VDESC_WRITE : 0));
            t[i].next = (uint16_t)(i + 1);
        }
        q->free_head = q->desc[head].next;
        q->num_free--;
        q->desc[head].addr = (uintptr_t)t;
        q->desc[head].len = 16 * n;
        q->desc[head].flags = VDESC_INDIRECT;
        q->avail[2 + q->avail_idx % q->size] = head;
        q->avail_idx++;
        return head;
    }
    if (n > q->num_free) return -1;
    uint16_t head = q->free_head, i = head, last = head;
    for (unsigned k = 0; k < n; k++) {
        q->desc[i].addr = bufs[k].addr;
        q->desc[i].len = bufs[k].len;
        q->desc[i].flags = (uint16_t)((k + 1 < n ? VDESC_NEXT : 0) | (k >= n_out ? VDESC_WRITE : 0));
        last = i;
        i = q->desc[i].next;
    }
    (void)last;
    q->free_head = i;
    q->num_free = (uint16_t)(q->num_free - n);
    q->avail[2 + q->avail_idx % q->size] = head;
    q->avail_idx++;
    return head;
}

void virtq_kick(struct virtq *q)
{
    uint16_t old = q->kicked_idx, new_idx = q->avail_idx;
    if (old == new_idx) return;
    /* Release: the ring entries and descriptors before the index. */
    __atomic_store_n(&q->avail[1], new_idx, __ATOMIC_RELEASE);
    /* Full barrier: the index must be visible before we read avail_event,
     * or we and the device may both decide the other will act. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool notify;
    if (q->event_idx) {
        uint16_t event = ((volatile uint16_t *)q->used)[2 + 4 * q->size];
        notify = (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
    } else {
        notify = !(((volatile uint16_t *)q->used)[0] & 1); /* VIRTQ_USED_F_NO_NOTIFY */
    }
    q->kicked_idx = new_idx;
    if (notify) {
        uint64_t t0 = rdtsc();
        vmmio_write(q->dev, VMMIO_QUEUE_NOTIFY, q->index);
        q->notify_cycles += rdtsc() - t0;
        q->notifies++;
    }
}

bool virtq_get(struct virtq *q, uint32_t *head, uint32_t *len)
{
    uint16_t used_idx = __atomic_load_n(&((volatile uint16_t *)q->used)[1], __ATOMIC_ACQUIRE);
    if (used_idx == q->last_used) return false;
    uint16_t slot = q->last_used % q->size;
    uint32_t id = q->used[1 + 2 * slot], l = q->used[2 + 2 * slot];
    q->last_used++;
    if (id >= q->size) panic("virtio queue %u: device returned head %u of %u", q->index, id, q->size);
    /* Give the chain's descriptors back to the free list. */
    uint16_t i = (uint16_t)id, n = 1;
    while (q->desc[i].flags & VDESC_NEXT) {
        i = q->desc[i].next;
        n++;
    }
    q->desc[i].next = q->free_head;
    q->free_head = (uint16_t)id;
    q->num_free = (uint16_t)(q->num_free + n);
    *head = id;
    *len = l;
    return true;
}
