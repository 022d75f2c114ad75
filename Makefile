# vireo — one entry point. `make help` lists the targets.
#
# The Makefile drives g++ directly: every .cpp under a folder is part of that
# folder's library, so adding a file needs no edit here.

PREFIX  ?= /usr/local
comma := ,
DESTDIR ?=
BUILD   ?= build

CXX      ?= g++
OPT      ?= -O2 -g
SAN      ?=
STATIC_RT ?= -static-libstdc++ -static-libgcc
# fmt header-only and the C libraries linked statically: vireo's own
# resident memory (not counting guest RAM) stays under 4 MiB because only
# the pages it touches of one binary are mapped, instead of the relocated
# data of eight shared libraries.
# fmt header-only costs ~3 s of compile time per file; the sanitizer and
# fuzz trees, where resident memory does not matter, link libfmt instead.
FMT_DEFS ?= -DFMT_HEADER_ONLY
FMT_LIB  ?=
CXXFLAGS := $(OPT) $(SAN) -std=c++23 -Wall -Wextra -Werror -Wno-missing-field-initializers \
            $(FMT_DEFS) -ffunction-sections -fdata-sections \
            -I. -Iinclude -I$(BUILD)/gen -MMD -MP -pthread
LDFLAGS  := $(SAN) -pthread $(STATIC_RT) -Wl,--gc-sections
# Debian package for each library: see `setup` below and the README.
VMM_LIBS  := $(FMT_LIB) -Wl,-Bstatic -luring -lbpf -lelf -lz -llzma -lseccomp -Wl,-Bdynamic
AGENT_LIBS := -ltbb

# Packages a fresh Debian 12 needs (build, tests, demo, benchmarks).
DEB_PACKAGES := build-essential g++ make clang llvm lld libclang-rt-14-dev clang-16 libclang-rt-16-dev \
    linux-libc-dev libbpf-dev bpftool libelf-dev zlib1g-dev liblzma-dev \
    liburing-dev libtbb-dev libgtest-dev libgmock-dev libbenchmark-dev \
    nlohmann-json3-dev libcli11-dev libfmt-dev libseccomp-dev libcpp-httplib-dev \
    qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils fio \
    procps util-linux e2fsprogs curl python3 clang-format

VMM_SRCS   := $(shell find vmm -name '*.cpp' ! -name main.cpp 2>/dev/null | sort)
BPF_SRCS   := $(shell find bpf -name '*.cpp' 2>/dev/null | sort)
BPF_PROGS  := $(shell find bpf -name '*.bpf.c' 2>/dev/null | sort)
AGENT_SRCS := $(shell find agent -name '*.cpp' 2>/dev/null | sort)
UNIT_SRCS  := $(shell find tests/unit -name '*.cpp' 2>/dev/null | sort)
KVM_SRCS   := $(shell find tests/kvm -name '*.cpp' 2>/dev/null | sort)
BENCH_SRCS := $(shell find tests/bench -name '*.cpp' 2>/dev/null | sort)
FUZZ_SRCS  := $(shell find tests/fuzz -maxdepth 1 -name '*.cpp' 2>/dev/null | sort)
GUEST_SRCS := $(shell find tests/guests/testguest -name '*.c' -o -name '*.S' 2>/dev/null | sort)
TOOL_SRCS  := $(shell find tools -maxdepth 1 -name '*.cpp' 2>/dev/null | sort)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
VMM_OBJS   := $(call obj,$(VMM_SRCS))
BPF_OBJS   := $(call obj,$(BPF_SRCS))
AGENT_OBJS := $(call obj,$(AGENT_SRCS))
BPF_PARTS  := $(patsubst bpf/%.bpf.c,$(BUILD)/gen/bpf/parts/%.bpf.o,$(BPF_PROGS))
BPF_SKELS  := $(BUILD)/gen/bpf/vireo.skel.h
TOOLS      := $(patsubst tools/%.cpp,$(BUILD)/%,$(TOOL_SRCS))

.PHONY: all setup test test-unit test-kvm test-qemu bench fuzz asan demo format clean install help
all: $(BUILD)/vireo $(BUILD)/testguest $(TOOLS)

