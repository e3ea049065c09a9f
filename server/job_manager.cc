#include "server/job_manager.h"

#include <algorithm>
#include <exception>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/strings/numbers.h"
#include "core/model_file.h"
#include "server/crash_point.h"
#include "server/job_store.h"
#include "server/log.h"
#include "server/names.h"

namespace convnet::server {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "QUEUED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed || state == JobState::kCancelled;
}

struct JobManager::Job {
  explicit Job(JobSpec s) : spec(std::move(s)) {}

  // Read only by the thread that owns the job's execution (a runner, or the
  // canceller of a queued job); released when the job finishes.
  JobSpec spec;
  std::atomic<bool> cancel{false};  // core's Train() polls it between mini-batches

  // Serialises the writes of this job's record; each write takes its snapshot
  // under it, so a later write never carries an older snapshot.
  absl::Mutex record_mu ABSL_ACQUIRED_BEFORE(mu);
  bool forgotten ABSL_GUARDED_BY(record_mu) = false;  // its record is deleted: write no more
  absl::Time last_recorded ABSL_GUARDED_BY(record_mu) = absl::InfinitePast();  // the last successful write

  mutable absl::Mutex mu;
  JobInfo info ABSL_GUARDED_BY(mu);
  int64_t progress_sequence ABSL_GUARDED_BY(mu) = 0;  // bumped by every progress report
  std::vector<JobState> states ABSL_GUARDED_BY(mu);  // every state it has been in, in order
  std::string cancel_reason ABSL_GUARDED_BY(mu);

  // The job's followers (JobManager::Follow), told of every change. Their
  // on_news runs under watchers_mu, never under mu, so that it may read the
  // job; holding watchers_mu makes ~JobWatch wait for a call in progress.
  absl::Mutex watchers_mu ABSL_ACQUIRED_BEFORE(mu);
  std::vector<JobWatch*> watchers ABSL_GUARDED_BY(watchers_mu);
};

namespace {

std::string JobLabel(const JobInfo& info) {
  return absl::StrCat("job ", info.id, " (model ", Quote(info.model_name), ")");
}

std::string Outcome(const JobInfo& info) {
  std::string text;
  if (info.state == JobState::kSucceeded) absl::StrAppend(&text, "version ", info.version, ", ");
  absl::StrAppend(&text, info.epochs.size(), " of ", info.options.epochs, " epochs");
  if (!info.epochs.empty() && info.epochs.back().test_examples > 0) {
    absl::StrAppend(&text, absl::StrFormat(", test accuracy %.2f%%", 100 * info.epochs.back().test_accuracy));
  }
  if (info.started != absl::InfinitePast()) {
    absl::StrAppend(&text, absl::StrFormat(", %.1f s", absl::ToDoubleSeconds(info.finished - info.started)));
  }
  if (!info.error.empty()) absl::StrAppend(&text, ": ", info.error);
  return text;
}

// A job id "<run>-<sequence>" as numbers; false for anything else.
bool ParseJobId(absl::string_view id, int64_t* run, int64_t* sequence) {
  const size_t dash = id.find('-');
  return dash != absl::string_view::npos && absl::SimpleAtoi(id.substr(0, dash), run) &&
         absl::SimpleAtoi(id.substr(dash + 1), sequence);
}

// A job's place in submission order: by run, then sequence (every run's ids
// exceed the previous runs'); an id of another form sorts first, by its text.
std::tuple<int64_t, int64_t, std::string> SubmissionOrder(absl::string_view id) {
  int64_t run = 0;
  int64_t sequence = 0;
  if (!ParseJobId(id, &run, &sequence)) run = sequence = 0;
  return std::make_tuple(run, sequence, std::string(id));
}

// Why a job recorded as QUEUED or RUNNING is FAILED after a restart.
std::string InterruptedError(const JobInfo& info) {
  std::string error = absl::StrCat("interrupted: the server stopped while the job was ",
                                   info.state == JobState::kQueued ? "queued" : "running",
                                   " (crash or kill); submit it again");
  if (info.state == JobState::kRunning && static_cast<int>(info.epochs.size()) >= info.options.epochs) {
    // Training had finished: the crash hit the publication, which is atomic.
    absl::StrAppend(&error, " (all its epochs had finished: if the version was written completely before the "
                            "stop it is listed by ListModels, otherwise nothing of it was kept)");
  }
  return error;
}

}  // namespace

