#include "vmm/cli.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <charconv>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vireo/version.h"

namespace vireo {

std::expected<uint64_t, std::string> parse_size(const std::string& text) {
    uint64_t value = 0;
    const char* begin = text.data();
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(begin, end, value);
    if (ec == std::errc::result_out_of_range) return std::unexpected(fmt::format("size '{}' is too large", text));
    if (ec != std::errc() || p == begin) return std::unexpected(fmt::format("size '{}' is not a number with an optional K/M/G/T suffix", text));
    std::string suffix(p, end);
    for (auto& c : suffix) c = char(std::toupper(static_cast<unsigned char>(c)));
    unsigned shift;
    if (suffix.empty() || suffix == "M" || suffix == "MB" || suffix == "MIB") shift = 20;
    else if (suffix == "K" || suffix == "KB" || suffix == "KIB") shift = 10;
    else if (suffix == "G" || suffix == "GB" || suffix == "GIB") shift = 30;
    else if (suffix == "T" || suffix == "TB" || suffix == "TIB") shift = 40;
    else if (suffix == "B") shift = 0;
    else return std::unexpected(fmt::format("size '{}' has an unknown suffix '{}' (use K, M, G or T)", text, std::string(p, end)));
    if (value > (UINT64_MAX >> shift)) return std::unexpected(fmt::format("size '{}' is too large", text));
    return value << shift;
}

namespace {

// The shared parser names the config file's keys ('cpus'); here they are
// flags (--cpus). Disk and balloon errors already name their flag.
std::string as_flag_error(const std::string& e) {
    static constexpr std::pair<std::string_view, std::string_view> keys[] = {
        {"'cpus'", "--cpus"},       {"'mem'", "--mem"},         {"'console'", "--console"}, {"'cmdline'", "--cmdline"},
        {"'probes'", "--probes"},   {"'kernel'", "--kernel"},   {"'initrd'", "--initrd"},   {"'disks': ", ""},
        {"'balloon': ", ""}};
    for (auto [key, flag] : keys)
        if (e.starts_with(key)) return std::string(flag) + e.substr(key.size());
    return e;
}

}  // namespace

std::expected<CliResult, std::string> parse_command_line(int argc, const char* const* argv) {
    CliResult result;
    // What the flags set directly; the rest goes through the shared guest
    // settings parser below.
    MachineConfig c;
    CLI::App app{"vireo: a lightweight KVM virtual machine monitor", "vireo"};
    app.set_version_flag("--version", std::string("vireo ") + VIREO_VERSION);
    app.require_subcommand(1);

    std::string mem_text = "256M";
    auto* run = app.add_subcommand("run", "boot one guest from a kernel image (bzImage, vmlinux ELF, or the vireo test guest)");
    run->add_option("--kernel", c.kernel, "kernel image: bzImage, ELF64 vmlinux (PVH or 64-bit entry), or a vireo ring-3 ELF")
        ->required();
    run->add_option("--initrd", c.initrd, "initial ramdisk");
    run->add_option("--cmdline", c.cmdline, "kernel command line");
    run->add_option("--cpus", c.cpus, "number of vCPUs (1 to what KVM allows)")->default_val(1);
    run->add_option("--mem", mem_text, "guest RAM, e.g. 512M, 2G (bare number: MiB)")->default_val("256M");
    run->add_option("--console", c.console, "stdio | file:PATH | none")->default_val("stdio");
    run->add_option("--name", c.name, "guest name (thread names, logs)")->default_val("vm0");
    run->add_flag("--hugepages", c.hugepages, "back guest RAM with 2 MiB hugepages");
    bool no_unpack = false;
    run->add_flag("--no-unpack-kernel", no_unpack,
                  "boot a bzImage as is, letting it decompress itself (default: vireo unpacks an xz payload natively)");
    run->add_flag("--stats", c.stats, "print exit and device statistics when the guest stops");
    std::vector<std::string> disk_specs;
    run->add_option("--disk", disk_specs,
                    "virtio-blk disk (repeatable): PATH[,ro][,direct][,queues=N][,queue-size=M][,serial=S][,poll=US]")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    std::string balloon_spec;
    auto* balloon_opt = run->add_option("--balloon", balloon_spec,
                                        "virtio-balloon: [deflate-on-oom][,stats=SECONDS][,reporting]")
                            ->expected(0, 1);
    run->add_flag("--virtio-cmdline", c.virtio_cmdline,
                  "also list virtio devices as virtio_mmio.device= on the kernel command line (ACPI always lists them)");
    std::string restart_spec = "never", hang_spec = "on", watchdog_spec;
    run->add_option("--restart", restart_spec,
                    "restart policy: never|on-failure|always[,backoff_initial_s=S][,backoff_max_s=S][,reset_after_s=S]"
                    "[,max_failures=N][,window_s=S]")
        ->default_val("never");
    run->add_option("--hang", hang_spec, "hang detection: on|off|min_s=S[,factor=F][,max_s=S]")->default_val("on");
    auto* watchdog_opt = run->add_option("--watchdog", watchdog_spec,
                                         "IB700 watchdog at ports 0x441/0x443: [timeout_s=S] (default: the guest's timeout)")
                             ->expected(0, 1);
    std::string probes_text = "auto";
    run->add_option("--probes", probes_text,
                    "eBPF probes: auto (what this host allows; says once what is off), on (all or fail), off")
        ->default_val("auto");

    const char* control_help = "control socket PATH, or none (default: $XDG_RUNTIME_DIR/vireo/<name or pid>.sock, "
                               "/run/vireo/... as root)";
    const char* metrics_help = "serve Prometheus metrics over HTTP on ADDRESS:PORT, e.g. 127.0.0.1:9100 (port 0: any free port)";
    run->add_option("--control", result.control, control_help);
    run->add_option("--metrics-listen", result.metrics_listen, metrics_help);
    const char* seccomp_help = "per-thread seccomp filters: on (a forbidden syscall ends vireo), log (logged, carried out), off";
    const char* user_help = "started as root: open what is needed, then become user NAME with no capabilities";
    run->add_option("--seccomp", result.seccomp, seccomp_help)->default_val("on");
    run->add_option("--user", result.user, user_help);
    auto* host = app.add_subcommand("host", "run several guests from a JSON config file (see README, \"Host config file\")");
    host->add_option("--config", result.host_config, "the host config file (JSON)")->required();
    host->add_option("--control", result.control, control_help);
    host->add_option("--metrics-listen", result.metrics_listen, metrics_help);
    host->add_option("--seccomp", result.seccomp, seccomp_help)->default_val("on");
    host->add_option("--user", result.user, user_help);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << app.help(run->parsed() ? "run" : host->parsed() ? "host" : "");
        result.action = CliResult::Action::Exit;
        return result;
    } catch (const CLI::CallForAllHelp&) {
        std::cout << app.help("", CLI::AppFormatMode::All);
        result.action = CliResult::Action::Exit;
        return result;
    } catch (const CLI::CallForVersion&) {
        std::cout << "vireo " << VIREO_VERSION << "\n";
        result.action = CliResult::Action::Exit;
        return result;
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        if (what.empty()) what = e.get_name();
        return std::unexpected(fmt::format("{} (see 'vireo {} --help')", what, host->parsed() ? "host" : "run"));
    }
    if (result.seccomp != "on" && result.seccomp != "off" && result.seccomp != "log")
        return std::unexpected(fmt::format("--seccomp: '{}' is not on, off or log", result.seccomp));
    if (host->parsed()) {
        result.action = CliResult::Action::Host;
        return result;
    }

