// The whole convnet server in one object: the shared core ThreadPool, the
// model repository, the dataset registry, the job manager, the ConvNet
// service, the standard health service and server reflection, on one gRPC
// server. The binary (server_main.cc) and the integration tests both start it
// through ConvNetServer::Start.
#ifndef CONVNET_SERVER_SERVER_H_
#define CONVNET_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/thread_pool.h"
#include "grpcpp/server.h"
#include "server/auth.h"
#include "server/convnet_service.h"
#include "server/credentials.h"
#include "server/dataset_registry.h"
#include "server/job_manager.h"
#include "server/model_repository.h"

namespace convnet::server {

struct ServerOptions {
  std::string address = "0.0.0.0:50051";  // host:port; port 0 picks a free port
  std::string model_dir = "models";       // created when missing
  std::string data_dir;                   // "" = no server-side datasets
  int threads = 0;                        // core ThreadPool size; 0 = hardware threads
  int max_concurrent_jobs = 1;            // >= 1
  int max_queued_jobs = 16;               // >= 0
  int max_message_bytes = 64 << 20;       // per message, both directions; >= 1 MiB
  int max_batch = 1024;                   // images per Predict, examples per GetGradients; >= 1
  int max_inline_examples = 60000;        // examples per inline training or evaluation set; >= 1
  int max_concurrent_gradients = 2;       // GetGradients calls with include_deltas at once; >= 1
  int max_watch_streams = 1000;           // WatchTrainingJob streams open at once; >= 1
  // Security (docs/SECURITY.md). TLS files: none = plaintext.
  ServerTlsFiles tls;
  std::string auth_token_file;            // "" = no token is needed for any call
  bool auth_all = false;                  // the token for every ConvNet method; needs auth_token_file
  // Tests only (convnet_service.h); the binary leaves them unset.
  ServiceTestHooks test_hooks;
};

// INVALID_ARGUMENT naming the flag and value when an option is out of range,
// or naming the flags of an incomplete combination (--tls_cert without
// --tls_key, --auth_all without --auth_token_file, ...). Reads no file.
absl::Status ValidateServerOptions(const ServerOptions& options);

class ConvNetServer {
 public:
  // Validates the options, reads the token and TLS files, opens the model
  // repository (loading every complete version), and starts serving.
  // INVALID_ARGUMENT for bad options and for token or TLS files that cannot be
  // read or are malformed (naming the flag);
  // UNAVAILABLE when the address cannot be bound, with the reason (e.g.
  // "address in use": the port is not shared with another process, gRPC's
  // SO_REUSEPORT is off); the repository's errors.
  static absl::StatusOr<std::unique_ptr<ConvNetServer>> Start(const ServerOptions& options);

  ~ConvNetServer();  // Shutdown(absl::ZeroDuration()) if not yet shut down

  ConvNetServer(const ConvNetServer&) = delete;
  ConvNetServer& operator=(const ConvNetServer&) = delete;

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

  // Graceful stop: health turns NOT_SERVING and new calls are answered
  // UNAVAILABLE; queued and running jobs are cancelled (state CANCELLED, their
  // watch streams end); calls in flight may finish until `grace` has passed;
  // then the gRPC server closes every connection and cancels what is left.
  // Returns when everything has stopped. Idempotent.
  void Shutdown(absl::Duration grace);

  // Takes up what changed on disk since the start (SIGHUP), logging one line
  // per part:
  //   - the bearer token (--auth_token_file): the new token is required from
  //     the next call on, the old one is refused;
  //   - the TLS certificate chain, key and client CA: new connections get
  //     them within kTlsReloadDelay, open connections keep theirs;
  //   - the model repository: version directories new on disk are loaded and
  //     served (ModelRepository::LoadNewVersions); none is unloaded;
  //   - the dataset directory: the datasets present now are listed (they are
  //     loaded on first use in any case).
  // A part that fails keeps what it had (the previous token, certificates,
  // versions) and logs an error; the other parts still reload. Never stops a
  // job or a call. Returns OK when every part reloaded, else the first error.
  // Serialised with itself; not to be called after Shutdown.
  absl::Status Reload();

  ModelRepository& repository() { return *repository_; }
  DatasetRegistry& datasets() { return *datasets_; }
  JobManager& jobs() { return *jobs_; }
  ThreadPool& pool() { return *pool_; }

 private:
  ConvNetServer() = default;

  int port_ = 0;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<DatasetRegistry> datasets_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<ServerTransportSecurity> transport_security_;  // outlives server_
  std::unique_ptr<Authorizer> authorizer_;  // null = no token needed; outlives service_
  std::unique_ptr<ConvNetService> service_;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex reload_mu_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_SERVER_H_