JobManager::JobManager(const JobManagerOptions& options, ModelRepository* repository, ThreadPool* pool)
    : options_(options),
      repository_(repository),
      pool_(pool),
      id_prefix_(absl::ToUnixMillis(absl::Now())) {
  const int runners = std::max(1, options_.max_concurrent_jobs);
  runners_.reserve(runners);
  for (int i = 0; i < runners; ++i) runners_.emplace_back([this] { RunnerLoop(); });
}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Open(const JobManagerOptions& options,
                                                             ModelRepository* repository, ThreadPool* pool,
                                                             std::unique_ptr<JobStore> store) {
  if (store == nullptr) return absl::InvalidArgumentError("JobManager::Open needs a job store");
  absl::StatusOr<LoadedJobRecords> loaded = store->Load();
  if (!loaded.ok()) return loaded.status();
  auto manager = std::make_unique<JobManager>(options, repository, pool);
  manager->store_ = std::move(store);
  manager->Restore(std::move(loaded->jobs), loaded->all_ids);
  return manager;
}

void JobManager::Restore(std::vector<JobInfo> records, const std::vector<std::string>& recorded_ids) {
  // Submission order; ForgetOldFinishedJobs then drops the oldest.
  std::sort(records.begin(), records.end(), [](const JobInfo& a, const JobInfo& b) {
    return SubmissionOrder(a.id) < SubmissionOrder(b.id);
  });

  int64_t highest_run = 0;
  for (const std::string& id : recorded_ids) {
    int64_t run = 0;
    int64_t sequence = 0;
    if (ParseJobId(id, &run, &sequence)) highest_run = std::max(highest_run, run);
  }

  std::vector<std::shared_ptr<Job>> interrupted;
  {
    absl::MutexLock lock(&mu_);
    id_prefix_ = std::max(id_prefix_, highest_run + 1);
    for (JobInfo& info : records) {
      auto job = std::make_shared<Job>(JobSpec{});
      if (!IsTerminal(info.state)) {
        const JobState was = info.state;
        info.error = InterruptedError(info);
        info.state = JobState::kFailed;
        info.finished = absl::Now();
        LogWarning(absl::StrCat(JobLabel(info), ": ", JobStateName(was), " -> FAILED at start-up (", info.error,
                                ")"));
        interrupted.push_back(job);
      }
      const std::string id = info.id;
      {
        absl::MutexLock job_lock(&job->mu);
        job->states.push_back(info.state);
        job->info = std::move(info);
      }
      if (by_id_.contains(id)) continue;  // cannot happen: one file per id
      jobs_.push_back(job);
      by_id_.emplace(id, job);
      ++finished_count_;
    }
    ForgetOldFinishedJobs();
  }
  for (const std::shared_ptr<Job>& job : interrupted) Persist(*job);
  LogInfo(absl::StrCat("job store: ", records.size(), " recorded jobs in ", store_->dir(), ", ",
                       interrupted.size(), " of them interrupted (now FAILED); new job ids start with ",
                       id_prefix_, "-"));
}

