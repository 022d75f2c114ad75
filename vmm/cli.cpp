#include "vmm/cli.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <charconv>
#include <iostream>

#include <fmt/format.h>

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

std::expected<CliResult, std::string> parse_command_line(int argc, const char* const* argv) {
    CliResult result;
    MachineConfig& c = result.config;
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

    c.unpack_kernel = !no_unpack;
    for (const auto& spec : disk_specs) {
        auto disk = parse_disk_spec(spec);
        if (!disk) return std::unexpected(disk.error());
        c.disks.push_back(std::move(*disk));
    }
    if (balloon_opt->count()) {
        auto b = parse_balloon_spec(balloon_spec);
        if (!b) return std::unexpected(b.error());
        c.balloon = std::move(*b);
    }
    auto restart = parse_restart_spec(restart_spec);
    if (!restart) return std::unexpected(restart.error());
    result.restart = *restart;
    auto hang = parse_hang_spec(hang_spec);
    if (!hang) return std::unexpected(hang.error());
    result.hang = *hang;
    if (watchdog_opt->count()) {
        auto w = parse_watchdog_spec(watchdog_spec);
        if (!w) return std::unexpected(w.error());
        c.watchdog = *w;
    }
    auto probes = parse_probe_mode(probes_text);
    if (!probes) return std::unexpected(fmt::format("--probes: '{}' is not on, off or auto", probes_text));
    c.probes = *probes;
    auto mem = parse_size(mem_text);
    if (!mem) return std::unexpected("--mem: " + mem.error());
    c.mem_bytes = *mem;
    if (c.mem_bytes < (16ull << 20))
        return std::unexpected(fmt::format("--mem: {} is too small (vireo needs at least 16M)", mem_text));
    if (c.mem_bytes % 4096 != 0) return std::unexpected(fmt::format("--mem: {} is not a whole number of 4 KiB pages", mem_text));
    if (c.cpus == 0) return std::unexpected(std::string("--cpus: must be at least 1"));
    if (c.cpus > 255) return std::unexpected(fmt::format("--cpus: {} is more than the 255 an x86 xAPIC machine can address", c.cpus));
    if (c.name.empty() || c.name.size() > 64 ||
        c.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != std::string::npos)
        return std::unexpected(fmt::format("--name: '{}' must be 1-64 letters, digits, '-', '_' or '.'", c.name));
    if (c.cmdline.size() >= 65535) return std::unexpected(std::string("--cmdline: longer than 64 KiB"));
    return result;
}

}  // namespace vireo
