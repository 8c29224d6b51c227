#ifndef PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_
#define PESC_EXECUTOR_LAUNCHER_PROTOCOL_H_

// What the worker (executor/slot_launcher.h) and a slot's launcher inside
// its sandbox (daemons/rank_launcher_main.cc) say to each other over a
// stream socket: frames of a 4-byte length, a type byte and fields (64-bit
// integers and length-prefixed strings), so more can be said later. The launcher links nothing but the
// C++ runtime, so this header uses nothing else either.

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pesc::launcher {

// Worker to launcher.
constexpr char kClean = 'C';  // the rank in the sandbox ended: kill what it left, empty /tmp, /dev/shm, IPC
// Launcher to worker.
constexpr char kReady = 'R';    // the sandbox is up
constexpr char kCleaned = 'D';  // done: the next rank may enter

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