absl::Status JobManager::Save(Job& job, const JobInfo& snapshot) {
  if (store_ == nullptr || job.forgotten) return absl::OkStatus();
  absl::Status saved = store_->Save(snapshot);
  if (!saved.ok()) {
    LogWarning(absl::StrCat("job store: cannot record ", JobLabel(snapshot), " (", JobStateName(snapshot.state),
                            "): ", saved.ToString(), "; a restart will not know this state"));
    return saved;
  }
  job.last_recorded = absl::Now();
  record_writes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void JobManager::Persist(Job& job) {
  absl::MutexLock record_lock(&job.record_mu);
  JobInfo snapshot;
  {
    absl::ReaderMutexLock lock(&job.mu);
    snapshot = job.info;
  }
  (void)Save(job, snapshot);  // a failure is logged; the job goes on
}

JobManager::Changed JobManager::Change(Job& job, const std::function<void(JobInfo&)>& change, bool state_changed,
                                       RecordWhen when) {
  absl::MutexLock record_lock(&job.record_mu);
  Changed changed;
  const bool due = when == RecordWhen::kNow || absl::Now() - job.last_recorded >= kRecordInterval;
  if (store_ != nullptr && due) {
    JobInfo next;
    {
      absl::ReaderMutexLock lock(&job.mu);
      next = job.info;
    }
    change(next);
    changed.record = Save(job, next);
    changed.recorded = changed.record.ok() && !job.forgotten;
  }
  {
    absl::MutexLock lock(&job.mu);
    change(job.info);
    if (state_changed) job.states.push_back(job.info.state);
    changed.info = job.info;
  }
  NotifyWatchers(job);
  return changed;
}

int64_t JobManager::RecordWrites() const { return record_writes_.load(std::memory_order_relaxed); }

JobManager::~JobManager() { Shutdown(); }

absl::StatusOr<JobInfo> JobManager::Submit(JobSpec spec) {
  auto job = std::make_shared<Job>(std::move(spec));
  std::string id;
  {
    // A slot and an id are reserved first; the job becomes visible only once
    // its record is durable.
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; no new training jobs");
    const int capacity = std::max(1, options_.max_concurrent_jobs) + std::max(0, options_.max_queued_jobs);
    if (active_ >= capacity) {
      const int queued = static_cast<int>(queue_.size());
      return absl::ResourceExhaustedError(absl::StrCat(
          "training job queue is full: ", active_ - queued, " running and ", queued,
          " queued (--max_concurrent_jobs=", options_.max_concurrent_jobs,
          ", --max_queued_jobs=", options_.max_queued_jobs, "); retry later"));
    }
    ++active_;
    id = absl::StrCat(id_prefix_, "-", next_sequence_++);
  }
  const JobInfo snapshot = Describe(*job, id);
  absl::Status recorded;
  {
    absl::MutexLock record_lock(&job->record_mu);
    recorded = Save(*job, snapshot);
  }
  absl::MutexLock lock(&mu_);
  if (!recorded.ok() || stopping_) {
    --active_;
    if (!recorded.ok()) {
      // A server-side fault (a full or read-only disk), not the client's.
      return absl::InternalError(absl::StrCat("cannot record the job: ", recorded.message()));
    }
    // Shutdown() began while the record was written: the job never existed.
    if (absl::Status removed = store_ != nullptr ? store_->Remove(id) : absl::OkStatus(); !removed.ok()) {
      LogWarning(absl::StrCat("job store: cannot delete the record of refused job ", id, ": ", removed.ToString()));
    }
    return absl::UnavailableError("the server is shutting down; no new training jobs");
  }
  queue_.push_back(job);
  jobs_.push_back(job);
  by_id_.emplace(snapshot.id, job);
  LogInfo(absl::StrCat(JobLabel(snapshot), ": QUEUED (K=", snapshot.feature_maps,
                       snapshot.init_from.empty() ? "" : absl::StrCat(", from ", snapshot.init_from),
                       ", train ", snapshot.train_dataset, " ", snapshot.train_examples, " examples, ",
                       snapshot.options.epochs, " epochs, batch ", snapshot.options.batch_size,
                       ", eta ", snapshot.options.learning_rate, ", ", CostName(snapshot.options.cost),
                       ")"));
  return snapshot;
}

JobInfo JobManager::Describe(Job& job, const std::string& id) {
  absl::MutexLock job_lock(&job.mu);
  JobInfo& info = job.info;
  info.id = id;
  info.model_name = job.spec.model_name;
  info.state = JobState::kQueued;
  info.feature_maps = job.spec.initial->k();
  info.init_from = job.spec.init_from;
  info.train_dataset = job.spec.train_dataset;
  info.eval_dataset = job.spec.eval ? job.spec.eval_dataset : "";
  info.train_examples = static_cast<int64_t>(job.spec.train->size());
  info.eval_examples = job.spec.eval ? static_cast<int64_t>(job.spec.eval->size()) : 0;
  info.options = job.spec.options;
  info.created = absl::Now();
  job.states.push_back(JobState::kQueued);
  return info;
}

std::shared_ptr<JobManager::Job> JobManager::Find(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto found = by_id_.find(id);
  return found == by_id_.end() ? nullptr : found->second;
}

absl::StatusOr<JobInfo> JobManager::Get(absl::string_view id) const {
  std::shared_ptr<Job> job = Find(id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("training job ", Quote(id), " not found"));
  absl::ReaderMutexLock lock(&job->mu);
  return job->info;
}

std::vector<JobInfo> JobManager::List(absl::string_view model_name, std::optional<JobState> state,
                                      absl::string_view older_than, size_t limit) const {
  std::optional<std::tuple<int64_t, int64_t, std::string>> bound;
  if (!older_than.empty()) bound = SubmissionOrder(older_than);
  std::vector<JobInfo> result;
  absl::MutexLock lock(&mu_);
  for (auto it = jobs_.rbegin(); it != jobs_.rend() && result.size() < limit; ++it) {
    absl::ReaderMutexLock job_lock(&(*it)->mu);
    const JobInfo& info = (*it)->info;
    if (bound.has_value() && !(SubmissionOrder(info.id) < *bound)) continue;
    if (!model_name.empty() && info.model_name != model_name) continue;
    if (state.has_value() && info.state != *state) continue;
    result.push_back(info);
  }
  return result;
}

std::array<int64_t, 5> JobManager::CountByState() const {
  std::array<int64_t, 5> counts{};
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<Job>& job : jobs_) {
    absl::ReaderMutexLock job_lock(&job->mu);
    ++counts[static_cast<int>(job->info.state)];
  }
  return counts;
}

