#include "server/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/job_store.h"
#include "server/log.h"

namespace convnet::server {

namespace {
constexpr const char* kServiceName = "convnet.v1.ConvNet";

// Takes server reflection off one server. Reflection is a separate service
// that cannot check the bearer token, so under --auth_all, where every RPC
// but health needs the token, it is not offered at all (docs/SECURITY.md).
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return dynamic_cast<const grpc::reflection::ProtoServerReflectionPlugin*>(plugin.get()) != nullptr;
    });
  }
};

// The start-up log line that says how the port is protected.
std::string SecuritySummary(const ServerOptions& options) {
  std::string transport = "plaintext (no TLS)";
  if (!options.tls.client_ca_file.empty()) {
    transport = "mutual TLS (client certificates required)";
  } else if (options.tls.enabled()) {
    transport = "TLS";
  }
  std::string token = "no token needed";
  if (options.auth_all) {
    token = "bearer token needed for every ConvNet call (health open, reflection off)";
  } else if (!options.auth_token_file.empty()) {
    token = "bearer token needed for Train, CancelTrainingJob, GetGradients and parameter export";
  }
  return absl::StrCat("security: ", transport, "; ", token);
}

// Binds `address` once the way gRPC does (SO_REUSEADDR, no SO_REUSEPORT) and
// closes it again. Returns 0 when it can be bound, else the errno of bind
// (EADDRINUSE when any result of the name lookup is in use), or -1 when
// `address` is not a host:port that the name lookup resolves.
int ProbeBind(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return -1;
  absl::string_view host = absl::string_view(address).substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  const std::string port(address.substr(colon + 1));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* results = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : std::string(host).c_str(), port.c_str(), &hints, &results) != 0) {
    return -1;
  }
  int error = 0;
  for (const addrinfo* result = results; result != nullptr; result = result->ai_next) {
    const int fd = socket(result->ai_family, result->ai_socktype, result->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    const int bound = bind(fd, result->ai_addr, result->ai_addrlen);
    const int bind_errno = errno;
    close(fd);
    if (bound != 0 && (error == 0 || bind_errno == EADDRINUSE)) error = bind_errno;
  }
  freeaddrinfo(results);
  return error;
}

