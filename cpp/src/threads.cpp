#include "threads.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FASTOPT_PAUSE() _mm_pause()
#else
#define FASTOPT_PAUSE() std::this_thread::yield()
#endif

namespace fastopt {
namespace threads {
namespace {

// How long an idle worker spins before sleeping on the condition variable, adapted to how the
// pool is used.  Spinning pays when the next job comes soon (back-to-back optimizer steps:
// a futex wake-up costs tens of microseconds,
// and a worker that wakes late leaves the step to the caller alone: measured 156 us median
// vs 80 us for SGD-momentum at 1e6 floats with a ~100 us spin).  It costs when the next job
// comes late: in a training loop the step is followed by the next forward pass, whose BLAS
// threads need the core the spinning worker holds (a fixed 300 us spin did exactly that).
// So the caller records the gaps between the end of one job and the start of the next (the
// last kGapHistory of them); when at least 3/4 of them were short enough for a spin of at
// most kSpinMax to bridge (a burst of close calls, not an occasional pair of them, such as a
// step and a separate finiteness check of the gradients), workers spin for four times
// the longest of those short gaps (at least kSpinShort: the caller's gap does not
// count the worker's own late start or a preemption; measured on the shared 2-core VM, a
// 50 us floor made back-to-back SGD-momentum steps at 1e6 floats 1.28x slower than the fixed
// 300 us spin, a 150 us floor 0.98x), otherwise only kSpinMin: in a burst of close calls the
// spin is long from the sixth call on; in a loop whose steps are milliseconds apart it is
// (almost) nothing, with or without the finiteness check.  Time-based, so it does not depend
// on how long the CPU's pause instruction takes.
constexpr std::int64_t kSpinMax = 300000;    // ns
constexpr std::int64_t kSpinShort = 150000;  // ns
constexpr std::int64_t kSpinMin = 2000;      // ns
constexpr int kGapHistory = 8;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Pool {
  std::vector<std::thread> workers;  // detached; the pool is never destroyed
  std::atomic<std::uint64_t> epoch{0};
  std::atomic<int> inflight{0};   // workers inside a job
  std::atomic<bool> open{false};  // the current job still accepts workers
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  std::atomic<int> active{0};  // workers 1..active-1 may run fn (set before the epoch bump)
  std::mutex mu;
  // One condition variable per worker (index = worker id; 0 unused), so that a job wakes
  // only the sleeping workers it has room for: with one shared one, every sleeper woke at
  // every job to find it was not wanted (14 context switches per step with 16 threads set
  // and a call that uses 2).  Guarded by mu.
  struct Sleeper {
    std::condition_variable cv;
    bool asleep = false;
  };
  std::vector<std::unique_ptr<Sleeper>> sleepers;
  std::mutex run_mu;                            // one caller at a time
  std::atomic<std::int64_t> spin_ns{kSpinMin};  // how long idle workers spin now
  // Caller side, under run_mu: end of the last job and the last gaps between jobs.
  std::int64_t last_end = 0;
  std::int64_t gaps[kGapHistory] = {};
  int next_gap = 0;

  // Called by the caller at the start of a job: learn from the gap since the last one.
  void record_gap(std::int64_t start) {
    gaps[next_gap] = last_end ? start - last_end : kSpinMax + 1;
    next_gap = (next_gap + 1) % kGapHistory;
    std::int64_t bridged = 0;  // the longest recent gap that a spin would have bridged
    int short_gaps = 0;
    for (std::int64_t g : gaps) {
      if (g <= 0 || g > kSpinMax) continue;
      ++short_gaps;
      if (g > bridged) bridged = g;
    }
    std::int64_t spin = kSpinMin;
    if (4 * short_gaps >= 3 * kGapHistory)  // mostly close calls: a burst of steps
      spin = 4 * bridged < kSpinShort ? kSpinShort : 4 * bridged;
    if (spin > kSpinMax) spin = kSpinMax;
    spin_ns.store(spin, std::memory_order_relaxed);
  }

  // A job wants this worker: a new epoch whose job has room for it.
  bool wanted(int id, std::uint64_t seen) const {
    return epoch.load(std::memory_order_acquire) != seen &&
           id < active.load(std::memory_order_acquire);
  }

  void worker_loop(int id, std::uint64_t seen) {
    bool spin = true;
    for (;;) {
      std::uint64_t e = seen;
      if (spin) {
        const std::int64_t until = now_ns() + spin_ns.load(std::memory_order_relaxed);
        int spins = 0;
        while ((e = epoch.load(std::memory_order_acquire)) == seen) {
          FASTOPT_PAUSE();
          if ((++spins & 63) == 0 && now_ns() > until) break;
        }
      }
      if (e == seen) {
        std::unique_lock<std::mutex> lk(mu);
        Sleeper* me = sleepers[static_cast<std::size_t>(id)].get();
        me->asleep = true;
        me->cv.wait(lk, [&] { return wanted(id, seen); });
        me->asleep = false;
        e = epoch.load(std::memory_order_acquire);
      }
      seen = e;
      // A job with no room for this worker (a call that uses fewer threads than the pool
      // has): sleep until one has, instead of spinning on a core the job's own threads need.
      spin = id < active.load(std::memory_order_acquire);
      if (!spin) continue;
      // Join the job only while it is open: once the caller has closed it (all chunks taken)
      // it may return and reuse fn/ctx, so a late worker must not touch them.
      inflight.fetch_add(1, std::memory_order_seq_cst);
      if (open.load(std::memory_order_seq_cst) && id < active.load(std::memory_order_relaxed))
        fn(ctx, id);
      inflight.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  void grow(int nworkers) {
    while (static_cast<int>(workers.size()) < nworkers) {
      const int id = static_cast<int>(workers.size()) + 1;
      {
        std::lock_guard<std::mutex> lk(mu);
        while (static_cast<int>(sleepers.size()) <= id) sleepers.emplace_back(new Sleeper);
      }
      const std::uint64_t now = epoch.load(std::memory_order_acquire);  // before the next bump
      workers.emplace_back([this, id, now] { worker_loop(id, now); });
      workers.back().detach();
    }
  }
};

Pool* g_pool = nullptr;
std::atomic<int> g_threads{0};
std::atomic<unsigned long long> g_pool_jobs{0};
std::mutex g_create_mu;

std::atomic<int> g_cpus{0};

void after_fork_child() {  // the parent's workers do not exist here
  g_pool = nullptr;
  g_cpus.store(0, std::memory_order_relaxed);  // nor, perhaps, its CPU set
}

Pool* pool() {
  std::lock_guard<std::mutex> lk(g_create_mu);
  static bool registered = false;
  if (!registered) {
    pthread_atfork(nullptr, nullptr, after_fork_child);
    registered = true;
  }
  if (!g_pool) g_pool = new Pool();  // leaked on purpose: no join at interpreter exit
  return g_pool;
}

}  // namespace

namespace {

// The file's text ("" if it cannot be read).  POSIX reads: no iostreams in the extension
// (tests/test_hardening_arrays.py).
std::string read_file(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t k = ::read(fd, buf, sizeof buf);
    if (k <= 0) break;
    out.append(buf, static_cast<std::size_t>(k));
  }
  ::close(fd);
  return out;
}

// CPUs allowed by a quota and a period (microseconds), rounded up; 0 for no limit.
int quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>((quota + period - 1) / period);
}

int min_limit(int a, int b) { return a == 0 ? b : (b == 0 ? a : (a < b ? a : b)); }

}  // namespace

int cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& root) {
  int limit = 0;
  std::size_t start = 0;
  while (start < proc_cgroup.size()) {
    std::size_t end = proc_cgroup.find('\n', start);
    if (end == std::string::npos) end = proc_cgroup.size();
    const std::string line = proc_cgroup.substr(start, end - start);
    start = end + 1;
    // "hierarchy-id:controllers:path"; v2 is "0::path".
    const std::size_t a = line.find(':');
    const std::size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path.empty() || path[0] != '/') continue;
    if (controllers.empty()) {  // v2: cpu.max ("max 100000" or "200000 100000") up the tree
      for (;;) {
        const std::string v = read_file(root + (path == "/" ? "" : path) + "/cpu.max");
        char* rest = nullptr;
        const long long quota = std::strtoll(v.c_str(), &rest, 10);
        if (rest != v.c_str() && v.compare(0, 3, "max") != 0)
          limit = min_limit(limit, quota_cpus(quota, std::strtoll(rest, nullptr, 10)));
        if (path == "/") break;
        const std::size_t cut = path.rfind('/');
        path = cut == 0 ? "/" : path.substr(0, cut);
      }
      continue;
    }
    // v1: the hierarchy that has the cpu controller, mounted as cpu or cpu,cpuacct.
    const std::string list = "," + controllers + ",";
    if (list.find(",cpu,") == std::string::npos) continue;
    for (const char* mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
      const std::string dir = root + mount + (path == "/" ? "" : path);
      const std::string q = read_file(dir + "/cpu.cfs_quota_us");
      const std::string p = read_file(dir + "/cpu.cfs_period_us");
      if (q.empty() || p.empty()) continue;
      limit = min_limit(limit, quota_cpus(std::strtoll(q.c_str(), nullptr, 10),
                                          std::strtoll(p.c_str(), nullptr, 10)));
      break;
    }
  }
  return limit;
}

