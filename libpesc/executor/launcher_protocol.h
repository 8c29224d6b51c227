#ifndef PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_
#define PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_

// What the worker (executor/slot_launcher.h) and a slot's launcher inside
// its sandbox (daemons/rank_launcher_main.cc) say to each other over a
// stream socket: frames of a 4-byte length and a type byte, so that fields
// can follow the type when there is more to say. The launcher links nothing but the
// C++ runtime, so this header uses nothing else either.

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace pesc::launcher {

// Worker to launcher.
constexpr char kClean = 'C';  // the rank in the sandbox ended: kill what it left, empty /tmp, /dev/shm, IPC
// Launcher to worker.
constexpr char kReady = 'R';    // the sandbox is up
constexpr char kCleaned = 'D';  // done: the next rank may enter

class Frame {
 public:
  explicit Frame(char type) : bytes_(4, '\0') { bytes_.push_back(type); }
  // The frame with its length in front.
  const std::string& bytes() {
    const uint32_t length = static_cast<uint32_t>(bytes_.size() - 4);
    std::memcpy(bytes_.data(), &length, 4);
    return bytes_;
  }

 private:
  std::string bytes_;
};

// Reads or writes all `size` bytes; false at the end of the stream or on an
// error.
template <typename Transfer>
bool transfer_all(Transfer transfer, char* bytes, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = transfer(bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

inline bool send_frame(int socket, Frame& frame) {
  std::string bytes = frame.bytes();
  return transfer_all([socket](char* at, size_t n) { return ::send(socket, at, n, MSG_NOSIGNAL); }, bytes.data(),
                      bytes.size());
}

// Receives one frame into `body`, its type byte first.
inline bool receive_frame(int socket, std::string& body) {
  auto receive = [socket](char* at, size_t n) { return ::read(socket, at, n); };
  uint32_t length = 0;
  if (!transfer_all(receive, reinterpret_cast<char*>(&length), sizeof length) || length == 0) return false;
  body.resize(length);
  return transfer_all(receive, body.data(), length);
}

}  // namespace pesc::launcher

#endif  // PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_
