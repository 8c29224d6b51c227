#ifndef PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_
#define PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_

// What the worker (executor/slot_launcher.h) and a slot's launcher inside
// its sandbox (daemons/rank_launcher_main.cc) say to each other over a
// stream socket: frames of a 4-byte length, a type byte and fields (64-bit
// integers and length-prefixed strings). The launcher links nothing but the
// C++ runtime, so this header uses nothing else either.

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pesc::launcher {

// Worker to launcher.
constexpr char kStart = 'S';   // working dir, argv, environment, rlimits; the output descriptor attached
constexpr char kSignal = 'K';  // a signal for the running rank's process group
// Launcher to worker.
constexpr char kReady = 'R';   // the sandbox is up
constexpr char kFailed = 'F';  // the rank's program could not be executed: the step (as spawn.cc names them), errno
// Its wait status, CPU ms, peak RSS KiB, and 1 when the launcher ends now
// (the next rank needs a new one); leftovers killed, sandbox cleaned.
constexpr char kExited = 'X';

class Frame {
 public:
  explicit Frame(char type) : bytes_(4, '\0') { bytes_.push_back(type); }
  Frame& add(int64_t value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
    return *this;
  }
  Frame& add(const std::string& text) {
    add(static_cast<int64_t>(text.size()));
    bytes_.append(text);
    return *this;
  }
  Frame& add(const std::vector<std::string>& words) {
    add(static_cast<int64_t>(words.size()));
    for (const std::string& word : words) add(word);
    return *this;
  }
  // The frame with its length in front.
  const std::string& bytes() {
    const uint32_t length = static_cast<uint32_t>(bytes_.size() - 4);
    std::memcpy(bytes_.data(), &length, 4);
    return bytes_;
  }

 private:
  std::string bytes_;
};

// Reads a received frame's fields in order; ok() turns false at the first
// field that is not there.
class FrameReader {
 public:
  explicit FrameReader(const std::string& body) : body_(body) {}
  int64_t integer() {
    int64_t value = 0;
    if (!take(sizeof value)) return 0;
    std::memcpy(&value, body_.data() + at_ - sizeof value, sizeof value);
    return value;
  }
  std::string text() {
    const int64_t size = integer();
    if (size < 0 || !take(static_cast<size_t>(size))) return {};
    return body_.substr(at_ - static_cast<size_t>(size), static_cast<size_t>(size));
  }
  std::vector<std::string> words() {
    const int64_t count = integer();
    std::vector<std::string> result;
    for (int64_t i = 0; i < count && ok_; ++i) result.push_back(text());
    return result;
  }
  bool ok() const { return ok_; }

 private:
  bool take(size_t size) {
    if (!ok_ || body_.size() - at_ < size) return ok_ = false;
    at_ += size;
    return true;
  }
  const std::string& body_;
  size_t at_ = 1;  // after the type byte
  bool ok_ = true;
};

// Sends a whole frame, `fd` (unless -1) riding on its first byte.
inline bool send_frame(int socket, Frame& frame, int fd = -1) {
  const std::string& bytes = frame.bytes();
  size_t sent = 0;
  while (sent < bytes.size()) {
    iovec chunk{const_cast<char*>(bytes.data() + sent), bytes.size() - sent};
    msghdr message{};
    message.msg_iov = &chunk;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (sent == 0 && fd >= 0) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    const ssize_t n = ::sendmsg(socket, &message, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Receives one frame into `body` (type byte first); a descriptor that came
// with it goes to `*fd` when asked for, else is closed. False at the end of
// the stream or on an error.
inline bool receive_frame(int socket, std::string& body, int* fd = nullptr) {
  if (fd != nullptr) *fd = -1;
  char length_bytes[4];
  size_t got = 0;
  while (got < sizeof length_bytes) {
    iovec chunk{length_bytes + got, sizeof length_bytes - got};
    msghdr message{};
    message.msg_iov = &chunk;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
      int passed;
      std::memcpy(&passed, CMSG_DATA(header), sizeof passed);
      if (fd != nullptr && *fd < 0) {
        *fd = passed;
      } else {
        ::close(passed);
      }
    }
    got += static_cast<size_t>(n);
  }
  uint32_t length;
  std::memcpy(&length, length_bytes, sizeof length);
  body.resize(length);
  got = 0;
  while (got < length) {
    const ssize_t n = ::read(socket, body.data() + got, length - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return length > 0;
}

}  // namespace pesc::launcher

#endif  // PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_