help:
	@echo "make setup      install every Debian package vireo needs (apt-get, idempotent)"
	@echo "make            build $(BUILD)/vireo, $(BUILD)/testguest and the tools"
	@echo "make test       unit, /dev/kvm and QEMU-harness tests (each skips with a reason where it cannot run)"
	@echo "make test-unit | test-kvm | test-qemu   one layer of the tests"
	@echo "make asan       unit tests under ASan+UBSan"
	@echo "make fuzz       each libFuzzer target for FUZZ_SECONDS (default 20)"
	@echo "make bench      benchmarks -> $(BUILD)/bench/results.jsonl"
	@echo "make demo       build a guest image from Debian's kernel and boot it"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"

setup:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "setup: all $(words $(DEB_PACKAGES)) packages present"; fi

# ---------------------------------------------------------------- libraries
$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libvmm.a: $(VMM_OBJS) $(BPF_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJS)
	@rm -f $@; ar rcs $@ $^ $(if $(AGENT_OBJS),,/dev/null 2>/dev/null || true)

# BPF objects need their skeletons before they compile.
$(BPF_OBJS): $(BPF_SKELS)

# vmlinux.h is generated from the build machine's BTF, not checked in: CO-RE
# relocates every field access against the running kernel's BTF at load time
# anyway, and Debian ships no vmlinux.h.
$(BUILD)/gen/vmlinux.h:
	@mkdir -p $(dir $@)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# One BPF object per probe (bpf/<probe>.bpf.c) plus vireo.bpf.c with what
