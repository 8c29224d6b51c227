#include "farm/pool_session.h"

#include <ifaddrs.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "coordinator/farm_state.h"
#include "farm/embedded_farm.h"
#include "pool/pool_conversion.h"
#include "security/lab_certificates.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

// How often a waiting client asks whether the pool gave up.
constexpr absl::Duration kStuckCheckInterval = absl::Seconds(2);
constexpr std::chrono::seconds kAdminCallTimeout{10};

// Sessions still running, stopped at a normal exit of the process.
class LiveSessions {
 public:
  static LiveSessions& get() {
    static LiveSessions* live = [] {
      auto* made = new LiveSessions();  // never destroyed: it is used at exit
      std::atexit([] { get().stop_all(); });
      return made;
    }();
    return *live;
  }
  void add(PoolSession* session) {
    std::lock_guard lock(mutex_);
    sessions_.insert(session);
  }
  void remove(PoolSession* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
  }

 private:
  void stop_all() {
    std::set<PoolSession*> sessions;
    {
      std::lock_guard lock(mutex_);
      sessions.swap(sessions_);
    }
    for (PoolSession* session : sessions) session->stop();
  }
  std::mutex mutex_;
  std::set<PoolSession*> sessions_;
};

bool is_loopback(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  } else if (address->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof text);
  } else {
    return true;
  }
  return is_loopback_host(text);
}

bool resolves_beyond_loopback(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) return false;
  bool beyond = false;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    beyond = beyond || !is_loopback(entry->ai_addr);
  }
  ::freeaddrinfo(found);
  return beyond;
}

std::string first_outside_ipv4_address() {
  ifaddrs* interfaces = nullptr;
  if (::getifaddrs(&interfaces) != 0) return "";
  std::string chosen;
  for (const ifaddrs* entry = interfaces; entry != nullptr && chosen.empty(); entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET || is_loopback(entry->ifa_addr)) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr, text, sizeof text);
    chosen = text;
  }
  ::freeifaddrs(interfaces);
  return chosen;
}

// This host as the nodes of a cluster reach it.
absl::StatusOr<std::string> default_listen_address() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && resolves_beyond_loopback(name)) return absl::StrCat(name, ":0");
  if (std::string address = first_outside_ipv4_address(); !address.empty()) return absl::StrCat(address, ":0");
  return absl::FailedPreconditionError(
      "cannot tell at which address the cluster's nodes reach this host: it has no address but loopback; set the "
      "pool's listen option to HOST:PORT");
}

// A new directory for the session, readable by this user only, under
// `parent` (default ~/.cache/pesc/sessions: home directories are what a
// cluster's nodes share).
absl::StatusOr<fs::path> make_session_dir(fs::path parent) {
  if (parent.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return absl::FailedPreconditionError("HOME is not set: give the farm a state_dir the cluster's nodes see");
    }
    parent = fs::path(home) / ".cache" / "pesc" / "sessions";
  }
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat("cannot create ", parent.string(), ": ", error.message()));
  std::string pattern = (parent / "session-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create a session directory in ", parent.string(), ": ",
                                                    std::strerror(errno)));
  }
  return fs::path(pattern);  // mkdtemp makes it 0700
}

std::string worker_program(const PoolOptions& pool) {
  if (!pool.worker.empty()) return pool.worker;
  const char* from_environment = std::getenv("PESC_WORKER_BIN");
  return from_environment != nullptr ? from_environment : "";
}

}  // namespace

absl::StatusOr<std::shared_ptr<PoolSession>> PoolSession::start(const FarmOptions& options) {
  auto session = std::shared_ptr<PoolSession>(new PoolSession());
  PESC_ASSIGN_OR_RETURN(session->dir_, make_session_dir(options.state_dir));
  LiveSessions::get().add(session.get());
  // The pool is named after the session's directory: sessions of one user
  // on several login nodes keep apart in the batch system's queue.
  session->pool_name_ = session->dir_.filename().string();
  PESC_RETURN_IF_ERROR(session->start_coordinator(options));
  PESC_RETURN_IF_ERROR(session->add_pool(*options.pool));
  if (options.pool->local_slots > 0) {
    WorkerOptions worker = local_worker_options(session->dir_ / "worker", options.pool->local_slots);
    PESC_ASSIGN_OR_RETURN(session->worker_,
                          WorkerAgent::start(worker, open_channel(session->address_, session->security_)));
  }
  return session;
}