    // The guest settings the flags give, as the config file would spell
    // them: one parser, one set of rules and bounds for both.
    nlohmann::json settings = {{"kernel", c.kernel},      {"cmdline", c.cmdline}, {"cpus", c.cpus},
                               {"mem", mem_text},         {"console", c.console}, {"hugepages", c.hugepages},
                               {"stats", c.stats},        {"unpack_kernel", !no_unpack},
                               {"probes", probes_text},   {"disks", disk_specs}};
    if (!c.initrd.empty()) settings["initrd"] = c.initrd;
    if (balloon_opt->count()) settings["balloon"] = balloon_spec;
    if (auto r = check_guest_name(c.name); !r) return std::unexpected("--name: " + r.error());
    auto guest = parse_guest_settings(settings);
    if (!guest) return std::unexpected(as_flag_error(guest.error()));
    result.guest = std::move(*guest);
    MachineConfig& m = result.guest.machine;
    m.name = c.name;
    m.virtio_cmdline = c.virtio_cmdline;
    auto restart = parse_restart_spec(restart_spec);
    if (!restart) return std::unexpected(restart.error());
    result.guest.restart = *restart;
    auto hang = parse_hang_spec(hang_spec);
    if (!hang) return std::unexpected(hang.error());
    result.guest.hang = *hang;
    if (watchdog_opt->count()) {
        auto w = parse_watchdog_spec(watchdog_spec);
        if (!w) return std::unexpected(w.error());
        m.watchdog = *w;
    }
    return result;
}

}  // namespace vireo
