// vireo: parse the command line, build the guests, serve them, exit with a
// status that says how it ended (include/vireo/exit_status.h).
//
// `vireo run` is a host of one guest that ends with it; `vireo host` runs
// the guests of a config file. Both go through Host (vmm/host.h).
#include <csignal>
#include <cstdio>

#include "vireo/exit_status.h"
#include "vmm/cli.h"
#include "vmm/guest_config.h"
#include "vmm/host.h"
#include "vmm/log.h"
#include "vmm/security/privileges.h"
#include "vmm/security/seccomp_filters.h"

int main(int argc, char** argv) {
    // A console on a closed pipe must not kill the guest: the write fails
    // with EPIPE, is logged once, and later output is counted and dropped.
    std::signal(SIGPIPE, SIG_IGN);
    auto cli = vireo::parse_command_line(argc, argv);
    if (!cli) {
        std::fprintf(stderr, "vireo: error: %s\n", cli.error().c_str());
        return VIREO_EXIT_BAD_INPUT;
    }
    if (cli->action == vireo::CliResult::Action::Exit) return cli->exit_status;

    vireo::HostConfig config;
    if (cli->action == vireo::CliResult::Action::Host) {
        auto loaded = vireo::load_host_config(cli->host_config);
        if (!loaded) {
            std::fprintf(stderr, "vireo: error: %s\n", loaded.error().c_str());
            return VIREO_EXIT_BAD_INPUT;
        }
        config = std::move(*loaded);
    } else {
        config.guests.push_back(std::move(cli->guest));
        config.exit_when_all_stopped = true;  // the control socket defaults to <pid>.sock: many may run at once
    }
    // The command line wins over the file.
    if (!cli->control.empty()) config.control_path = cli->control;
    if (!cli->metrics_listen.empty()) config.metrics_listen = cli->metrics_listen;

    // Least privilege: the user to become is looked up now (a bad name is bad
    // input); the seccomp filters are compiled before any thread starts.
    // Host::create drops privileges and installs the control thread's filter
    // once everything is open and before any guest runs.
    vireo::security::HardeningOptions hardening;
    if (!cli->user.empty()) {
        auto user = vireo::security::resolve_user(cli->user);
        if (!user) {
            std::fprintf(stderr, "vireo: error: %s\n", user.error().c_str());
            return VIREO_EXIT_BAD_INPUT;
        }
        hardening.user = std::move(*user);
    }
    vireo::security::set_hardening_options(std::move(hardening));
    if (auto r = vireo::security::seccomp_prepare(*vireo::security::parse_seccomp_mode(cli->seccomp)); !r) {
        std::fprintf(stderr, "vireo: error: %s\n", r.error().c_str());
        return VIREO_EXIT_HOST_ERROR;
    }

    auto host = vireo::Host::create(std::move(config));
    if (!host) {
        std::fprintf(stderr, "vireo: error: %s\n", host.error().message.c_str());
        return host.error().bad_input ? VIREO_EXIT_BAD_INPUT : VIREO_EXIT_HOST_ERROR;
    }
    return (*host)->run();
}