absl::Status PoolSession::start_coordinator(const FarmOptions& options) {
  const PoolOptions& pool = *options.pool;
  std::string listen = pool.listen;
  if (listen.empty()) {
    PESC_ASSIGN_OR_RETURN(listen, default_listen_address());
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  PESC_ASSIGN_OR_RETURN(LabCertificates certificates, make_lab_certificates(dir_ / "tls", {host}));
  CoordinatorOptions coordinator;
  coordinator.state_dir = dir_ / "coordinator";
  coordinator.tls_cert = certificates.server_cert;
  coordinator.tls_key = certificates.server_key;
  coordinator.pool_worker = worker_program(pool);
  PESC_ASSIGN_OR_RETURN(server_, CoordinatorServer::start(coordinator, listen));
  if (!server_->new_admin_token()) {
    return absl::InternalError(absl::StrCat("the session's coordinator in ", dir_.string(), " made no token"));
  }
  address_ = server_->address();
  PESC_ASSIGN_OR_RETURN(security_.tls_ca, read_file(certificates.ca_cert));
  security_.token = *server_->new_admin_token();
  admin_ = v1::Admin::NewStub(open_channel(address_, security_));
  return absl::OkStatus();
}

absl::Status PoolSession::add_pool(const PoolOptions& pool) {
  v1::AddPoolRequest request;
  *request.mutable_spec() = to_proto(pool_spec_of(pool_name_, pool));
  grpc::ClientContext context;
  set_deadline(context, kAdminCallTimeout);
  v1::AddPoolResponse response;
  absl::Status added = to_absl(admin_->AddPool(&context, request, &response));
  if (!added.ok()) return annotate(added, "while adding the session's pool");
  description_ = absl::StrCat("session coordinator at ", address_, ", pool ", pool.batch_system,
                              pool.partition.empty() ? "" : absl::StrCat(" (partition ", pool.partition, ")"),
                              pool.local_slots > 0 ? absl::StrCat(" and ", pool.local_slots, " local slots") : "");
  return absl::OkStatus();
}

std::string PoolSession::describe() const { return description_; }

std::string PoolSession::stuck_reason() {
  absl::MutexLock lock(&mutex_);
  if (stopped_ || worker_ != nullptr || absl::Now() - last_check_ < kStuckCheckInterval) return stuck_;
  last_check_ = absl::Now();
  stuck_.clear();
  if (!server_->core().state.online_workers().empty()) return stuck_;
  grpc::ClientContext context;
  set_deadline(context, kAdminCallTimeout);
  v1::ListPoolsResponse pools;
  if (!admin_->ListPools(&context, v1::ListPoolsRequest(), &pools).ok()) return stuck_;
  for (const v1::PoolStatus& pool : pools.pools()) {
    if (pool.spec().name() == pool_name_ && !pool.paused().empty()) {
      // Nobody resumes a session's pool from the command line.
      stuck_ = absl::StrCat("the session's pool of ", pool.spec().batch_system(), " pilots is ", pool.paused(),
                            ". Fix the pool's options and start the farm again; no worker is connected to run the ranks");
    }
  }
  return stuck_;
}

void PoolSession::stop() {
  {
    absl::MutexLock lock(&mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  LiveSessions::get().remove(this);
  if (worker_) worker_->stop();
  if (server_) server_->shut_down();  // cancels the pilots
  if (!dir_.empty()) {
    if (absl::Status removed = remove_tree(dir_); !removed.ok()) {
      std::cerr << "pesc: the session's directory stays: " << removed.message() << std::endl;
    }
  }
}

PoolSession::~PoolSession() { stop(); }

}  // namespace pesc
