// The host side of COM1: where the guest's serial output goes and where its
// input comes from (`--console stdio | file:PATH | none`).
//
//  stdio      output to stdout; input from stdin on a thread. If stdin is a
//             terminal (and we are its foreground job) it is put in raw mode
//             for as long as input runs, so keys (Ctrl-C included) go to the
//             guest; QEMU-style escapes: Ctrl-A x stops the VM, Ctrl-A h
//             prints help, Ctrl-A Ctrl-A sends one Ctrl-A.
//  file:PATH  output appended to PATH; no input.
//  none       output discarded (counted); no input.
//
// The terminal is restored whenever input stops: stop_input(), the
// destructor, std::exit(), and a signal that would kill vireo (for any
// signal in {HUP, INT, QUIT, ILL, ABRT, FPE, SEGV, BUS, PIPE, TERM} still at its
// default action when raw mode starts; signals the machine handles itself
// are left alone, and it then shuts down through the destructor).
//
// Wiring (the UART and the console point at each other):
//   std::unique_ptr<Console> console = *Console::open(spec, stop);  // check the expected
//   auto uart = std::make_shared<Serial8250>("com1", irq4,
//       [c = console.get()](std::span<const uint8_t> b) { c->write(b); });
//   console->start_input([u = uart.get()](std::span<const uint8_t> b) { u->receive(b); });
//   ... once the vCPUs have stopped: console->stop_input(); uart->flush();
//   (the UART must not be written to, nor flushed, after the console is gone).
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vmm/devices/device.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

struct ConsoleSpec {
    enum class Mode { Stdio, File, None };
    Mode mode = Mode::Stdio;
    std::string path;  // Mode::File
};

// "stdio", "file:PATH" or "none"; the error is one line naming --console.
std::expected<ConsoleSpec, std::string> parse_console_spec(std::string_view text);

// The escape-key state machine, separate from any I/O so it can be tested.
class ConsoleEscape {
public:
    static constexpr uint8_t kEscapeKey = 0x01;  // Ctrl-A
    enum class Command { None, Quit, Help };

    // Feeds one input byte; bytes meant for the guest are appended to
    // `to_guest`. After Ctrl-A: x -> Quit, h or ? -> Help, Ctrl-A -> one
    // Ctrl-A to the guest; any other key is dropped with the escape.
    Command feed(uint8_t byte, std::vector<uint8_t>& to_guest);
    bool escape_pending() const { return escaped_; }

private:
    bool escaped_ = false;
};

class RawTty;  // console.cpp

class Console {
public:
    using InputSink = std::function<void(std::span<const uint8_t>)>;

    static std::expected<std::unique_ptr<Console>, std::string> open(const ConsoleSpec& spec, StopSink& stop);
    // Tests: a console over borrowed descriptors (input -1: none; output
    // -1: discard). Raw mode applies only if `input_fd` is a terminal.
    static std::unique_ptr<Console> over_fds(int input_fd, int output_fd, StopSink& stop);

    ~Console();
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    // Guest output (any thread): written in full, in order; EINTR and
    // partial writes are retried. After a write error further output is
    // discarded and counted, with one log line.
    void write(std::span<const uint8_t> bytes);

    // Starts the input thread (stdio only; a no-op without input). Input
    // bytes go to `sink` from that thread. Fails only if the host is out of
    // descriptors/threads.
    std::expected<void, std::string> start_input(InputSink sink);
    // Stops and joins the input thread and restores the terminal; idempotent.
    void stop_input();

    bool raw_mode() const;
    uint64_t output_bytes() const { return output_bytes_.load(std::memory_order_relaxed); }
    uint64_t output_discarded() const { return output_discarded_.load(std::memory_order_relaxed); }

private:
    struct Key {
        explicit Key() = default;
    };

public:
    // Use open() or over_fds(); the key keeps the constructor theirs.
    Console(Key, StopSink& stop, int input_fd, int output_fd, UniqueFd owned_output);

private:
    void input_loop();
    void handle_input(std::span<const uint8_t> bytes);
    void write_text(std::string_view text);  // our own messages, honouring raw mode

    StopSink& stop_;
    const int input_fd_;   // borrowed (stdin) or -1
    const int output_fd_;  // stdout, owned_output_, or -1 (discard)
    UniqueFd owned_output_;

    std::mutex output_mutex_;
    bool output_failed_ = false;
    std::atomic<uint64_t> output_bytes_{0};
    std::atomic<uint64_t> output_discarded_{0};

    InputSink sink_;
    ConsoleEscape escape_;
    UniqueFd wake_;  // eventfd: tells the input thread to exit
    std::unique_ptr<RawTty> raw_;
    std::atomic<bool> raw_active_{false};
    std::thread input_thread_;
};

}  // namespace vireo