// UNAVAILABLE for an address that cannot be listened on, with what
// ProbeBind found out about why.
absl::Status CannotListen(const std::string& address) {
  std::string why;
  switch (const int error = ProbeBind(address)) {
    case -1:
      why = "not a valid host:port";
      break;
    case 0:
      why = "see gRPC's error above";
      break;
    case EADDRINUSE:
      why = "address in use (another process listens on this port)";
      break;
    case EADDRNOTAVAIL:
      why = "not an address of this machine";
      break;
    case EACCES:
      why = "permission denied (ports below 1024 need privileges)";
      break;
    default:
      why = std::strerror(error);
  }
  return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", why));
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("--address must not be empty");
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model_dir must not be empty");
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--threads must be >= 0 (0 = all cores), got ", options.threads));
  }
  if (options.max_concurrent_jobs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_concurrent_jobs must be >= 1, got ", options.max_concurrent_jobs));
  }
  if (options.max_queued_jobs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_queued_jobs must be >= 0, got ", options.max_queued_jobs));
  }
  if (options.max_message_bytes < (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes must be >= 1048576 (1 MiB), got ", options.max_message_bytes));
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max_batch must be >= 1, got ", options.max_batch));
  }
  if (options.max_inline_examples < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_inline_examples must be >= 1, got ", options.max_inline_examples));
  }
  if (options.max_concurrent_gradients < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_concurrent_gradients must be >= 1, got ", options.max_concurrent_gradients));
  }
  if (options.max_watch_streams < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_watch_streams must be >= 1, got ", options.max_watch_streams));
  }
  if (absl::Status tls = ValidateServerTlsFiles(options.tls); !tls.ok()) return tls;
  if (options.auth_all && options.auth_token_file.empty()) {
    return absl::InvalidArgumentError("--auth_all needs --auth_token_file (the token every call must carry)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ConvNetServer>> ConvNetServer::Start(const ServerOptions& options) {
  if (absl::Status valid = ValidateServerOptions(options); !valid.ok()) return valid;
  // The address first: a second server started on the port of a running one
  // must not open its model directory (its job store would take the running
  // jobs of the first for interrupted ones). gRPC's own bind below stays the
  // authority; this catches the common mistake early.
  if (ProbeBind(options.address) == EADDRINUSE) return CannotListen(options.address);
  // The files next: a typo in a path should not wait for the models to load.
  absl::StatusOr<std::unique_ptr<ServerTransportSecurity>> transport_security =
      ServerTransportSecurity::Create(options.tls);
  if (!transport_security.ok()) return transport_security.status();
  std::unique_ptr<Authorizer> authorizer;
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authorizer>> from_file =
        Authorizer::FromTokenFile(options.auth_token_file, options.auth_all);
    if (!from_file.ok()) return from_file.status();
    authorizer = *std::move(from_file);
  }

  std::unique_ptr<ConvNetServer> server(new ConvNetServer());
  server->transport_security_ = *std::move(transport_security);
  const int threads =
      options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  server->pool_ = std::make_unique<ThreadPool>(threads);

  absl::StatusOr<std::unique_ptr<ModelRepository>> repository = ModelRepository::Open(options.model_dir);
  if (!repository.ok()) return repository.status();
  server->repository_ = *std::move(repository);
  server->datasets_ = std::make_unique<DatasetRegistry>(options.data_dir);
  // Job records live next to the models (<model_dir>/.jobs), so that the jobs
  // and the versions they produced survive a restart together.
  absl::StatusOr<std::unique_ptr<JobStore>> job_store =
      JobStore::Open((std::filesystem::path(options.model_dir) / kJobRecordDirectory).string());
  if (!job_store.ok()) return job_store.status();
  absl::StatusOr<std::unique_ptr<JobManager>> jobs =
      JobManager::Open(JobManagerOptions{options.max_concurrent_jobs, options.max_queued_jobs},
                       server->repository_.get(), server->pool_.get(), *std::move(job_store));
  if (!jobs.ok()) return jobs.status();
  server->jobs_ = *std::move(jobs);
  server->authorizer_ = std::move(authorizer);
  server->service_ = std::make_unique<ConvNetService>(
      server->repository_.get(), server->datasets_.get(), server->jobs_.get(), server->pool_.get(),
      ServiceLimits{static_cast<size_t>(options.max_batch), static_cast<size_t>(options.max_message_bytes),
                    static_cast<size_t>(options.max_inline_examples), options.max_concurrent_gradients,
                    static_cast<size_t>(options.max_watch_streams)},
      server->authorizer_.get(), options.test_hooks);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, server->transport_security_->credentials(), &server->port_);
  // gRPC sets SO_REUSEPORT by default: a second server on the same port would
  // bind too and take part of the connections. One process per port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.auth_all) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->jobs_->Shutdown();
    return CannotListen(options.address);
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }

  std::vector<std::string> models;
  for (const ModelVersions& model : server->repository_->List()) {
    models.push_back(absl::StrCat(model.model_name, " (", model.versions.size(), " versions, latest ",
                                  model.versions.back().version, ")"));
  }
  const DatasetScan datasets = server->datasets_->Scan();
  LogInfo(absl::StrCat("listening on ", options.address, " (port ", server->port_, "); ", threads,
                       " core threads; max ", options.max_concurrent_jobs, " concurrent + ",
                       options.max_queued_jobs, " queued jobs; max batch ", options.max_batch,
                       "; max message ", options.max_message_bytes, " bytes; max ", options.max_watch_streams,
                       " watch streams"));
  LogInfo(SecuritySummary(options));
  LogInfo(absl::StrCat("models in ", options.model_dir, ": ", models.empty() ? "none" : absl::StrJoin(models, ", ")));
  LogInfo(absl::StrCat("datasets in ", options.data_dir.empty() ? "(no --data_dir)" : options.data_dir, ": ",
                       datasets.available.empty() ? "none" : absl::StrJoin(datasets.available, ", "),
                       " (loaded on first use)"));
  for (const SkippedDataset& skipped : datasets.skipped) {
    LogWarning(absl::StrCat("datasets: skipping folder ", skipped.folder, " in ", options.data_dir, ": ",
                            skipped.reason));
  }
  return server;
}

