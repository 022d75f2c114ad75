/* A ring-3, polling virtio-mmio driver core for the test guest.
 *
 * No interrupt can reach this guest, so completions are found by polling the
 * used ring, and every MMIO access is a vCPU exit (~36 us under PVM): the
 * drivers touch registers only to set up, to notify (and EVENT_IDX keeps
 * notifications rare) and to read config. Memory for rings and buffers comes
 * from a bump allocator over boot_info's free area, identity-mapped, so a
 * guest-virtual address is the guest-physical one the device wants.
 *
 *   virtio.c          device discovery, feature negotiation, split queues
 *   virtio_blk.c      virtio-blk driver + workloads blk-rw, blk-ro,
 *                     blk-randread, blk-seqread
 *   virtio_balloon.c  virtio-balloon driver + workload balloon
 */
#ifndef TESTGUEST_VIRTIO_H
#define TESTGUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* virtio-mmio registers (virtio 1.2 §4.2.2) */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_DRIVER_LOW 0x090
#define VMMIO_QUEUE_DRIVER_HIGH 0x094
#define VMMIO_QUEUE_DEVICE_LOW 0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

#define VSTATUS_ACK 1
#define VSTATUS_DRIVER 2
#define VSTATUS_DRIVER_OK 4
#define VSTATUS_FEATURES_OK 8
#define VSTATUS_NEEDS_RESET 64

#define VF_INDIRECT_DESC 28
#define VF_EVENT_IDX 29
#define VF_VERSION_1 32
#define VBIT(n) (1ull << (n))

#define VDESC_NEXT 1
#define VDESC_WRITE 2
#define VDESC_INDIRECT 4

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtio_dev {
    uintptr_t base;      /* the 4 KiB register window */
    unsigned index;      /* window number */
    uint32_t device_id;
    uint64_t features;   /* negotiated */
};

/* One buffer of a request: device-readable (out) or device-writable (in). */
struct vbuf {
    uint64_t addr;
    uint32_t len;
};

struct virtq {
    struct virtio_dev *dev;
    uint16_t index, size;
    volatile struct vq_desc *desc;
    volatile uint16_t *avail;  /* flags, idx, ring[size], used_event */
    volatile uint32_t *used;   /* as 32-bit words: flags|idx, then {id, len} pairs */
    uint16_t free_head, num_free;
    uint16_t avail_idx;        /* next avail.idx we publish */
    uint16_t kicked_idx;       /* avail.idx at the last notify decision */
    uint16_t last_used;
    bool event_idx, indirect;
    uint64_t notifies;         /* MMIO notify writes done (each one a vCPU exit) */
    uint64_t notify_cycles;    /* TSC cycles spent in them */
    volatile struct vq_desc *indirect_tables; /* size tables of `indirect_max` entries, one per head */
    unsigned indirect_max;
};

/* The free area allocator: page-aligned chunks, never freed. NULL when the
 * area is exhausted (callers report it and fail). */
void *guest_alloc(uint64_t bytes);
uint64_t guest_alloc_cursor(void); /* first byte not yet handed out */

uint32_t vmmio_read(const struct virtio_dev *d, uint32_t off);
void vmmio_write(const struct virtio_dev *d, uint32_t off, uint32_t v);
uint64_t vconfig_read64(const struct virtio_dev *d, uint32_t off);

/* The nth (0-based) device with this ID among boot_info's windows. */
bool virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *out);
/* Reset, ACK, DRIVER, features: offer what the device has of `wanted`, which
 * must include `required` (else false, with a message); FEATURES_OK. */
bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted, uint64_t required, const char *who);
/* Sets up queue `index` with min(max_size, QueueNumMax) entries (a power of
 * two). With `indirect_entries` > 0 and INDIRECT negotiated, each head gets
 * an indirect table of that many entries. */
bool virtq_init(struct virtio_dev *d, struct virtq *q, uint16_t index, uint16_t max_size, unsigned indirect_entries);
void virtio_driver_ok(struct virtio_dev *d);

/* Adds a request of n_out readable then n_in writable buffers; returns its
 * head or -1 if the ring has no room. Not yet visible to the device. */
int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n_out, unsigned n_in);
/* Publishes what was added and notifies the device if it asked for it. */
void virtq_kick(struct virtq *q);
/* One completed request, if any: its head and the used length. Its
 * descriptors are free again. */
bool virtq_get(struct virtq *q, uint32_t *head, uint32_t *len);

/* Workloads (workloads.c lists them). */
int blk_rw_run(const char *arg);
int blk_ro_run(const char *arg);
int blk_randread_run(const char *arg);
int blk_seqread_run(const char *arg);
int balloon_run(const char *arg);
int blk_counter_run(const char *arg);

#endif
