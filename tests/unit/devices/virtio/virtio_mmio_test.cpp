// The virtio-mmio transport: its register map, feature negotiation, the
// status state machine, queue set-up, reset, interrupts and config space,
// driven like a guest driver would (32-bit accesses to the window).
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/fakes.h"
#include "tests/unit/virtio_test_ring.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/devices/virtio/virtio_mmio.h"

namespace vireo::test {
namespace {

using namespace virtio;

// A device type that records what the transport asks of it.
class FakeDevice final : public VirtioDevice {
public:
    std::string_view name() const override { return "fake"; }
    uint32_t device_id() const override { return 42; }
    uint64_t device_features() const override { return bit(3) | bit(40); }
    unsigned max_queues() const override { return 2; }
    uint16_t queue_max_size(unsigned q) const override { return q == 0 ? 16 : 8; }
    bool accept_features(uint64_t f) override { return !(f & bit(40)) || (f & bit(3)); }  // 40 needs 3
    void read_config(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof config ? config[offset + i] : 0;
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i)
            if (offset + i < sizeof config) config[offset + i] = data[i];
    }
    void activate(VirtioTransport& t) override {
        transport = &t;
        ++activations;
    }
    void process_queue(unsigned q) override {
        processed.push_back(q);
        if (!pop_on_process) return;
        DescChain chain;
        VirtQueue& vq = transport->queue(q);
        for (;;) {
            auto r = vq.pop(chain);
            if (!r) {
                if (is_ring_error(r.error().error)) transport->set_needs_reset("ring error");
                return;
            }
            if (!*r) return;
            vq.push_used(chain.head, 7);
            transport->publish_used(q);
        }
    }
    void reset() override { ++resets; }

    uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    VirtioTransport* transport = nullptr;
    int activations = 0, resets = 0;
    bool pop_on_process = false;
    std::vector<unsigned> processed;
};

class VirtioMmioTest : public ::testing::Test {
protected:
    VirtioMmioTest() : mem(make_guest_memory(1u << 20)) {
        auto d = std::make_unique<FakeDevice>();
        dev = d.get();
        VirtioMmio::Options o;
        o.notify_eventfds = false;
        mmio = std::make_unique<VirtioMmio>(mem, std::move(d), irq, o);
    }
    uint32_t rd(uint64_t off) { return uint32_t(read_n(*mmio, off, 4)); }
    void wr(uint64_t off, uint32_t v) { write_n(*mmio, off, v, 4); }
    void negotiate(uint64_t features) {
        wr(reg::Status, status::Acknowledge);
        wr(reg::Status, status::Acknowledge | status::Driver);
        wr(reg::DriverFeaturesSel, 0);
        wr(reg::DriverFeatures, uint32_t(features));
        wr(reg::DriverFeaturesSel, 1);
        wr(reg::DriverFeatures, uint32_t(features >> 32));
        wr(reg::Status, status::Acknowledge | status::Driver | status::FeaturesOk);
    }
    void setup_queue(unsigned q, const TestRing& ring) {
        wr(reg::QueueSel, q);
        wr(reg::QueueNum, ring.size());
        wr(reg::QueueDescLow, uint32_t(ring.addresses().desc));
        wr(reg::QueueDescHigh, uint32_t(ring.addresses().desc >> 32));
        wr(reg::QueueDriverLow, uint32_t(ring.addresses().driver));
        wr(reg::QueueDriverHigh, 0);
        wr(reg::QueueDeviceLow, uint32_t(ring.addresses().device));
        wr(reg::QueueDeviceHigh, 0);
        wr(reg::QueueReady, 1);
    }
    static constexpr uint32_t kRunning = status::Acknowledge | status::Driver | status::FeaturesOk | status::DriverOk;

