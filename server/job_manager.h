// Training jobs: a bounded queue, a fixed number of runner threads, and the
// state of every job for GetTrainingJob / ListTrainingJobs / WatchTrainingJob.
//
// Lifecycle:  QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
//             QUEUED -> CANCELLED                (cancelled before it started)
//             QUEUED | RUNNING -> FAILED         (interrupted: found so at start-up)
// - At most `max_concurrent_jobs` jobs run at once, each on its own runner
//   thread, all sharing one core ThreadPool for their mini-batch gradients.
// - Submit() accepts a job while fewer than max_concurrent_jobs +
//   max_queued_jobs jobs are queued or running; RESOURCE_EXHAUSTED otherwise.
// - A running job trains with core's Train(); on success the job publishes the
//   new version through the ModelRepository (atomic write, then swap-in) and
//   only then becomes SUCCEEDED with that version.
// - Cancel() sets the job's cancel flag, which core's Train() checks between
//   mini-batches; a queued job is cancelled at once.
// - Every state change is logged, one line each.
// - Persistence (with a JobStore, as the server runs it): every job's record
//   (its JobInfo, never its training data) is written atomically at every
//   state change, and while the job runs at the end of an epoch when
//   kRecordInterval has passed since the last write, and always at the end of
//   the last epoch. (Get, List and Watch read memory: they are exact; after a
//   crash a record may lack the epochs of the last kRecordInterval.) A job
//   becomes visible and runnable only once its QUEUED record is durable; a
//   RUNNING record that cannot be written fails the job before it trains.
//   At start-up Open() lists the
//   recorded jobs again; a job recorded as QUEUED or RUNNING was interrupted
//   by a crash or a kill and becomes FAILED with an error starting
//   "interrupted:" (recorded too): it never appears to be still running. Job
//   ids ("<run>-<sequence>", <run> greater than that of every recorded job)
//   never repeat an id of an earlier run.
// - The most recent kMaxFinishedJobs finished jobs are kept (in memory and on
//   disk; the records of older ones are deleted), queued and running jobs
//   always. Without a JobStore jobs live in memory only.
#ifndef CONVNET_SERVER_JOB_MANAGER_H_
#define CONVNET_SERVER_JOB_MANAGER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/dataset.h"
#include "core/parameters.h"
#include "core/thread_pool.h"
#include "core/train_options.h"
#include "core/trainer.h"
#include "server/model_repository.h"

namespace convnet::server {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

// "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED".
const char* JobStateName(JobState state);
bool IsTerminal(JobState state);

// Everything a job needs, resolved and validated by the caller (the RPC layer).
struct JobSpec {
  std::string model_name;                        // the model the job adds a version to
  std::shared_ptr<const Parameters> initial;     // starting point (never null)
  std::string init_from;                         // "" or "<name>/<version>"
  uint64_t init_seed = 0;                        // seed of `initial` when init_from is ""
  std::shared_ptr<const Dataset> train;          // never null, never empty
  std::string train_dataset;                     // a dataset name or "inline"
  std::shared_ptr<const Dataset> eval;           // may be null
  std::string eval_dataset;                      // "" when eval is null
  TrainOptions options;                          // passes ValidateTrainOptions
};

// A consistent snapshot of one job.
struct JobInfo {
  std::string id;
  std::string model_name;
  JobState state = JobState::kQueued;
  int64_t version = 0;  // the version produced, when SUCCEEDED
  int feature_maps = 0;
  std::string init_from;
  std::string train_dataset;
  std::string eval_dataset;
  int64_t train_examples = 0;
  int64_t eval_examples = 0;
  TrainOptions options;
  std::optional<TrainProgress> progress;
  std::vector<EpochMetrics> epochs;
  std::string error;  // why FAILED or who CANCELLED
  bool cancel_requested = false;
  absl::Time created = absl::InfinitePast();
  absl::Time started = absl::InfinitePast();   // InfinitePast = not yet
  absl::Time finished = absl::InfinitePast();
};

// One message of a job's watch stream (WatchTrainingJob): a snapshot of the
// job, a state change, a progress report, or a finished epoch.
using JobUpdate = std::variant<JobInfo, JobState, TrainProgress, EpochMetrics>;

class JobWatch;

// The server's --max_concurrent_jobs and --max_queued_jobs (their defaults
// live in ServerOptions, server.h).
struct JobManagerOptions {
  int max_concurrent_jobs;  // >= 1
  int max_queued_jobs;      // >= 0
};

class JobStore;

class JobManager {
 public:
  static constexpr size_t kMaxFinishedJobs = 1000;
  // While a job runs, its record is rewritten at an epoch's end at most this
  // often (a fast job would otherwise spend its time in fsync).
  static constexpr absl::Duration kRecordInterval = absl::Seconds(2);

