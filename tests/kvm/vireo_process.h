// Runs build/vireo as a child process for the /dev/kvm integration tests:
// captures stdout and stderr, bounds every run with a timeout, and reports
// what happened in one printable string.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace vireo::test {

// The build tree: $VIREO_BUILD (tests/run-tests sets it), else "build".
std::string build_dir();
std::string vireo_binary();
std::string testguest_binary();

// Empty if /dev/kvm can be opened read-write, else why not.
std::string kvm_unavailable_reason();
// Empty if the file exists, else a reason naming it.
std::string missing_file_reason(const std::string& path);

struct RunResult {
    bool timed_out = false;  // killed by us at the deadline
    bool exited = false;     // exited normally; `status` is its exit status
    int status = -1;
    int signal = 0;          // the signal that ended it, if one did
    std::string out, err;
    std::chrono::milliseconds elapsed{0};

    // "exit 3 after 120 ms" plus the captured output, for failure messages.
    std::string describe() const;
    int stderr_lines() const;
};

class VireoProcess {
public:
    // Starts `vireo args...` with stdin from /dev/null.
    explicit VireoProcess(const std::vector<std::string>& args);
    ~VireoProcess();  // SIGKILLs and reaps a child that is still running
    VireoProcess(const VireoProcess&) = delete;
    VireoProcess& operator=(const VireoProcess&) = delete;

    pid_t pid() const { return pid_; }
    // Collects output until the child exits (true) or `timeout` passes (false).
    bool wait(std::chrono::milliseconds timeout);
    bool running() const { return pid_ > 0 && !reaped_; }
    void send_signal(int sig);
    // Waits up to `timeout`; on timeout kills the child and marks timed_out.
    const RunResult& finish(std::chrono::milliseconds timeout);
    const RunResult& result() const { return result_; }

private:
    void read_available(int timeout_ms);
    void drain();

    pid_t pid_ = -1;
    bool reaped_ = false;
    int out_fd_ = -1, err_fd_ = -1;
    std::chrono::steady_clock::time_point start_;
    RunResult result_;
};

// Runs vireo to completion, at most `timeout`.
// A /proc/<pid>[/task/<tid>]/status file as key -> value ("Uid" -> "0\t0\t0\t0").
std::map<std::string, std::string> status_of(const std::string& path);

RunResult run_vireo(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace vireo::test
