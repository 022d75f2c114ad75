// The baseline of the exit benchmarks: the smallest VMM that can run the
// test guest. It sets the guest up with vireo's own loader (so both run the
// same guest in the same state) and then spins in the most direct KVM_RUN
// loop possible: no bus, no devices, a switch on the port number. What vireo
// does on top of this per exit is what `exit_roundtrip_ns` measures.
//
//   raw_kvm_loop TESTGUEST CMDLINE [MEM_MIB]
// prints the guest's console on stdout and, on stderr,
// "first_pio_monotonic_ns=N" when the guest stops.
#include <linux/kvm.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "vireo/layout.h"
#include "vireo/testguest_abi.h"
#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/kernel_loader.h"
#include "vmm/arch/x86/vcpu_init.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

using namespace vireo;

static int fail(const std::string& what) {
    std::fprintf(stderr, "raw_kvm_loop: %s\n", what.c_str());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 3) return fail("usage: raw_kvm_loop TESTGUEST CMDLINE [MEM_MIB]");
    uint64_t mem_size = (argc > 3 ? std::stoull(argv[3]) : 64) << 20;
    auto image = read_kernel_image(argv[1], mem_size, false);
    if (!image) return fail(image.error());
    auto kvm = KvmSystem::open();
    if (!kvm) return fail(kvm.error());
    std::vector<GuestMemory::Layout> layout;
    for (const auto& r : guest_ram_regions(mem_size)) layout.push_back({r.guest_addr, r.size});
    auto mem = GuestMemory::create(layout, false);
    auto vm = Vm::create(*kvm);
    if (!mem || !vm) return fail("cannot create the VM");
    if (auto r = vm->map_memory(*mem); !r) return fail(r.error());
    if (auto r = vm->create_x86_irqchip(); !r) return fail(r.error());
    auto vcpu = Vcpu::create(*kvm, *vm, 0);
    if (!vcpu) return fail(vcpu.error());
    BootInputs in;
    in.cmdline = argv[2];
    in.mem_size = mem_size;
    in.tsc_khz = vcpu->tsc_khz();
    auto plan = load_kernel(*image, *mem, in);
    if (!plan) return fail(plan.error());
    if (auto r = init_vcpu(*kvm, *vcpu, 1, &plan->entries[0]); !r) return fail(r.error());

    kvm_run* run = vcpu->run_state();
    std::chrono::steady_clock::time_point first{};
    std::string line;
    for (;;) {
        if (vcpu->run() < 0) continue;
        if (run->exit_reason != KVM_EXIT_IO) return fail("unexpected exit " + std::to_string(run->exit_reason));
        if (first == std::chrono::steady_clock::time_point{}) first = std::chrono::steady_clock::now();
        auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
        switch (run->io.port) {
            case VIREO_PORT_NULL: break;
            case VIREO_SERIAL_COM1 + 5: *data = 0x60; break;  // LSR: transmitter empty
            case VIREO_SERIAL_COM1:
                if (run->io.direction == KVM_EXIT_IO_OUT) std::fputc(*data, stdout);
                break;
            case VIREO_ACPI_PM1A_CNT:
            case VIREO_PORT_TEST_EXIT:
                if (run->io.direction == KVM_EXIT_IO_OUT) {
                    std::fflush(stdout);
                    std::fprintf(stderr, "first_pio_monotonic_ns=%lld\n",
                                 (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(first.time_since_epoch()).count());
                    return 0;
                }
                break;
            default:
                if (run->io.direction == KVM_EXIT_IO_IN) std::memset(data, 0xff, run->io.size);
        }
    }
}