# they share; linked into one object so the shared map and process id exist
# once, and the loader has one skeleton.
$(BUILD)/gen/bpf/parts/%.bpf.o: bpf/%.bpf.c $(BUILD)/gen/vmlinux.h $(wildcard bpf/*.h include/vireo/*.h)
	@mkdir -p $(dir $@)
	clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(BUILD)/gen -Iinclude -Ibpf -c $< -o $@
	llvm-strip -g $@  # -g is for .BTF (kept); the DWARF would add ~600 KiB to vireo via the skeleton

# The definitions first: libbpf's linker (1.1) resolves a probe's extern map
# only against a definition it has already read.
$(BUILD)/gen/bpf/vireo.bpf.o: $(BUILD)/gen/bpf/parts/vireo.bpf.o $(filter-out %/parts/vireo.bpf.o,$(BPF_PARTS))
	bpftool gen object $@ $^

$(BUILD)/gen/bpf/%.skel.h: $(BUILD)/gen/bpf/%.bpf.o
	bpftool gen skeleton $< > $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- programs
# vireo itself is linked fully static: without ld.so, libc.so and libm.so
# mapped, its own resident memory is ~1 MiB smaller (vmm_rss_kib). It
# resolves no user or host names, so static glibc's NSS limits do not apply.
$(BUILD)/vireo: $(BUILD)/obj/vmm/main.o $(BUILD)/libvmm.a $(if $(AGENT_OBJS),$(BUILD)/libagent.a)
	$(CXX) $(LDFLAGS) -static -o $@ $^ $(FMT_LIB) -luring -lbpf -lelf -lz -llzma -lseccomp

# vireoctl takes from libvmm.a only the client side (socket path, request
# table, config parsing, snapshot building) and from libagent.a the trace
# writer (agent/trace.h; never TBB: nothing pulls tbb_executor.o). It is
# linked without libbpf, liburing and libseccomp: a link that needed them
# fails here, so the tool cannot grow a dependency on the VMM's internals.
$(BUILD)/vireoctl: $(BUILD)/obj/tools/vireoctl.o $(BUILD)/libvmm.a $(if $(AGENT_OBJS),$(BUILD)/libagent.a)
	$(CXX) $(LDFLAGS) -o $@ $^ $(FMT_LIB)

# replay runs the agent's policies in parallel on TBB (agent/tbb_executor.h); never linked into vireo.
$(BUILD)/replay: $(BUILD)/obj/tools/replay.o $(BUILD)/libagent.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(AGENT_LIBS)

# The test guest: freestanding, no libc, no ring-0 code (include/vireo/testguest_abi.h).
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-stack-protector \
    -fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables \
    -mcmodel=small -Iinclude -Itests/guests/testguest
$(BUILD)/testguest: $(GUEST_SRCS) tests/guests/testguest/testguest.ld $(wildcard tests/guests/testguest/*.h include/vireo/*.h)
	@mkdir -p $(dir $@)
	gcc $(GUEST_CFLAGS) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
	    -Wl,-T,tests/guests/testguest/testguest.ld -o $@ $(GUEST_SRCS)

# ---------------------------------------------------------------- tests
$(BUILD)/unit_tests: $(call obj,$(UNIT_SRCS)) $(BUILD)/libvmm.a $(if $(AGENT_OBJS),$(BUILD)/libagent.a)
	$(CXX) $(LDFLAGS) -o $@ $^ -lgtest -lgmock -lgtest_main $(VMM_LIBS) $(AGENT_LIBS)

$(BUILD)/kvm_tests: $(call obj,$(KVM_SRCS)) $(BUILD)/libvmm.a $(if $(AGENT_OBJS),$(BUILD)/libagent.a)
	$(CXX) $(LDFLAGS) -o $@ $^ -lgtest -lgtest_main $(VMM_LIBS)

test: all $(BUILD)/unit_tests $(BUILD)/kvm_tests
	@tests/run-tests unit kvm qemu

test-unit: $(BUILD)/unit_tests
	@tests/run-tests unit
test-kvm: all $(BUILD)/kvm_tests
	@tests/run-tests kvm
test-qemu: all
	@tests/run-tests qemu

# Sanitizer build of the unit tests: its own tree so flags never mix.
asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT="-O1 -g -fno-omit-frame-pointer" STATIC_RT= FMT_DEFS= FMT_LIB=-lfmt \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" $(BUILD)/asan/unit_tests
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 BUILD=$(BUILD)/asan tests/run-tests unit

# ---------------------------------------------------------------- fuzzing
FUZZ_SECONDS ?= 20
# clang 16: clang 14 cannot compile libstdc++ 12's <expected>. Both report
# __cpp_concepts 201907, which <expected> checks; clang 16 implements what
# it needs, so the macro is raised for it.
FUZZ_CXX := clang++-16
FUZZ_CXXFLAGS := -std=c++2b -O1 -g -fsanitize=fuzzer,address,undefined -D__cpp_concepts=202002L -Wno-macro-redefined \
    -Wno-builtin-macro-redefined -I. -Iinclude
# The parsers and devices fuzzers exercise; not the process-level glue.
FUZZ_LIB_OBJS := $(patsubst %.cpp,$(BUILD)/fuzz/obj/%.o,$(filter-out vmm/main.cpp vmm/machine.cpp,$(VMM_SRCS)) \
    $(filter-out agent/tbb_executor.cpp,$(AGENT_SRCS)))
FUZZERS := $(patsubst tests/fuzz/%.cpp,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
# vireo's sources are compiled once for all fuzzers (coverage + sanitizers)
# into an archive, so each fuzzer pulls in only the objects it needs.
$(BUILD)/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(subst fuzzer$(comma),fuzzer-no-link$(comma),$(FUZZ_CXXFLAGS)) -I$(BUILD)/gen -MMD -MP -c $< -o $@
$(BUILD)/fuzz/libvmm.a: $(FUZZ_LIB_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.cpp $(BUILD)/fuzz/libvmm.a
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -o $@ $< $(BUILD)/fuzz/libvmm.a $(VMM_LIBS) -lfmt -pthread
fuzz: $(FUZZERS)
	@tests/fuzz/run-fuzzers $(FUZZ_SECONDS) $(FUZZERS)

# ---------------------------------------------------------------- benchmarks
$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/libvmm.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(VMM_LIBS) $(AGENT_LIBS)
$(BUILD)/bench/controller_tick: $(BUILD)/obj/tests/bench/controller_tick.o $(BUILD)/libagent.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(AGENT_LIBS)
bench: all $(patsubst tests/bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRCS))
	@tests/bench/run-benchmarks $(BUILD)

demo: all
	@tools/demo $(BUILD)

format:
	clang-format -i $$(find vmm bpf agent include tests tools -name '*.cpp' -o -name '*.h' | grep -v '^tests/guests')

install: all
	install -D -m 0755 $(BUILD)/vireo $(DESTDIR)$(PREFIX)/bin/vireo
	for t in $(TOOLS); do install -D -m 0755 $$t $(DESTDIR)$(PREFIX)/bin/$$(basename $$t); done
	install -D -m 0755 tools/mkguest $(DESTDIR)$(PREFIX)/bin/vireo-mkguest
	install -D -m 0644 $(BUILD)/testguest $(DESTDIR)$(PREFIX)/lib/vireo/testguest

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
