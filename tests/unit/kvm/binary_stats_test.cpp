// KVM binary stats reader: descriptors by name, one read for all values, and
// a broken layout rejected with a reason -- on a fabricated stats file (a
// memfd laid out as KVM_GET_STATS_FD's fd is), so no /dev/kvm is needed.
#include "vmm/kvm/binary_stats.h"

#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bpf/telemetry_report.h"

namespace vireo {
namespace {

struct FakeDesc {
    std::string name;
    uint32_t flags;
    uint16_t size;
    uint32_t offset;
};

constexpr uint32_t kNameSize = 48;

// header | id | descriptors | data, as KVM lays it out.
std::vector<uint8_t> layout(const std::vector<FakeDesc>& descs, const std::vector<uint64_t>& data,
                            uint32_t name_size = kNameSize) {
    const uint32_t id_off = 24, desc_off = id_off + name_size;
    const uint32_t data_off = desc_off + uint32_t(descs.size()) * (16 + name_size);
    std::vector<uint8_t> f(data_off + data.size() * 8);
    uint32_t h[6] = {0, name_size, uint32_t(descs.size()), id_off, desc_off, data_off};
    std::memcpy(f.data(), h, sizeof h);
    std::strncpy(reinterpret_cast<char*>(&f[id_off]), "kvm-42/vcpu-0", name_size);
    for (size_t i = 0; i < descs.size(); ++i) {
        uint8_t* p = &f[desc_off + i * (16 + name_size)];
        int16_t exponent = (descs[i].flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_SECONDS ? -9 : 0;
        std::memcpy(p, &descs[i].flags, 4);
        std::memcpy(p + 4, &exponent, 2);
        std::memcpy(p + 6, &descs[i].size, 2);
        std::memcpy(p + 8, &descs[i].offset, 4);
        std::strncpy(reinterpret_cast<char*>(p + 16), descs[i].name.c_str(), name_size);
    }
    std::memcpy(&f[data_off], data.data(), data.size() * 8);
    return f;
}

UniqueFd memfd_with(const std::vector<uint8_t>& bytes) {
    UniqueFd fd(::memfd_create("stats", MFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), ssize_t(bytes.size()));
    return fd;
}

const std::vector<FakeDesc> kDescs = {
    {"exits", KVM_STATS_TYPE_CUMULATIVE, 1, 0},
    {"halt_wait_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, 1, 8},
    {"halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, 4, 16},
    {"blocking", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN, 1, 48},
};

TEST(BinaryStats, ReadsValuesByName) {
    auto stats = BinaryStats::from_fd(memfd_with(layout(kDescs, {20001, 5000, 1, 2, 3, 4, 1})));
    ASSERT_TRUE(stats) << stats.error();
    EXPECT_EQ(stats->id(), "kvm-42/vcpu-0");
    ASSERT_EQ(stats->descriptors().size(), 4u);
    const auto* hist = stats->find("halt_wait_hist");
    ASSERT_NE(hist, nullptr);
    EXPECT_EQ(hist->type(), uint32_t(KVM_STATS_TYPE_LOG_HIST));
    EXPECT_EQ(hist->unit(), uint32_t(KVM_STATS_UNIT_SECONDS));
    EXPECT_EQ(hist->exponent, -9);
    EXPECT_EQ(hist->size, 4);

    auto sample = stats->read();
    ASSERT_TRUE(sample) << sample.error();
    EXPECT_EQ(sample->value("exits"), 20001u);
    EXPECT_EQ(sample->value("halt_wait_ns"), 5000u);
    EXPECT_EQ(sample->value("blocking"), 1u);
    auto h = sample->values("halt_wait_hist");
    ASSERT_EQ(h.size(), 4u);
    EXPECT_EQ(h[0], 1u);
    EXPECT_EQ(h[3], 4u);
    // A name this kernel lacks is absent, not an error.
    EXPECT_FALSE(sample->value("no_such_stat"));
    EXPECT_TRUE(sample->values("no_such_stat").empty());
}

TEST(BinaryStats, EachReadIsFresh) {
    auto bytes = layout(kDescs, {1, 0, 0, 0, 0, 0, 0});
    UniqueFd fd = memfd_with(bytes);
    int raw = fd.get();
    auto stats = BinaryStats::from_fd(std::move(fd));
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->read()->value("exits"), 1u);
    uint64_t two = 2;
    const size_t data_off = 24 + kNameSize + kDescs.size() * (16 + kNameSize);
    ASSERT_EQ(::pwrite(raw, &two, 8, off_t(data_off)), 8);
    EXPECT_EQ(stats->read()->value("exits"), 2u);
}

TEST(BinaryStats, RejectsBrokenLayouts) {
    // Unaligned value offset.
    auto r = BinaryStats::from_fd(memfd_with(layout({{"exits", 0, 1, 4}}, {0, 0})));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("exits"), std::string::npos) << r.error();
    // Zero-sized value.
    EXPECT_FALSE(BinaryStats::from_fd(memfd_with(layout({{"exits", 0, 0, 0}}, {0}))));
    // Absurd name size.
    EXPECT_FALSE(BinaryStats::from_fd(memfd_with(layout(kDescs, {0, 0, 0, 0, 0, 0, 0}, 1u << 20))));
    // Truncated: descriptors promised but the file ends after the header.
    auto bytes = layout(kDescs, {0, 0, 0, 0, 0, 0, 0});
    bytes.resize(30);
    auto t = BinaryStats::from_fd(memfd_with(bytes));
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().find("short read"), std::string::npos) << t.error();
}

TEST(BinaryStats, ShortDataIsAnErrorNotGarbage) {
    auto bytes = layout(kDescs, {0, 0, 0, 0, 0, 0, 0});
    bytes.resize(bytes.size() - 8);  // the last value is missing
    auto stats = BinaryStats::from_fd(memfd_with(bytes));
    ASSERT_TRUE(stats) << stats.error();
    EXPECT_FALSE(stats->read());
}

// The telemetry record takes KVM's values by name; a histogram longer than
// ours keeps its first buckets and folds the rest into the last.
TEST(BinaryStats, FillsTelemetryByName) {
    std::vector<uint64_t> data(2 + 40, 0);
    data[0] = 777;     // exits
    data[1] = 123456;  // halt_wait_ns
    data[2 + 3] = 5;   // bucket 3
    data[2 + 31] = 1;  // bucket 31
    data[2 + 39] = 2;  // beyond our 32: folded into 31
    auto stats = BinaryStats::from_fd(
        memfd_with(layout({{"exits", KVM_STATS_TYPE_CUMULATIVE, 1, 0},
                           {"halt_wait_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, 1, 8},
                           {"halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, 40, 16}},
                          data)));
    ASSERT_TRUE(stats) << stats.error();
    auto sample = stats->read();
    ASSERT_TRUE(sample);
    vireo_vcpu_telemetry v{};
    add_binary_stats(*sample, v);
    EXPECT_TRUE(v.sources & VIREO_TELEMETRY_BINARY_STATS);
    EXPECT_EQ(v.kvm_exits, 777u);
    EXPECT_EQ(v.halt_wait_ns, 123456u);
    EXPECT_EQ(v.kvm_halt_exits, 0u);  // absent here: stays 0
    EXPECT_EQ(v.halt_wait_hist.bucket[3], 5u);
    EXPECT_EQ(v.halt_wait_hist.bucket[VIREO_HIST_BUCKETS - 1], 3u);
}

}  // namespace
}  // namespace vireo
