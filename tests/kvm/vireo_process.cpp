#include "tests/kvm/vireo_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace vireo::test {

using namespace std::chrono;

std::string build_dir() {
    const char* b = std::getenv("VIREO_BUILD");
    return b && *b ? b : "build";
}
std::string vireo_binary() { return build_dir() + "/vireo"; }
std::string testguest_binary() { return build_dir() + "/testguest"; }

std::string kvm_unavailable_reason() {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) return std::string("cannot open /dev/kvm: ") + std::strerror(errno);
    ::close(fd);
    return {};
}

std::string missing_file_reason(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return path + " is missing (build it with make)";
    return {};
}

std::string RunResult::describe() const {
    std::string s;
    if (timed_out) s = "TIMED OUT (killed)";
    else if (exited) s = "exit " + std::to_string(status);
    else if (signal) s = std::string("killed by signal ") + strsignal(signal);
    else s = "still running";
    s += " after " + std::to_string(elapsed.count()) + " ms";
    s += "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err + "\n--------------";
    return s;
}

int RunResult::stderr_lines() const {
    int n = 0;
    for (char c : err) n += c == '\n';
    if (!err.empty() && err.back() != '\n') n++;
    return n;
}

VireoProcess::VireoProcess(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);

    std::string bin = vireo_binary();
    std::vector<char*> argv;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);

    start_ = steady_clock::now();
    int rc = ::posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
        ::close(out_fd_);
        ::close(err_fd_);
        out_fd_ = err_fd_ = -1;
        pid_ = -1;
        throw std::runtime_error("posix_spawn " + bin + ": " + std::strerror(rc));
    }
}

VireoProcess::~VireoProcess() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
}

void VireoProcess::read_available(int timeout_ms) {
    pollfd fds[2];
    int n = 0;
    if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
    if (n == 0) {
        std::this_thread::sleep_for(milliseconds(timeout_ms));
        return;
    }
    if (::poll(fds, n, timeout_ms) <= 0) return;
    for (int i = 0; i < n; i++) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
        bool is_out = fds[i].fd == out_fd_;
        if (got > 0) {
            (is_out ? result_.out : result_.err).append(buf, size_t(got));
        } else if (got == 0 || errno != EINTR) {
            ::close(fds[i].fd);
            (is_out ? out_fd_ : err_fd_) = -1;
        }
    }
}

// After the child is gone: everything it wrote is in the pipes (unless it
// handed them to a child of its own, so bound this too).
void VireoProcess::drain() {
    auto until = steady_clock::now() + seconds(2);
    while ((out_fd_ >= 0 || err_fd_ >= 0) && steady_clock::now() < until) read_available(50);
}

bool VireoProcess::wait(milliseconds timeout) {
    if (!running()) return true;
    auto deadline = steady_clock::now() + timeout;
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            result_.elapsed = duration_cast<milliseconds>(steady_clock::now() - start_);
            if (WIFEXITED(st)) result_.exited = true, result_.status = WEXITSTATUS(st);
            else if (WIFSIGNALED(st)) result_.signal = WTERMSIG(st);
            drain();
            return true;
        }
        auto now = steady_clock::now();
        if (now >= deadline) return false;
        auto left = duration_cast<milliseconds>(deadline - now).count();
        read_available(int(std::min<long long>(left, 20)));
    }
}

void VireoProcess::send_signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

const RunResult& VireoProcess::finish(milliseconds timeout) {
    if (!wait(timeout)) {
        ::kill(pid_, SIGKILL);
        wait(seconds(5));
        result_.timed_out = true;
    }
    return result_;
}

RunResult run_vireo(const std::vector<std::string>& args, milliseconds timeout) {
    VireoProcess p(args);
    return p.finish(timeout);
}

std::map<std::string, std::string> status_of(const std::string& path) {
    std::map<std::string, std::string> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        out[line.substr(0, colon)] = v;
    }
    return out;
}

}  // namespace vireo::test