  // `repository` and `pool` must outlive the manager. Starts the runner
  // threads. Jobs live in memory only (see Open for persisted jobs).
  JobManager(const JobManagerOptions& options, ModelRepository* repository, ThreadPool* pool);

  // As the constructor, with every job's record kept in `store` (never null):
  // loads the recorded jobs first (unreadable records are logged and set
  // aside by the store), turns those that were QUEUED or RUNNING into FAILED
  // ("interrupted: ...") and records that, and deletes the records of finished
  // jobs beyond kMaxFinishedJobs. Fails only when the store cannot be listed.
  static absl::StatusOr<std::unique_ptr<JobManager>> Open(const JobManagerOptions& options,
                                                          ModelRepository* repository, ThreadPool* pool,
                                                          std::unique_ptr<JobStore> store);
  ~JobManager();  // Shutdown()

  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Records the job (durably, with a JobStore) and then queues it; returns its
  // snapshot (QUEUED). RESOURCE_EXHAUSTED when the queue is full (naming the
  // limits); UNAVAILABLE after Shutdown() began; INTERNAL "cannot record the
  // job: ... <path>: <reason>" when the record cannot be written (a full or
  // read-only disk). On any error no job exists: it is not listed,
  // not run, and not found after a restart.
  absl::StatusOr<JobInfo> Submit(JobSpec spec);

  // NOT_FOUND naming the id when the job is unknown (or long forgotten).
  absl::StatusOr<JobInfo> Get(absl::string_view id) const;

  // Newest first; `model_name` "" and `state` nullopt match everything. With
  // `older_than` set to a job id (known or not, e.g. a job forgotten since),
  // only the jobs submitted before that one (in id order, which is submission
  // order: "<run>-<sequence>" compared as numbers); at most `limit` jobs.
  std::vector<JobInfo> List(absl::string_view model_name, std::optional<JobState> state,
                            absl::string_view older_than = "", size_t limit = SIZE_MAX) const;

  // Requests cancellation and waits until the job is in a final state or
  // `deadline` passes; returns the job as it then is. FAILED_PRECONDITION when
  // the job had already finished; NOT_FOUND for an unknown id.
  absl::StatusOr<JobInfo> Cancel(absl::string_view id, absl::Time deadline);

  // Follows a job (WatchTrainingJob): returns a watch whose Next() yields the
  // job's updates, and which calls `on_news` whenever the job changes (a new
  // state, progress report or epoch) from the thread that changed it, without
  // holding the job's lock. `on_news` must be cheap and must not block: it may
  // call the watch's Next(), never destroy the watch. Updates that happen
  // before the first Next() are returned by it (no news is lost between
  // Follow and Next). NOT_FOUND for an unknown id.
  absl::StatusOr<std::unique_ptr<JobWatch>> Follow(absl::string_view id, std::function<void()> on_news) const;

  // Stops accepting jobs (Submit returns UNAVAILABLE), cancels queued and
  // running jobs (state CANCELLED) and waits for the runner threads to stop.
  // Idempotent.
  void Shutdown();

  // Queued + running jobs (for statistics and tests).
  int ActiveJobs() const;

  // Job records written successfully since the manager started (for tests).
  int64_t RecordWrites() const;

  // The jobs the manager knows now (queued, running and the retained finished
  // ones) per state, indexed by JobState (kQueued .. kCancelled).
  std::array<int64_t, 5> CountByState() const;

 private:
  friend class JobWatch;
  struct Job;

