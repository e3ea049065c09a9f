// convnet_client stats: the server's statistics since it started
// (GetServerStats): calls, errors and latencies per RPC method, images per
// model version, jobs by state, the thread pool's queue.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/json.h"
#include "client/table.h"

namespace convnet::client {
namespace {

std::string Microseconds(double us) {
  if (us == 0) return "-";
  return us < 10 ? absl::StrFormat("%.1f", us) : absl::StrFormat("%.0f", us);
}

void PrintStats(const convnet::v1::GetServerStatsResponse& stats) {
  absl::PrintF("up %.1f s (since %s); %d calls in flight; thread pool: %d threads, %d tasks queued\n\n",
               stats.uptime_seconds(), FormatTimestamp(stats.started_unix_ms()), stats.calls_in_flight(),
               stats.thread_pool_threads(), stats.thread_pool_queue_length());

  std::vector<std::vector<std::string>> methods = {
      {"METHOD", "CALLS", "ERRORS", "P50 us", "P99 us", "MEAN us", "ERRORS BY CODE"}};
  for (const auto& method : stats.methods()) {
    std::vector<std::string> codes;
    for (const auto& code : method.errors_by_code()) {
      codes.push_back(absl::StrCat(code.code_name(), " ", code.count()));
    }
    methods.push_back({method.method(), absl::StrCat(method.count()), absl::StrCat(method.errors()),
                       Microseconds(method.latency_p50_us()), Microseconds(method.latency_p99_us()),
                       Microseconds(method.latency_mean_us()), absl::StrJoin(codes, ", ")});
  }
  PrintTable(methods);

  absl::PrintF("\n");
  if (stats.model_versions().empty()) {
    absl::PrintF("no images predicted yet\n");
  } else {
    std::vector<std::vector<std::string>> versions = {{"MODEL/VERSION", "PREDICT CALLS", "IMAGES"}};
    for (const auto& version : stats.model_versions()) {
      versions.push_back({absl::StrCat(version.model_name(), "/", version.version()),
                          absl::StrCat(version.predict_requests()), absl::StrCat(version.images_predicted())});
    }
    PrintTable(versions);
  }

  std::vector<std::string> jobs;
  for (const auto& count : stats.jobs()) {
    jobs.push_back(absl::StrCat(JobStateName(count.state()), " ", count.count()));
  }
  absl::PrintF("\njobs: %s\n", absl::StrJoin(jobs, ", "));
}

}  // namespace

int RunStats(Connection& connection, const Arguments& arguments) {
  if (!arguments.empty()) return UsageError("stats", "no arguments expected");
  auto context = connection.NewCallContext();
  convnet::v1::GetServerStatsResponse response;
  const grpc::Status status =
      connection.stub().GetServerStats(context.get(), convnet::v1::GetServerStatsRequest(), &response);
  if (!status.ok()) return connection.ReportError("GetServerStats", status);
  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(response));
  } else {
    PrintStats(response);
  }
  return kExitOk;
}

}  // namespace convnet::client
