#include "vmm/security/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "vmm/log.h"
#include "vmm/security/seccomp_filters.h"

namespace vireo::security {

namespace {

constexpr size_t kMaxFileSize = 4u << 20;

// Splits `line` at ':' into exactly `n` fields, or fails.
bool split_fields(std::string_view line, size_t n, std::vector<std::string_view>& out) {
    out.clear();
    size_t start = 0;
    for (;;) {
        size_t colon = line.find(':', start);
        out.push_back(line.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
        if (out.size() > n) return false;
        if (colon == std::string_view::npos) break;
        start = colon + 1;
    }
    return out.size() == n;
}

// A plain decimal id: digits only, no sign, no leading zeros but "0",
// below 2^32-1 ((uid_t)-1 means "no change" to setresuid).
std::optional<uint32_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    if (s.size() > 1 && s[0] == '0') return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + uint64_t(c - '0');
    }
    if (v >= 0xffffffffull) return std::nullopt;
    return uint32_t(v);
}

// Names as shadow-utils allows them, a little wider: no ':', ',', NUL,
// whitespace or control characters, at most 256 bytes.
bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 256) return false;
    for (unsigned char c : s)
        if (c <= ' ' || c == ':' || c == ',' || c == 0x7f) return false;
    return true;
}

// Calls fn(line_number, line) for each non-blank, non-NIS line; an error
// from fn stops the walk.
template <class Fn>
std::expected<void, std::string> for_each_line(std::string_view text, const char* file, Fn fn) {
    if (text.size() > kMaxFileSize) return std::unexpected(fmt::format("{}: larger than {} MiB", file, kMaxFileSize >> 20));
    if (text.find('\0') != std::string_view::npos) return std::unexpected(fmt::format("{}: contains a NUL byte", file));
    size_t lineno = 0;
    while (!text.empty()) {
        ++lineno;
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty()) continue;
        if (line[0] == '+' || line[0] == '-') continue;  // NIS compat: no local entry
        if (auto r = fn(lineno, line); !r) return r;
    }
    return {};
}

std::expected<std::string, std::string> read_small_file(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return std::unexpected(fmt::format("{}: {}", path, std::strerror(e)));
        }
        if (n == 0) break;
        out.append(buf, size_t(n));
        if (out.size() > kMaxFileSize) {
            ::close(fd);
            return std::unexpected(fmt::format("{}: larger than {} MiB", path, kMaxFileSize >> 20));
        }
    }
    ::close(fd);
    return out;
}

std::atomic<bool> g_dropped{false};
std::atomic<int> g_kvm_fd{-1};
HardeningOptions g_options;

}  // namespace

std::expected<std::vector<PasswdEntry>, std::string> parse_passwd(std::string_view text) {
    std::vector<PasswdEntry> out;
    std::vector<std::string_view> f;
    auto r = for_each_line(text, "passwd", [&](size_t n, std::string_view line) -> std::expected<void, std::string> {
        if (!split_fields(line, 7, f)) return std::unexpected(fmt::format("passwd line {}: not 7 fields separated by ':'", n));
        if (!valid_name(f[0])) return std::unexpected(fmt::format("passwd line {}: bad user name", n));
        auto uid = parse_id(f[2]);
        auto gid = parse_id(f[3]);
        if (!uid || !gid) return std::unexpected(fmt::format("passwd line {}: uid or gid is not a decimal id", n));
        out.push_back({std::string(f[0]), *uid, *gid, std::string(f[5])});
        return {};
    });
    if (!r) return std::unexpected(r.error());
    return out;
}

std::expected<std::vector<GroupEntry>, std::string> parse_group(std::string_view text) {
    std::vector<GroupEntry> out;
    std::vector<std::string_view> f;
    auto r = for_each_line(text, "group", [&](size_t n, std::string_view line) -> std::expected<void, std::string> {
        if (!split_fields(line, 4, f)) return std::unexpected(fmt::format("group line {}: not 4 fields separated by ':'", n));
        if (!valid_name(f[0])) return std::unexpected(fmt::format("group line {}: bad group name", n));
        auto gid = parse_id(f[2]);
        if (!gid) return std::unexpected(fmt::format("group line {}: gid is not a decimal id", n));
        GroupEntry g{std::string(f[0]), *gid, {}};
        std::string_view members = f[3];
        while (!members.empty()) {
            size_t comma = members.find(',');
            std::string_view m = members.substr(0, comma);
            members = comma == std::string_view::npos ? std::string_view() : members.substr(comma + 1);
            if (m.empty()) continue;  // "a,,b" and a trailing comma: tolerated, as glibc does
            if (!valid_name(m)) return std::unexpected(fmt::format("group line {}: bad member name", n));
            g.members.emplace_back(m);
        }
        out.push_back(std::move(g));
        return {};
    });
    if (!r) return std::unexpected(r.error());
    return out;
}