    GuestMemory mem;
    FakeInterruptLine irq;
    FakeDevice* dev;
    std::unique_ptr<VirtioMmio> mmio;
};

TEST_F(VirtioMmioTest, IdentityRegisters) {
    EXPECT_EQ(rd(reg::MagicValue), 0x74726976u);
    EXPECT_EQ(rd(reg::Version), 2u);
    EXPECT_EQ(rd(reg::DeviceId), 42u);
    EXPECT_EQ(rd(reg::VendorId), kVendorId);
    EXPECT_EQ(rd(reg::Status), 0u);
    EXPECT_EQ(rd(reg::ShmLenLow), 0xffffffffu);  // no shared memory regions
}

TEST_F(VirtioMmioTest, DeviceFeaturePages) {
    wr(reg::DeviceFeaturesSel, 0);
    uint32_t lo = rd(reg::DeviceFeatures);
    wr(reg::DeviceFeaturesSel, 1);
    uint32_t hi = rd(reg::DeviceFeatures);
    uint64_t f = lo | (uint64_t(hi) << 32);
    EXPECT_TRUE(f & bit(3));
    EXPECT_TRUE(f & bit(40));
    EXPECT_TRUE(f & bit(feature::Version1));
    EXPECT_TRUE(f & bit(feature::EventIdx));
    EXPECT_TRUE(f & bit(feature::IndirectDesc));
    EXPECT_FALSE(f & bit(feature::RingPacked));
    wr(reg::DeviceFeaturesSel, 2);
    EXPECT_EQ(rd(reg::DeviceFeatures), 0u);
}

TEST_F(VirtioMmioTest, FeaturesOkNeedsVersion1) {
    negotiate(bit(3));
    EXPECT_FALSE(rd(reg::Status) & status::FeaturesOk);
    EXPECT_EQ(mmio->counters().refused_features.load(), 1u);
}

TEST_F(VirtioMmioTest, FeaturesOkRefusesUnofferedBits) {
    negotiate(bit(feature::Version1) | bit(7));
    EXPECT_FALSE(rd(reg::Status) & status::FeaturesOk);
}

TEST_F(VirtioMmioTest, FeaturesOkAsksTheDevice) {
    negotiate(bit(feature::Version1) | bit(40));  // 40 without 3: the fake refuses
    EXPECT_FALSE(rd(reg::Status) & status::FeaturesOk);
}

TEST_F(VirtioMmioTest, FeaturesOkAccepted) {
    negotiate(bit(feature::Version1) | bit(3) | bit(40) | bit(feature::EventIdx));
    EXPECT_TRUE(rd(reg::Status) & status::FeaturesOk);
    EXPECT_EQ(mmio->negotiated_features(), bit(feature::Version1) | bit(3) | bit(40) | bit(feature::EventIdx));
    // Features are frozen after FEATURES_OK.
    wr(reg::DriverFeaturesSel, 0);
    wr(reg::DriverFeatures, 0);
    EXPECT_EQ(mmio->negotiated_features() & bit(3), bit(3));
}

TEST_F(VirtioMmioTest, StatusBitsCannotBeCleared) {
    negotiate(bit(feature::Version1));
    wr(reg::Status, status::Acknowledge);  // drops DRIVER and FEATURES_OK
    EXPECT_EQ(rd(reg::Status), status::Acknowledge | status::Driver | status::FeaturesOk);
    EXPECT_GE(mmio->counters().bad_accesses.load(), 1u);
}

TEST_F(VirtioMmioTest, DriverOkNeedsFeaturesOk) {
    wr(reg::Status, status::Acknowledge | status::Driver | status::DriverOk);
    EXPECT_FALSE(rd(reg::Status) & status::DriverOk);
    EXPECT_EQ(dev->activations, 0);
}

TEST_F(VirtioMmioTest, QueueSetupAndNotify) {
    TestRing ring(mem, 0x1000, 16);
    negotiate(bit(feature::Version1));
    wr(reg::QueueSel, 0);
    EXPECT_EQ(rd(reg::QueueNumMax), 16u);
    wr(reg::QueueSel, 1);
    EXPECT_EQ(rd(reg::QueueNumMax), 8u);
    wr(reg::QueueSel, 2);
    EXPECT_EQ(rd(reg::QueueNumMax), 0u);  // no such queue
    setup_queue(0, ring);
    wr(reg::QueueSel, 0);
    EXPECT_EQ(rd(reg::QueueReady), 1u);
    wr(reg::Status, kRunning);
    EXPECT_EQ(dev->activations, 1);
    dev->processed.clear();
    wr(reg::QueueNotify, 0);
    EXPECT_EQ(dev->processed, std::vector<unsigned>{0});
    wr(reg::QueueNotify, 1);  // not ready: ignored
    wr(reg::QueueNotify, 9);  // no such queue: counted
    EXPECT_EQ(dev->processed, std::vector<unsigned>{0});
    EXPECT_GE(mmio->counters().bad_accesses.load(), 1u);
}

TEST_F(VirtioMmioTest, BadQueueConfigurationRefused) {
    negotiate(bit(feature::Version1));
    TestRing ring(mem, 0x1000, 16);
    wr(reg::QueueSel, 0);
    wr(reg::QueueNum, 32);  // more than QueueNumMax
    wr(reg::QueueDescLow, uint32_t(ring.addresses().desc));
    wr(reg::QueueDriverLow, uint32_t(ring.addresses().driver));
    wr(reg::QueueDeviceLow, uint32_t(ring.addresses().device));
    wr(reg::QueueReady, 1);
    EXPECT_EQ(rd(reg::QueueReady), 0u);
    wr(reg::QueueNum, 16);
    wr(reg::QueueDescHigh, 1);  // 4 GiB up: outside RAM
    wr(reg::QueueReady, 1);
    EXPECT_EQ(rd(reg::QueueReady), 0u);
    EXPECT_EQ(mmio->counters().refused_queues.load(), 2u);
    wr(reg::QueueDescHigh, 0);
    wr(reg::QueueReady, 1);
    EXPECT_EQ(rd(reg::QueueReady), 1u);
    // A ready queue's configuration cannot change.
    wr(reg::QueueNum, 8);
    wr(reg::QueueDescLow, 0x8000);
    EXPECT_EQ(mmio->queue(0).size(), 16);
    EXPECT_EQ(mmio->queue(0).addresses().desc, ring.addresses().desc);
}

TEST_F(VirtioMmioTest, QueueReadyBeforeFeaturesOkRefused) {
    TestRing ring(mem, 0x1000, 16);
    setup_queue(0, ring);
    wr(reg::QueueSel, 0);
    EXPECT_EQ(rd(reg::QueueReady), 0u);
}

TEST_F(VirtioMmioTest, ResetClearsEverything) {
    TestRing ring(mem, 0x1000, 16);
    negotiate(bit(feature::Version1) | bit(feature::EventIdx));
    setup_queue(0, ring);
    wr(reg::Status, kRunning);
    wr(reg::Status, 0);
    EXPECT_EQ(rd(reg::Status), 0u);
    EXPECT_EQ(dev->resets, 1);
    EXPECT_FALSE(mmio->queue(0).ready());
    EXPECT_EQ(mmio->negotiated_features(), 0u);
    wr(reg::QueueSel, 0);
    EXPECT_EQ(rd(reg::QueueReady), 0u);
    EXPECT_EQ(mmio->counters().resets.load(), 1u);
    // And the device can be brought up again.
    negotiate(bit(feature::Version1));
    setup_queue(0, ring);
    wr(reg::Status, kRunning);
    EXPECT_EQ(dev->activations, 2);
}

TEST_F(VirtioMmioTest, UsedBufferInterruptAndAck) {
    TestRing ring(mem, 0x1000, 16);
    negotiate(bit(feature::Version1));
    setup_queue(0, ring);
    wr(reg::Status, kRunning);
    dev->pop_on_process = true;
    ring.set_desc(0, 0x40000, 64);
    ring.make_available(0);
    wr(reg::QueueNotify, 0);
    EXPECT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used(0), (std::pair<uint32_t, uint32_t>{0, 7}));
    EXPECT_EQ(rd(reg::InterruptStatus), kIsrUsedBuffer);
    EXPECT_EQ(irq.levels(), (std::vector<bool>{true, false}));  // one edge
    wr(reg::InterruptAck, kIsrUsedBuffer);
    EXPECT_EQ(rd(reg::InterruptStatus), 0u);
}

