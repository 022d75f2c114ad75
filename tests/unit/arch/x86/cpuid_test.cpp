#include <gtest/gtest.h>

#include "vmm/arch/x86/cpuid.h"

namespace vireo {
namespace {

kvm_cpuid_entry2 leaf(uint32_t fn, uint32_t index = 0) {
    kvm_cpuid_entry2 e{};
    e.function = fn;
    e.index = index;
    e.eax = 0x11111111;
    e.ebx = 0x2222ffff;
    e.ecx = 0x33333333;
    e.edx = 0x44444444;
    return e;
}

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& v, uint32_t fn, uint32_t index = 0) {
    for (const auto& e : v)
        if (e.function == fn && e.index == index) return &e;
    return nullptr;
}

TEST(Cpuid, ApicIdsAndHypervisorBit) {
    std::vector<kvm_cpuid_entry2> supported = {leaf(1), leaf(0xb, 0), leaf(0xb, 1), leaf(0xb, 2), leaf(0x8000001e),
                                               leaf(0x80000008), leaf(0xa), leaf(0x40000000)};
    for (unsigned i = 0; i < 4; ++i) {
        auto out = normalise_cpuid(supported, i, 4);
        ASSERT_EQ(out.size(), supported.size());
        const auto* l1 = find(out, 1);
        EXPECT_EQ(l1->ebx >> 24, i) << "initial APIC ID";
        EXPECT_EQ((l1->ebx >> 16) & 0xff, 4u) << "logical processors";
        EXPECT_EQ(l1->ebx & 0xffff, 0xffffu) << "other bits kept";
        EXPECT_TRUE(l1->ecx & (1u << 31)) << "hypervisor bit";
        EXPECT_TRUE(l1->edx & (1u << 28)) << "HTT";
        EXPECT_EQ(find(out, 0xb, 0)->edx, i);
        EXPECT_EQ(find(out, 0xb, 1)->edx, i);
        EXPECT_EQ(find(out, 0xb, 0)->ebx, 1u) << "one thread per core";
        EXPECT_EQ(find(out, 0xb, 1)->ebx, 4u) << "four cores";
        EXPECT_EQ(find(out, 0xb, 1)->eax, 2u) << "shift for 4 cores";
        EXPECT_EQ((find(out, 0xb, 1)->ecx >> 8) & 0xff, 2u) << "core level type";
        EXPECT_EQ((find(out, 0xb, 2)->ecx >> 8) & 0xff, 0u) << "invalid level";
        EXPECT_EQ(find(out, 0x8000001e)->eax, i) << "extended APIC ID";
        EXPECT_EQ(find(out, 0x80000008)->ecx & 0xff, 3u) << "cores - 1";
        EXPECT_EQ(find(out, 0xa)->eax, 0u) << "no PMU";
        EXPECT_EQ(find(out, 0x40000000)->eax, 0x11111111u) << "KVM leaves kept";
    }
}

TEST(Cpuid, SingleCpuTopology) {
    auto out = normalise_cpuid({leaf(0xb, 1)}, 0, 1);
    EXPECT_EQ(out[0].eax, 0u);
    EXPECT_EQ(out[0].ebx, 1u);
}

}  // namespace
}  // namespace vireo