absl::Status ConvNetServer::Reload() {
  absl::MutexLock lock(&reload_mu_);
  absl::Status first_error;
  const auto failed = [&first_error](absl::string_view part, const absl::Status& error) {
    LogError(absl::StrCat("reload: ", part, " not reloaded, what was in force stays: ", error.message()));
    first_error.Update(error);
  };
  if (authorizer_ != nullptr) {
    absl::StatusOr<bool> changed = authorizer_->Reload();
    if (changed.ok()) {
      LogInfo(*changed ? "reload: bearer token replaced (the previous token is refused from now on)"
                       : "reload: bearer token unchanged");
    } else {
      failed("bearer token", changed.status());
    }
  }
  if (transport_security_->tls()) {
    absl::StatusOr<bool> changed = transport_security_->Reload();
    if (changed.ok()) {
      LogInfo(*changed ? absl::StrCat("reload: TLS certificate, key and client CA replaced (new connections get "
                                      "them within ",
                                      absl::FormatDuration(kTlsReloadDelay), ")")
                       : "reload: TLS certificate, key and client CA unchanged");
    } else {
      failed("TLS certificate, key and client CA", changed.status());
    }
  }
  absl::StatusOr<std::vector<std::string>> loaded = repository_->LoadNewVersions();
  if (loaded.ok()) {
    LogInfo(absl::StrCat("reload: models in ", repository_->model_dir(), ": ",
                         loaded->empty() ? "no new version" : absl::StrCat("loaded ", absl::StrJoin(*loaded, ", "))));
  } else {
    failed("model repository", loaded.status());
  }
  const std::vector<std::string> datasets = datasets_->List();
  LogInfo(absl::StrCat("reload: datasets in ", datasets_->data_dir().empty() ? "(no --data_dir)" : datasets_->data_dir(),
                       ": ", datasets.empty() ? "none" : absl::StrJoin(datasets, ", ")));
  return first_error;
}

void ConvNetServer::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  LogInfo(absl::StrCat("shutting down: cancelling training jobs, then waiting up to ",
                       absl::FormatDuration(grace), " for calls in flight"));
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();  // every service NOT_SERVING from now on
  }
  const absl::Time deadline = absl::Now() + grace;
  // New calls are refused from here on (UNAVAILABLE); calls in flight go on.
  service_->BeginDrain();
  jobs_->Shutdown();  // cancels queued and running jobs, joins the runners
  // gRPC's own shutdown cancels (does not answer) the calls it has received
  // but not yet handed to a handler (grpc/grpc#41785): drain a moment longer,
  // within the grace, so that the calls queued at the signal reach a handler
  // and end OK or UNAVAILABLE (tests/load/shutdown_under_load_test.cc).
  absl::SleepFor(std::min(absl::Milliseconds(200), deadline - absl::Now()));
  // Watch streams end with their jobs; wait for the other calls in flight,
  // then close everything at once. (Waiting on gRPC's own Shutdown deadline
  // instead would also wait for idle client connections to go away, which
  // gRPC clients notice only every few seconds.)
  if (!service_->WaitUntilIdle(deadline)) {
    LogWarning(absl::StrCat(service_->CallsInFlight(), " calls still in flight after ",
                            absl::FormatDuration(grace), "; cancelling them"));
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now()));
  server_->Wait();
  LogInfo("shut down");
}

ConvNetServer::~ConvNetServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace convnet::server