std::expected<UserIds, std::string> lookup_user(std::string_view name, std::string_view passwd_text,
                                                std::string_view group_text) {
    if (!valid_name(name)) return std::unexpected(fmt::format("--user: '{}' is not a user name", name));
    auto users = parse_passwd(passwd_text);
    if (!users) return std::unexpected("--user: /etc/" + users.error());
    auto it = std::find_if(users->begin(), users->end(), [&](const PasswdEntry& e) { return e.name == name; });
    if (it == users->end()) return std::unexpected(fmt::format("--user: no user '{}' in /etc/passwd", name));
    if (it->uid == 0) return std::unexpected(fmt::format("--user: '{}' is uid 0; that drops nothing", name));
    auto groups = parse_group(group_text);
    if (!groups) return std::unexpected("--user: /etc/" + groups.error());
    UserIds u{it->name, uid_t(it->uid), gid_t(it->gid), {gid_t(it->gid)}};
    for (const auto& g : *groups)
        if (std::find(g.members.begin(), g.members.end(), name) != g.members.end() &&
            std::find(u.groups.begin(), u.groups.end(), gid_t(g.gid)) == u.groups.end())
            u.groups.push_back(gid_t(g.gid));
    if (u.groups.size() > 65536) return std::unexpected(fmt::format("--user: '{}' is in too many groups", name));
    return u;
}

std::expected<UserIds, std::string> resolve_user(std::string_view name, const char* passwd_path, const char* group_path) {
    auto passwd = read_small_file(passwd_path);
    if (!passwd) return std::unexpected("--user: " + passwd.error());
    auto group = read_small_file(group_path);
    if (!group) return std::unexpected("--user: " + group.error());
    return lookup_user(name, *passwd, *group);
}

void set_hardening_options(HardeningOptions options) { g_options = std::move(options); }
const HardeningOptions& hardening_options() { return g_options; }

bool privileges_dropped() { return g_dropped.load(std::memory_order_acquire); }

int kept_kvm_fd() { return g_kvm_fd.load(std::memory_order_acquire); }

std::expected<void, std::string> keep_kvm_fd(const char* path) {
    if (kept_kvm_fd() >= 0) return {};
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return std::unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
    g_kvm_fd.store(fd, std::memory_order_release);
    return {};
}

std::expected<void, std::string> drop_privileges(const UserIds& user) {
    auto fail = [&](const char* what) {
        return std::unexpected(fmt::format("--user {}: {}: {}", user.name, what, std::strerror(errno)));
    };
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the
    // uid change below takes away.
    for (int cap = 0; cap <= 63; ++cap)
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return fail("PR_CAPBSET_DROP");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return fail("PR_CAP_AMBIENT");
    if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return fail("PR_SET_KEEPCAPS");
    if (::setgroups(user.groups.size(), user.groups.data()) != 0) return fail("setgroups");
    if (::setresgid(user.gid, user.gid, user.gid) != 0) return fail("setresgid");
    if (::setresuid(user.uid, user.uid, user.uid) != 0) return fail("setresuid");
    // Leaving uid 0 clears the permitted and effective sets already
    // (KEEPCAPS is off); say so explicitly, then check every id and set.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capset, &hdr, data) != 0) return fail("capset");
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (::getresuid(&r, &e, &s) != 0 || r != user.uid || e != user.uid || s != user.uid) return fail("uid check");
    if (::getresgid(&rg, &eg, &sg) != 0 || rg != user.gid || eg != user.gid || sg != user.gid) return fail("gid check");
    if (::syscall(SYS_capget, &hdr, data) != 0) return fail("capget");
    for (const auto& d : data)
        if (d.effective || d.permitted || d.inheritable) {
            errno = EPERM;
            return fail("capabilities still held");
        }
    // Becoming root again must be impossible.
    if (::setuid(0) == 0) {
        errno = EPERM;
        return fail("setuid(0) still works");
    }
    g_dropped.store(true, std::memory_order_release);
    return {};
}

std::expected<void, std::string> lock_down() {
    if (const auto& user = g_options.user) {
        if (::geteuid() != 0 && ::geteuid() != user->uid)
            return std::unexpected(fmt::format("--user {}: vireo must start as root to become another user", user->name));
        if (::geteuid() == 0) {
            if (auto r = keep_kvm_fd(); !r) return std::unexpected(r.error());
            if (auto r = drop_privileges(*user); !r) return std::unexpected(r.error());
            log_info("running as user {} (uid {}, gid {}) with no capabilities", user->name, user->uid, user->gid);
        }
    }
    seccomp_install(ThreadKind::Control, "vireo");
    return {};
}

}  // namespace vireo::security