TEST_F(VirtioMmioTest, BuffersBeforeDriverOkAreProcessedAtDriverOk) {
    TestRing ring(mem, 0x1000, 16);
    negotiate(bit(feature::Version1));
    setup_queue(0, ring);
    dev->pop_on_process = true;
    ring.set_desc(0, 0x40000, 64);
    ring.make_available(0);
    wr(reg::QueueNotify, 0);  // before DRIVER_OK: the device must not look
    EXPECT_EQ(ring.used_idx(), 0);
    wr(reg::Status, kRunning);
    EXPECT_EQ(ring.used_idx(), 1);
}

TEST_F(VirtioMmioTest, RingErrorSetsNeedsReset) {
    TestRing ring(mem, 0x1000, 16);
    negotiate(bit(feature::Version1));
    setup_queue(0, ring);
    wr(reg::Status, kRunning);
    dev->pop_on_process = true;
    ring.set_avail_idx(100);  // a jump beyond the queue size
    wr(reg::QueueNotify, 0);
    EXPECT_TRUE(rd(reg::Status) & status::DeviceNeedsReset);
    EXPECT_TRUE(rd(reg::InterruptStatus) & kIsrConfigChange);
    EXPECT_FALSE(mmio->running());
    // The driver writing its status back keeps the device's bit.
    wr(reg::Status, kRunning);
    EXPECT_TRUE(rd(reg::Status) & status::DeviceNeedsReset);
    dev->processed.clear();
    wr(reg::QueueNotify, 0);
    EXPECT_TRUE(dev->processed.empty());  // a broken device does no work
    wr(reg::Status, 0);
    EXPECT_EQ(rd(reg::Status), 0u);
}