int JobManager::ActiveJobs() const {
  absl::MutexLock lock(&mu_);
  return active_;
}

void JobManager::Finish(Job& job, JobState state, int64_t version, std::string error) {
  JobState from = JobState::kQueued;
  const absl::Time finished = absl::Now();
  const JobInfo info = Change(
      job,
      [&](JobInfo& info) {
        from = info.state;
        info.state = state;
        info.version = version;
        info.error = error;
        info.finished = finished;
      },
      /*state_changed=*/true)
                           .info;
  job.spec.initial.reset();  // the datasets and parameters are no longer needed
  job.spec.train.reset();
  job.spec.eval.reset();
  const std::string line =
      absl::StrCat(JobLabel(info), ": ", JobStateName(from), " -> ", JobStateName(state), " (", Outcome(info), ")");
  if (state == JobState::kFailed) {
    LogWarning(line);
  } else {
    LogInfo(line);
  }
}

absl::StatusOr<JobInfo> JobManager::Cancel(absl::string_view id, absl::Time deadline) {
  std::shared_ptr<Job> job = Find(id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("training job ", Quote(id), " not found"));
  {
    absl::MutexLock lock(&mu_);
    {
      absl::MutexLock job_lock(&job->mu);
      if (IsTerminal(job->info.state)) {
        return absl::FailedPreconditionError(absl::StrCat("training job ", Quote(id), " has already finished (",
                                                          JobStateName(job->info.state), ")"));
      }
      job->info.cancel_requested = true;
      job->cancel_reason = "cancelled by CancelTrainingJob";
    }
    job->cancel.store(true);
    auto queued = std::find(queue_.begin(), queue_.end(), job);
    if (queued != queue_.end()) {
      queue_.erase(queued);
      --active_;
      ++finished_count_;
      Finish(*job, JobState::kCancelled, 0, "cancelled by CancelTrainingJob before it started");
      ForgetOldFinishedJobs();
    }
  }
  absl::MutexLock job_lock(&job->mu);
  job->mu.AwaitWithDeadline(absl::Condition(
                                +[](JobInfo* info) { return IsTerminal(info->state); }, &job->info),
                            deadline);
  return job->info;
}

void JobManager::NotifyWatchers(Job& job) {
  absl::MutexLock lock(&job.watchers_mu);
  for (JobWatch* watch : job.watchers) watch->on_news_();
}

absl::StatusOr<std::unique_ptr<JobWatch>> JobManager::Follow(absl::string_view id,
                                                             std::function<void()> on_news) const {
  std::shared_ptr<Job> job = Find(id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("training job ", Quote(id), " not found"));
  return std::unique_ptr<JobWatch>(new JobWatch(std::move(job), std::move(on_news)));
}

JobWatch::JobWatch(std::shared_ptr<JobManager::Job> job, std::function<void()> on_news)
    : job_(std::move(job)), on_news_(std::move(on_news)) {
  absl::MutexLock lock(&job_->watchers_mu);
  job_->watchers.push_back(this);
}

