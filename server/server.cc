#include "server/server.h"

#include <algorithm>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  // The files first: a typo in a path should not wait for the models to load.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<Authorizer> authorizer;
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authorizer>> from_file =
        Authorizer::FromTokenFile(options.auth_token_file, options.auth_all);
    if (!from_file.ok()) return from_file.status();
    authorizer = *std::move(from_file);
  }

  std::unique_ptr<ConvNetServer> server(new ConvNetServer());
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
                    static_cast<size_t>(options.max_inline_examples),
                    static_cast<size_t>(options.max_watch_streams)},
      server->authorizer_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, *credentials, &server->port_);
  if (options.auth_all) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->jobs_->Shutdown();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.address,
        options.tls.enabled() ? " (address in use, not a valid host:port, or --tls_key not the key of --tls_cert?)"
                              : " (address in use, or not a valid host:port?)"));
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }

  std::vector<std::string> models;
  for (const ModelVersions& model : server->repository_->List()) {
    models.push_back(absl::StrCat(model.model_name, " (", model.versions.size(), " versions, latest ",
                                  model.versions.back().version, ")"));
  }
  const std::vector<std::string> datasets = server->datasets_->List();
  LogInfo(absl::StrCat("listening on ", options.address, " (port ", server->port_, "); ", threads,
                       " core threads; max ", options.max_concurrent_jobs, " concurrent + ",
                       options.max_queued_jobs, " queued jobs; max batch ", options.max_batch,
                       "; max message ", options.max_message_bytes, " bytes; max ", options.max_watch_streams,
                       " watch streams"));
  LogInfo(SecuritySummary(options));
  LogInfo(absl::StrCat("models in ", options.model_dir, ": ", models.empty() ? "none" : absl::StrJoin(models, ", ")));
  LogInfo(absl::StrCat("datasets in ", options.data_dir.empty() ? "(no --data_dir)" : options.data_dir, ": ",
                       datasets.empty() ? "none" : absl::StrJoin(datasets, ", "), " (loaded on first use)"));
  return server;
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