TEST_F(VirtioMmioTest, ConfigSpaceAndGeneration) {
    EXPECT_EQ(read_n(*mmio, reg::Config, 1), 1u);
    EXPECT_EQ(read_n(*mmio, reg::Config + 2, 2), 0x0403u);
    EXPECT_EQ(read_n(*mmio, reg::Config, 8), 0x0807060504030201ull);
    EXPECT_EQ(read_n(*mmio, reg::Config + 0x100, 4), 0u);
    write_n(*mmio, reg::Config + 1, 0xaa, 1);
    EXPECT_EQ(dev->config[1], 0xaa);
    uint32_t g = rd(reg::ConfigGeneration);
    {
        auto lock = mmio->lock();
        mmio->config_changed();
    }
    EXPECT_EQ(rd(reg::ConfigGeneration), g + 1);
    EXPECT_EQ(rd(reg::InterruptStatus), 0u);  // no interrupt before DRIVER_OK
}

TEST_F(VirtioMmioTest, BadRegisterWidthsAreCounted) {
    EXPECT_EQ(read_n(*mmio, reg::MagicValue, 2), 0u);
    EXPECT_EQ(read_n(*mmio, reg::MagicValue + 1, 4), 0u);
    write_n(*mmio, reg::Status, 1, 1);
    EXPECT_EQ(rd(reg::Status), 0u);
    wr(reg::MagicValue, 5);  // read-only
    EXPECT_EQ(mmio->counters().bad_accesses.load(), 4u);
}

}  // namespace
}  // namespace vireo::test