JobWatch::~JobWatch() {
  absl::MutexLock lock(&job_->watchers_mu);
  std::erase(job_->watchers, this);
}

std::vector<JobUpdate> JobWatch::Next() {
  std::vector<JobUpdate> updates;
  if (finished_) return updates;
  std::vector<JobState> new_states;
  std::vector<EpochMetrics> new_epochs;
  std::optional<TrainProgress> progress;
  std::optional<JobInfo> final_snapshot;
  {
    absl::ReaderMutexLock lock(&job_->mu);
    const JobInfo& info = job_->info;
    if (!started_) {
      // The job as it is now; its earlier epochs are replayed below, its
      // earlier states and progress are in the snapshot.
      updates.emplace_back(info);
      states_sent_ = job_->states.size();
      progress_sent_ = job_->progress_sequence;
      started_ = true;
    }
    new_states.assign(job_->states.begin() + static_cast<std::ptrdiff_t>(states_sent_), job_->states.end());
    new_epochs.assign(info.epochs.begin() + static_cast<std::ptrdiff_t>(epochs_sent_), info.epochs.end());
    if (job_->progress_sequence != progress_sent_ && info.progress.has_value()) progress = info.progress;
    progress_sent_ = job_->progress_sequence;
    if (IsTerminal(info.state)) final_snapshot = info;
  }
  // In time order: a state change into RUNNING precedes any training report;
  // a progress report of epoch e follows the metrics of epochs before e and
  // precedes those of e and later; the final state comes last.
  states_sent_ += new_states.size();
  std::optional<JobState> terminal;
  if (!new_states.empty() && IsTerminal(new_states.back())) {
    terminal = new_states.back();
    new_states.pop_back();
  }
  for (JobState state : new_states) updates.emplace_back(state);
  size_t split = new_epochs.size();
  if (progress.has_value()) {
    split = static_cast<size_t>(std::count_if(new_epochs.begin(), new_epochs.end(), [&](const EpochMetrics& epoch) {
      return epoch.epoch < progress->epoch;
    }));
  }
  for (size_t i = 0; i < split; ++i) updates.emplace_back(new_epochs[i]);
  if (progress.has_value()) updates.emplace_back(*progress);
  for (size_t i = split; i < new_epochs.size(); ++i) updates.emplace_back(new_epochs[i]);
  epochs_sent_ += new_epochs.size();
  if (terminal.has_value()) updates.emplace_back(*terminal);
  if (final_snapshot.has_value()) {
    updates.emplace_back(*std::move(final_snapshot));
    finished_ = true;
  }
  return updates;
}

void JobManager::RunnerLoop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;  // Shutdown() has cancelled whatever was queued
      job = queue_.front();
      queue_.pop_front();
    }
    RunJob(*job);
    absl::MutexLock lock(&mu_);
    --active_;
    ++finished_count_;
    ForgetOldFinishedJobs();
  }
}

