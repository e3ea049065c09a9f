// convnet_server: trains and serves the network over gRPC (convnet.v1.ConvNet,
// grpc.health.v1.Health, server reflection). See docs/SERVICE.md.
//
// Signals (docs/SERVICE.md, "Signals"):
//   SIGINT, SIGTERM  stop accepting, cancel training jobs (CANCELLED), let calls
//                    in flight finish for up to --shutdown_grace, exit 0;
//   SIGHUP           ConvNetServer::Reload: token, TLS files, new model
//                    versions, datasets; jobs and calls go on;
//   SIGQUIT, SIGUSR1 logged and ignored;
//   SIGPIPE, SIGXFSZ ignored (a write past a file-size limit fails with EFBIG
//                    and is reported like any other write error).
// Exit status: 0 after a signalled stop, 2 for a bad flag, 1 when the server
// cannot start (e.g. "address in use").
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/log.h"
#include "server/server.h"

#ifndef CONVNET_DEFAULT_DATA_DIR
#define CONVNET_DEFAULT_DATA_DIR "data"
#endif

namespace {
const convnet::server::ServerOptions kDefaults;

// glibc's malloc, tuned for a server whose requests and responses are up to
// megabytes:
// - Each new thread gets its own arena, up to 8 per core, and an arena keeps
//   the memory its thread freed. gRPC's synchronous server starts and ends
//   threads as the load changes, so under concurrent large calls the arenas
//   hold far more memory than one arena per core does.
// - The mmap threshold normally grows to the largest block freed (up to
//   32 MiB), after which message buffers of 100 KiB..MiBs come from the heap
//   and stay there. A fixed 64 KiB threshold gives them back at once, and a
//   1 MiB trim threshold returns the heap's free top, which lowers the peak
//   resident memory at the same throughput.
// The figures are in docs/BENCHMARKS.md, "The service".
// An explicit MALLOC_ARENA_MAX / GLIBC_TUNABLES in the environment wins.
void TuneMalloc() {
#ifdef M_ARENA_MAX
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
    mallopt(M_ARENA_MAX, std::max(2, static_cast<int>(std::thread::hardware_concurrency())));
  }
  if (std::getenv("GLIBC_TUNABLES") == nullptr) {
    mallopt(M_MMAP_THRESHOLD, 64 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
  }
#endif
}
}  // namespace

ABSL_FLAG(std::string, address, kDefaults.address, "host:port to listen on (port 0 = any free port)");
ABSL_FLAG(std::string, model_dir, kDefaults.model_dir,
          "model repository: <model_dir>/<name>/<version>/model.cnvn; created when missing");
ABSL_FLAG(std::string, data_dir, CONVNET_DEFAULT_DATA_DIR,
          "directory whose subdirectories holding the four MNIST IDX files are the datasets");
ABSL_FLAG(int, threads, kDefaults.threads,
          "threads of the core pool shared by Predict, GetGradients and training (0 = all cores)");
ABSL_FLAG(int, max_concurrent_jobs, kDefaults.max_concurrent_jobs, "training jobs that run at once");
ABSL_FLAG(int, max_queued_jobs, kDefaults.max_queued_jobs,
          "training jobs that may wait for a free slot; Train fails with RESOURCE_EXHAUSTED beyond");
ABSL_FLAG(int, max_message_bytes, kDefaults.max_message_bytes, "largest request or response message, bytes");
ABSL_FLAG(int, max_batch, kDefaults.max_batch, "most images per Predict and examples per GetGradients");
ABSL_FLAG(int, max_inline_examples, kDefaults.max_inline_examples,
          "most examples in a training or evaluation set sent inline with Train");
ABSL_FLAG(int, max_concurrent_gradients, kDefaults.max_concurrent_gradients,
          "GetGradients calls with include_deltas computed at once (each holds up to about 3 x "
          "--max_message_bytes); more are refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_watch_streams, kDefaults.max_watch_streams,
          "WatchTrainingJob streams open at once; WatchTrainingJob fails with RESOURCE_EXHAUSTED beyond");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of the server; with --tls_key, serve TLS only");
ABSL_FLAG(std::string, tls_key, "", "PEM private key (unencrypted) of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates; mutual TLS: clients must present a certificate signed by one of them");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding a bearer token; Train, CancelTrainingJob, GetGradients and GetModel exporting "
          "parameters then need the metadata \"authorization: Bearer <token>\"");
ABSL_FLAG(bool, auth_all, false,
          "with --auth_token_file: every ConvNet call needs the token (health stays open, reflection is off)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGINT/SIGTERM, how long calls in flight may take to finish");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("convnet_server [flags]: trains and serves the convnet CNN over gRPC");
  absl::ParseCommandLine(argc, argv);
  TuneMalloc();

  // Block the signals we act on before any thread starts (threads inherit the
  // mask), so that no thread is interrupted by them; main takes them one at a
  // time with sigwait below.
  sigset_t handled_signals;
  sigemptyset(&handled_signals);
  for (const int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1}) {
    sigaddset(&handled_signals, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &handled_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);

  convnet::server::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  options.max_queued_jobs = absl::GetFlag(FLAGS_max_queued_jobs);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.auth_all = absl::GetFlag(FLAGS_auth_all);
  options.max_inline_examples = absl::GetFlag(FLAGS_max_inline_examples);
  options.max_concurrent_gradients = absl::GetFlag(FLAGS_max_concurrent_gradients);
  options.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  const absl::Duration grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (grace < absl::ZeroDuration()) {
    convnet::server::LogError(absl::StrCat("--shutdown_grace must be >= 0, got ", absl::FormatDuration(grace)));
    return 2;
  }

  auto server = convnet::server::ConvNetServer::Start(options);
  if (!server.ok()) {
    convnet::server::LogError(absl::StrCat("cannot start: ", server.status().ToString()));
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }

  for (;;) {
    int signal_number = 0;
    if (sigwait(&handled_signals, &signal_number) != 0) continue;
    const std::string name = absl::StrCat("SIG", sigabbrev_np(signal_number));
    if (signal_number == SIGHUP) {
      convnet::server::LogInfo(absl::StrCat("received ", name, ": reloading"));
      // Errors are logged part by part; the server goes on with what it had.
      (*server)->Reload().IgnoreError();
      continue;
    }
    if (signal_number == SIGQUIT || signal_number == SIGUSR1) {
      convnet::server::LogInfo(absl::StrCat("received ", name, ": ignored (SIGINT or SIGTERM stops the server)"));
      continue;
    }
    convnet::server::LogInfo(absl::StrCat("received ", name));
    break;
  }
  (*server)->Shutdown(grace);
  server->reset();
  return 0;
}
