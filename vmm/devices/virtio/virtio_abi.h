// Numbers from the virtio 1.2 specification that the transport, the queue
// walker and the devices share: virtio-mmio registers (§4.2.2), status and
// feature bits (§2.1, §6), split-ring flags (§2.7) and device IDs (§5).
#pragma once

#include <cstdint>

namespace vireo::virtio {

// ------------------------------------------------------------ virtio-mmio registers
inline constexpr uint32_t kMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kMmioVersion = 2;     // modern (non-legacy) interface
inline constexpr uint32_t kVendorId = 0x4f524956;  // "VIRO"

namespace reg {
inline constexpr uint64_t MagicValue = 0x000;
inline constexpr uint64_t Version = 0x004;
inline constexpr uint64_t DeviceId = 0x008;
inline constexpr uint64_t VendorId = 0x00c;
inline constexpr uint64_t DeviceFeatures = 0x010;
inline constexpr uint64_t DeviceFeaturesSel = 0x014;
inline constexpr uint64_t DriverFeatures = 0x020;
inline constexpr uint64_t DriverFeaturesSel = 0x024;
inline constexpr uint64_t QueueSel = 0x030;
inline constexpr uint64_t QueueNumMax = 0x034;
inline constexpr uint64_t QueueNum = 0x038;
inline constexpr uint64_t QueueReady = 0x044;
inline constexpr uint64_t QueueNotify = 0x050;
inline constexpr uint64_t InterruptStatus = 0x060;
inline constexpr uint64_t InterruptAck = 0x064;
inline constexpr uint64_t Status = 0x070;
inline constexpr uint64_t QueueDescLow = 0x080;
inline constexpr uint64_t QueueDescHigh = 0x084;
inline constexpr uint64_t QueueDriverLow = 0x090;
inline constexpr uint64_t QueueDriverHigh = 0x094;
inline constexpr uint64_t QueueDeviceLow = 0x0a0;
inline constexpr uint64_t QueueDeviceHigh = 0x0a4;
inline constexpr uint64_t ShmSel = 0x0ac;
inline constexpr uint64_t ShmLenLow = 0x0b0;
inline constexpr uint64_t ShmLenHigh = 0x0b4;
inline constexpr uint64_t ShmBaseLow = 0x0b8;
inline constexpr uint64_t ShmBaseHigh = 0x0bc;
inline constexpr uint64_t ConfigGeneration = 0x0fc;
inline constexpr uint64_t Config = 0x100;
}  // namespace reg

// ------------------------------------------------------------ device status (§2.1)
namespace status {
inline constexpr uint32_t Acknowledge = 1;
inline constexpr uint32_t Driver = 2;
inline constexpr uint32_t DriverOk = 4;
inline constexpr uint32_t FeaturesOk = 8;
inline constexpr uint32_t DeviceNeedsReset = 64;
inline constexpr uint32_t Failed = 128;
}  // namespace status

// InterruptStatus bits (§4.2.2).
inline constexpr uint32_t kIsrUsedBuffer = 1;
inline constexpr uint32_t kIsrConfigChange = 2;

// ------------------------------------------------------------ reserved feature bits (§6)
namespace feature {
inline constexpr unsigned IndirectDesc = 28;
inline constexpr unsigned EventIdx = 29;
inline constexpr unsigned Version1 = 32;
inline constexpr unsigned AccessPlatform = 33;
inline constexpr unsigned RingPacked = 34;
inline constexpr unsigned InOrder = 35;
}  // namespace feature

constexpr uint64_t bit(unsigned n) { return uint64_t(1) << n; }

// ------------------------------------------------------------ split virtqueue (§2.7)
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;
inline constexpr uint32_t kMaxQueueSize = 32768;

// Guest-memory layout of one descriptor (16 bytes, 16-byte aligned table).
inline constexpr uint64_t kDescSize = 16;
inline constexpr uint64_t kDescAddrOff = 0, kDescLenOff = 8, kDescFlagsOff = 12, kDescNextOff = 14;

// Sizes of the driver (avail) and device (used) areas for a queue of `n`.
constexpr uint64_t avail_ring_bytes(uint32_t n) { return 4 + 2ull * n + 2; }  // flags, idx, ring[n], used_event
constexpr uint64_t used_ring_bytes(uint32_t n) { return 4 + 8ull * n + 2; }   // flags, idx, ring[n], avail_event

// The EVENT_IDX rule (§2.7.7.2 / §2.7.10): should an event be sent when the
// index moved from `old_idx` to `new_idx` and the other side asked for `event`?
constexpr bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
    return uint16_t(new_idx - event - 1) < uint16_t(new_idx - old_idx);
}

// ------------------------------------------------------------ device IDs (§5)
inline constexpr uint32_t kDeviceBlock = 2;
inline constexpr uint32_t kDeviceBalloon = 5;

}  // namespace vireo::virtio
