// vireo: parse the command line, build the guest, run it, exit with a status
// that says how it ended (include/vireo/exit_status.h).
#include <cstdio>

#include "vireo/exit_status.h"
#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/machine.h"

int main(int argc, char** argv) {
    const auto start = std::chrono::steady_clock::now();
    auto cli = vireo::parse_command_line(argc, argv);
    if (!cli) {
        std::fprintf(stderr, "vireo: error: %s\n", cli.error().c_str());
        return VIREO_EXIT_BAD_INPUT;
    }
    if (cli->action == vireo::CliResult::Action::Exit) return cli->exit_status;

    auto machine = vireo::Machine::build(cli->config, start);
    if (!machine) {
        std::fprintf(stderr, "vireo: error: %s\n", machine.error().message.c_str());
        return machine.error().bad_input ? VIREO_EXIT_BAD_INPUT : VIREO_EXIT_HOST_ERROR;
    }
    return (*machine)->run();
}