void JobManager::RunJob(Job& job) {
  auto cancelled_reason = [&job] {
    absl::ReaderMutexLock lock(&job.mu);
    return job.cancel_reason;
  };
  if (job.cancel.load()) {
    Finish(job, JobState::kCancelled, 0, cancelled_reason());
    return;
  }
  const absl::Time started = absl::Now();
  const Changed running = Change(
      job,
      [started](JobInfo& info) {
        info.state = JobState::kRunning;
        info.started = started;
      },
      /*state_changed=*/true);
  const JobInfo& info = running.info;
  LogInfo(absl::StrCat(JobLabel(info), ": QUEUED -> RUNNING"));
  if (!running.record.ok()) {
    // The model directory cannot take the record: it would not take the new
    // version either, so the job stops before it trains.
    Finish(job, JobState::kFailed, 0,
           absl::StrCat("cannot record the job in the model directory: ", running.record.message()));
    return;
  }
  CrashPoint("jobs.after_running_record");

  TrainCallbacks callbacks;
  callbacks.on_progress = [&job](const TrainProgress& progress) {
    {
      absl::MutexLock lock(&job.mu);
      job.info.progress = progress;
      ++job.progress_sequence;
    }
    NotifyWatchers(job);
  };
  callbacks.on_epoch = [this, &job](const EpochMetrics& metrics) {
    // In memory at every epoch's end; on disk when kRecordInterval has passed
    // since the last write, and always at the last epoch (so that a restart
    // knows whether training had finished).
    const bool last = metrics.epoch >= job.spec.options.epochs;
    const Changed changed =
        Change(job, [&metrics](JobInfo& info) { info.epochs.push_back(metrics); }, /*state_changed=*/false,
               last ? RecordWhen::kNow : RecordWhen::kIfDue);
    if (changed.recorded) CrashPoint("jobs.after_epoch_record");
  };

  const JobSpec& spec = job.spec;
  absl::StatusOr<TrainResult> result = absl::InternalError("training did not run");
  try {
    result = Train(*spec.initial, *spec.train, spec.eval.get(), spec.options, pool_, callbacks, &job.cancel);
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("training raised an exception: ", e.what()));
  } catch (...) {
    result = absl::InternalError("training raised an unknown exception");
  }
  if (!result.ok()) {
    if (result.status().code() == absl::StatusCode::kCancelled && job.cancel.load()) {
      Finish(job, JobState::kCancelled, 0, cancelled_reason());
    } else {
      Finish(job, JobState::kFailed, 0, absl::StrCat("training failed: ", result.status().ToString()));
    }
    return;
  }

  ModelMetadata metadata;
  metadata.trained = true;
  metadata.options = spec.options;
  metadata.train_dataset = spec.train_dataset;
  metadata.train_examples = static_cast<int64_t>(spec.train->size());
  metadata.init_from = spec.init_from;
  metadata.init_seed = spec.init_seed;
  metadata.epochs = result->epochs;
  metadata.train_started_unix_ms = absl::ToUnixMillis(info.started);
  metadata.train_finished_unix_ms = absl::ToUnixMillis(absl::Now());
  // Once training has completed the version is published even if a
  // cancellation arrives now: the job then ends SUCCEEDED.
  absl::StatusOr<ServedVersion> published = absl::InternalError("publishing did not run");
  try {
    published = repository_->Publish(spec.model_name, Model{std::move(result->parameters), std::move(metadata)});
  } catch (const std::exception& e) {
    published = absl::InternalError(absl::StrCat("publishing raised an exception: ", e.what()));
  }
  if (!published.ok()) {
    Finish(job, JobState::kFailed, 0,
           absl::StrCat("writing the new version failed: ", published.status().ToString()));
    return;
  }
  CrashPoint("jobs.after_publish");
  Finish(job, JobState::kSucceeded, published->version, "");
}

void JobManager::ForgetOldFinishedJobs() {
  while (finished_count_ > kMaxFinishedJobs) {
    auto oldest = std::find_if(jobs_.begin(), jobs_.end(), [](const std::shared_ptr<Job>& job) {
      absl::ReaderMutexLock lock(&job->mu);
      return IsTerminal(job->info.state);
    });
    if (oldest == jobs_.end()) return;
    std::string id;
    {
      absl::ReaderMutexLock lock(&(*oldest)->mu);
      id = (*oldest)->info.id;
    }
    by_id_.erase(id);
    if (store_ != nullptr) {
      absl::MutexLock record_lock(&(*oldest)->record_mu);
      (*oldest)->forgotten = true;
      if (absl::Status removed = store_->Remove(id); !removed.ok()) {
        LogWarning(absl::StrCat("job store: cannot delete the record of forgotten job ", id, ": ",
                                removed.ToString()));
      }
    }
    jobs_.erase(oldest);
    --finished_count_;
  }
}

void JobManager::Shutdown() {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      const std::string reason = "cancelled: the server is shutting down";
      for (const std::shared_ptr<Job>& job : queue_) {
        {
          absl::MutexLock job_lock(&job->mu);
          job->info.cancel_requested = true;
          job->cancel_reason = reason;
        }
        job->cancel.store(true);
        --active_;
        ++finished_count_;
        Finish(*job, JobState::kCancelled, 0, reason);
      }
      queue_.clear();
      for (const std::shared_ptr<Job>& job : jobs_) {
        absl::MutexLock job_lock(&job->mu);
        if (IsTerminal(job->info.state)) continue;
        job->info.cancel_requested = true;
        job->cancel_reason = reason;
        job->cancel.store(true);
      }
    }
  }
  if (!joined_) {
    for (std::thread& runner : runners_) runner.join();
    joined_ = true;
  }
}

}  // namespace convnet::server
