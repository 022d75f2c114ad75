// Least privilege: `--user NAME` makes a vireo started as root
// open everything it needs (/dev/kvm, disks, the control socket, the eBPF
// probes -- all done while the guests are built) and then become NAME with
// no capabilities at all, before any guest runs.
//
// vireo is linked statically, where glibc's getpwnam would need NSS
// modules it cannot load; so /etc/passwd and /etc/group are parsed here, by
// a small strict parser (unit-tested and fuzzed: tests/fuzz/fuzz_passwd.cpp).
//
// Capabilities: none are kept. The probes need CAP_BPF + CAP_PERFMON to
// load, but also read tracefs, which is root's alone (mode 0700), so
// keeping the two would not keep the probes working -- and CAP_BPF in a
// process that a guest attacks is worth more to an attacker than a probe
// is to the operator. So the probes are loaded while still root: a restart
// reuses its guest's probe set, so they stay; a probe set that
// would have to be loaded after the drop is skipped with one log line
// (Machine::build). /dev/kvm is opened once
// before the drop and kept (dup'ed for each rebuilt machine), so restarts
// work; disks and kernels are opened again by path, so NAME must be able to
// read them (and write writable disks) for a restart to succeed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vireo::security {

struct PasswdEntry {
    std::string name;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string home;
};
struct GroupEntry {
    std::string name;
    uint32_t gid = 0;
    std::vector<std::string> members;
};

// passwd(5): name:password:uid:gid:gecos:home:shell, one entry a line;
// group(5): name:password:gid:member,member. Strict: a line with the wrong
// number of fields, an empty name, an id that is not a plain decimal below
// 2^32-1 (-1 means "no id"), a NUL byte, or a file over 4 MiB is an error
// naming the line. Blank lines are skipped; so are NIS "+"/"-" lines, which
// name no local entry.
std::expected<std::vector<PasswdEntry>, std::string> parse_passwd(std::string_view text);
std::expected<std::vector<GroupEntry>, std::string> parse_group(std::string_view text);

struct UserIds {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary: the primary group and every group listing the user
};
// The first entry named `name` (as getpwnam), with its groups.
std::expected<UserIds, std::string> lookup_user(std::string_view name, std::string_view passwd_text,
                                                std::string_view group_text);
// Reads /etc/passwd and /etc/group (or the given files).
std::expected<UserIds, std::string> resolve_user(std::string_view name, const char* passwd_path = "/etc/passwd",
                                                 const char* group_path = "/etc/group");

// Process-wide hardening settings, from the command line (and the host
// config), applied by lock_down().
struct HardeningOptions {
    std::optional<UserIds> user;  // --user
};
void set_hardening_options(HardeningOptions options);
const HardeningOptions& hardening_options();

// Becomes `user`: supplementary groups, gid, uid (real, effective, saved),
// then no capability in any set (bounding and ambient too); checks that it
// worked. Needs root (CAP_SETUID, CAP_SETGID, CAP_SETPCAP); must run while
// vireo has a single thread (glibc changes every thread's ids, but a
// filtered thread could not follow).
std::expected<void, std::string> drop_privileges(const UserIds& user);
// True once drop_privileges() succeeded in this process.
bool privileges_dropped();

// /dev/kvm opened before the drop and kept for the process (-1: none).
// KvmSystem::open duplicates it rather than open the device again.
int kept_kvm_fd();
std::expected<void, std::string> keep_kvm_fd(const char* path = "/dev/kvm");

// The control thread's last step before its guests start: with --user,
// keep /dev/kvm and drop to the user; then install the control thread's
// seccomp filter (seccomp_filters.h). Errors are host errors.
std::expected<void, std::string> lock_down();

}  // namespace vireo::security