int default_threads() {
  int n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) {
    const unsigned h = std::thread::hardware_concurrency();
    n = h ? static_cast<int>(h) : 1;
  }
  // A container's CPU quota (docker --cpus, Kubernetes limits) leaves every CPU in the
  // affinity mask but lets the process run only so many at once.
  const int quota = cgroup_cpu_limit(read_file("/proc/self/cgroup"), "/sys/fs/cgroup");
  return quota > 0 && quota < n ? quota : n;
}

int cpus() {
  int n = g_cpus.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = default_threads();
    g_cpus.store(n, std::memory_order_relaxed);
  }
  return n;
}

int get_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  n = cpus();
  if (const char* env = std::getenv("FASTOPT_NUM_THREADS")) {
    const int e = std::atoi(env);
    if (e > 0) n = e;
  }
  g_threads.store(n, std::memory_order_relaxed);
  return n;
}

void set_threads(int n) { g_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }

unsigned long long pool_jobs() { return g_pool_jobs.load(std::memory_order_relaxed); }

void relax(int& spins) {
  if (++spins < 4000)
    FASTOPT_PAUSE();
  else
    std::this_thread::yield();
}

int run(int nt, TaskFn fn, void* ctx) {
  const int limit = get_threads();
  if (nt > limit) nt = limit;
  if (nt <= 1) {
    fn(ctx, 0);
    return 1;
  }
  Pool* p = pool();
  std::unique_lock<std::mutex> guard(p->run_mu, std::try_to_lock);
  if (!guard.owns_lock()) {  // another thread is using the pool: do this one serially
    fn(ctx, 0);
    return 1;
  }
  g_pool_jobs.fetch_add(1, std::memory_order_relaxed);
  p->record_gap(now_ns());
  p->grow(nt - 1);
  p->fn = fn;
  p->ctx = ctx;
  p->active.store(nt, std::memory_order_release);
  p->open.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lk(p->mu);
    p->epoch.fetch_add(1, std::memory_order_acq_rel);
    for (int id = 1; id < nt; ++id) {
      Pool::Sleeper* w = p->sleepers[static_cast<std::size_t>(id)].get();
      if (w->asleep) w->cv.notify_one();
    }
  }
  fn(ctx, 0);  // returns when every chunk has been taken (by us or by a worker)
  p->open.store(false, std::memory_order_seq_cst);
  int spins = 0;
  while (p->inflight.load(std::memory_order_seq_cst) != 0) relax(spins);  // chunks still running
  p->last_end = now_ns();
  return nt;
}

}  // namespace threads
}  // namespace fastopt