  // Fills in a new job's JobInfo (QUEUED, id `id`) from its spec; returns it.
  static JobInfo Describe(Job& job, const std::string& id);
  void RunnerLoop();
  void RunJob(Job& job);
  // Records the final state (Change), releases the job's data, logs the line.
  void Finish(Job& job, JobState state, int64_t version, std::string error);
  enum class RecordWhen { kNow, kIfDue };  // kIfDue: kRecordInterval after the last write
  struct Changed {
    JobInfo info;         // the job after the change
    bool recorded = false;  // the record was written
    absl::Status record;  // the record write's failure, if one was attempted and failed
  };
  // Applies `change` to the job's record on disk first (write-ahead: with
  // kNow, a crash never leaves the record behind what a client has seen),
  // then in memory (adding the new state to the job's state history when
  // `state_changed`). A failed write is logged and the change still applies
  // in memory.
  Changed Change(Job& job, const std::function<void(JobInfo&)>& change, bool state_changed,
                 RecordWhen when = RecordWhen::kNow);
  // Writes the job's record as it is now (a failure is logged).
  void Persist(Job& job);
  // Writes `snapshot` as the job's record, unless there is no store or the
  // job was forgotten (OK then); a failure is logged and returned. Needs the
  // job's record_mu.
  absl::Status Save(Job& job, const JobInfo& snapshot);
  // Adds the recorded jobs (Open() only, before any Submit).
  void Restore(std::vector<JobInfo> records, const std::vector<std::string>& recorded_ids);
  std::shared_ptr<Job> Find(absl::string_view id) const;
  // Tells the job's watchers (Follow) that it changed. Must be called without
  // the job's mu held.
  static void NotifyWatchers(Job& job);
  void ForgetOldFinishedJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobManagerOptions options_;
  ModelRepository* const repository_;
  ThreadPool* const pool_;
  std::unique_ptr<JobStore> store_;  // null: in memory only; set before any job exists

  mutable absl::Mutex mu_;  // acquired before any Job::record_mu, which is before any Job::mu
  // The <run> part of new ids: the start time in ms, or more, so that ids
  // differ from every recorded one.
  int64_t id_prefix_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // queued + running
  std::deque<std::shared_ptr<Job>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);  // submission order
  absl::flat_hash_map<std::string, std::shared_ptr<Job>> by_id_ ABSL_GUARDED_BY(mu_);
  size_t finished_count_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<int64_t> record_writes_{0};
  std::vector<std::thread> runners_;
  absl::Mutex shutdown_mu_;  // serialises Shutdown() calls
  bool joined_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// Follows one job without a thread of its own (JobManager::Follow): a cursor
// over the job's updates, and a subscription that says when there may be new
// ones. Next() is called by one thread at a time; `on_news` may run on another
// thread at the same time.
class JobWatch {
 public:
  // Ends the subscription: once the destructor returns, `on_news` is not
  // called again (a call in progress on another thread is waited for).
  // Must not run inside `on_news`.
  ~JobWatch();

  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  // The updates that are due now, in the order of the WatchTrainingJob
  // contract (proto/convnet/v1/convnet.proto): the first call starts with a
  // snapshot of the job as it is then; then every finished epoch exactly once
  // (earlier ones replayed first), the latest progress report since the
  // previous call (reports are coalesced) and every state change, in the
  // order they happened; finally a snapshot of the job in its terminal state,
  // after which finished() is true and Next() returns nothing. Empty when
  // nothing has happened since the previous call. Never blocks (it takes the
  // job's lock briefly).
  std::vector<JobUpdate> Next();

  // True once Next() has returned the final snapshot.
  bool finished() const { return finished_; }

 private:
  friend class JobManager;
  JobWatch(std::shared_ptr<JobManager::Job> job, std::function<void()> on_news);

  const std::shared_ptr<JobManager::Job> job_;
  const std::function<void()> on_news_;
  bool started_ = false;   // the first snapshot was returned
  bool finished_ = false;  // the final snapshot was returned
  size_t epochs_sent_ = 0;
  size_t states_sent_ = 0;
  int64_t progress_sent_ = 0;  // the job's progress_sequence last seen
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_JOB_MANAGER_H_
